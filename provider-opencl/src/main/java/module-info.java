/**
 * The {@code opencl} attention provider: FlashAttention-2-shaped kernels for any OpenCL device, through JOCL.
 */
module dev.sdpa4j.provider.opencl {
  requires transitive dev.sdpa4j;
  requires jocl;
  requires org.slf4j;
  requires static com.google.auto.service;

  exports dev.sdpa4j.provider.opencl;

  provides dev.sdpa4j.spi.AttentionProvider with dev.sdpa4j.provider.opencl.OpenClProvider;
}
