package dev.sdpa4j.cuda;

import dev.sdpa4j.ProviderException;

/**
 * A CUDA driver or NVRTC call failed. The message names the call and the error, e.g.
 * {@code "cuMemAlloc(1073741824 bytes) failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory)"}.
 */
public final class CudaException extends ProviderException {
  private static final long serialVersionUID = 1L;

  private final int code;
  private final String errorName;

  CudaException(String call, int code, String errorName, String description) {
    super(call + " failed: " + errorName + (description.isEmpty() ? "" : " (" + description + ")"));
    this.code = code;
    this.errorName = errorName;
  }

  /** The numeric result code ({@code CUresult} or {@code nvrtcResult}). */
  public int code() {
    return code;
  }

  /** The symbolic error name, e.g. {@code CUDA_ERROR_OUT_OF_MEMORY}. */
  public String errorName() {
    return errorName;
  }
}
