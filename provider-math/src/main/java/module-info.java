/**
 * The float64 reference of scaled dot-product attention ({@link dev.sdpa4j.provider.math.ReferenceAttention}) and
 * the fast CPU provider {@code math}.
 */
module dev.sdpa4j.provider.math {
  requires transitive dev.sdpa4j;
  requires jdk.incubator.vector;
  requires static com.google.auto.service;

  exports dev.sdpa4j.provider.math;

  provides dev.sdpa4j.spi.AttentionProvider with dev.sdpa4j.provider.math.MathProvider;
}
