/**
 * Shared CUDA plumbing for sdpa4j's CUDA providers, over the driver API and NVRTC of {@code org.bytedeco:cuda}:
 * availability probing ({@link dev.sdpa4j.cuda.CudaDriver}), primary contexts, streams, events, device memory and
 * device tensors, host staging, and a kernel-module loader that prefers packaged cubins and falls back to NVRTC.
 */
module dev.sdpa4j.cuda {
  requires transitive dev.sdpa4j;
  requires org.bytedeco.javacpp;
  requires org.bytedeco.cuda;
  requires org.slf4j;

  exports dev.sdpa4j.cuda;
}
