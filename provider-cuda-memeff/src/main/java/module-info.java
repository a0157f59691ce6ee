/**
 * The {@code cuda-memeff} provider: memory-efficient attention on NVIDIA GPUs (compute capability 8.0 and up) for
 * what {@code cuda-flash} does not take: boolean and additive masks of any broadcast shape, fp32, value head dims
 * differing from the query's, head dims up to 512, dropout; forward and backward (training). Zero-copy on the
 * caller's device memory and stream.
 */
module dev.sdpa4j.provider.cuda.memeff {
  requires dev.sdpa4j;
  requires dev.sdpa4j.cuda;
  requires org.slf4j;
  requires static com.google.auto.service;

  exports dev.sdpa4j.provider.cuda.memeff;

  provides dev.sdpa4j.spi.AttentionProvider with dev.sdpa4j.provider.cuda.memeff.CudaMemeffProvider;
}
