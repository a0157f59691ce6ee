/**
 * The sdpa4j API: {@link dev.sdpa4j.Sdpa#scaledDotProductAttention} and its tensors and options, and the
 * {@link dev.sdpa4j.spi.AttentionProvider} SPI that hardware providers implement.
 */
module dev.sdpa4j {
  requires org.slf4j;

  exports dev.sdpa4j;
  exports dev.sdpa4j.spi;

  uses dev.sdpa4j.spi.AttentionProvider;
}
