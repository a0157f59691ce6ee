package dev.sdpa4j;

/** Where a tensor's memory lives. */
public enum Platform {
  /** Host memory: a {@link java.lang.foreign.MemorySegment}. */
  HOST,
  /** CUDA device memory: a device pointer in the device's primary context. */
  CUDA,
  /** OpenCL device memory: a {@code cl_mem} buffer handle. */
  OPENCL
}
