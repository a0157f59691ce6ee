package dev.sdpa4j.provider.opencl;

import dev.sdpa4j.ProviderException;

/**
 * An OpenCL call failed: carries the status code, its {@code CL_*} name and the call. Out-of-memory statuses say
 * so in words; a failed kernel build carries the compiler's log in its message.
 */
public final class OpenClException extends ProviderException {
  private static final long serialVersionUID = 1L;

  private final int status;
  private final String call;

  OpenClException(int status, String call, String detail) {
    super(message(status, call, detail));
    this.status = status;
    this.call = call;
  }

  /** The OpenCL status code, e.g. -5. */
  public int status() {
    return status;
  }

  /** The name of the status code, e.g. {@code CL_OUT_OF_RESOURCES}. */
  public String statusName() {
    return ClStatus.name(status);
  }

  /** The call that failed, e.g. {@code clEnqueueNDRangeKernel(attn_fwd)}. */
  public String call() {
    return call;
  }

  private static String message(int status, String call, String detail) {
    StringBuilder s = new StringBuilder("OpenCL ").append(call).append(" failed: ").append(ClStatus.name(status))
        .append(" (").append(status).append(')');
    if (ClStatus.isOutOfMemory(status)) {
      s.append(": out of device memory or resources; use smaller tensors or free device memory");
    }
    if (detail != null && !detail.isBlank()) {
      s.append('\n').append(detail);
    }
    return s.toString();
  }
}
