/**
 * The {@code cuda-flash} provider: FlashAttention-2-class forward and backward kernels on NVIDIA tensor cores (compute capability
 * 8.0 and up), zero-copy on the caller's device memory and stream.
 */
module dev.sdpa4j.provider.cuda.flash {
  requires transitive dev.sdpa4j;
  requires dev.sdpa4j.cuda;
  requires org.slf4j;
  requires static com.google.auto.service;

  exports dev.sdpa4j.provider.cuda.flash;

  provides dev.sdpa4j.spi.AttentionProvider with dev.sdpa4j.provider.cuda.flash.CudaFlashProvider;
}
