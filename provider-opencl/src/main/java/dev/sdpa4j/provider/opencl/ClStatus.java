package dev.sdpa4j.provider.opencl;

import org.jocl.CL;
import org.jocl.CLException;

/** OpenCL status codes: their names, and the check that turns a failure into an {@link OpenClException}. */
final class ClStatus {
  private ClStatus() {}

  /** The {@code CL_*} name of a status code, e.g. {@code CL_OUT_OF_RESOURCES} for -5. */
  static String name(int status) {
    String n = CL.stringFor_errorCode(status);
    return n == null || n.startsWith("INVALID error code") ? "unknown OpenCL status " + status : n;
  }

  /** True for the statuses meaning that memory or resources ran out. */
  static boolean isOutOfMemory(int status) {
    return status == CL.CL_MEM_OBJECT_ALLOCATION_FAILURE || status == CL.CL_OUT_OF_RESOURCES
        || status == CL.CL_OUT_OF_HOST_MEMORY || status == CL.CL_INVALID_BUFFER_SIZE;
  }

  /** Throws an {@link OpenClException} naming {@code call} unless {@code status} is {@code CL_SUCCESS}. */
  static void check(int status, String call) {
    if (status != CL.CL_SUCCESS) {
      throw new OpenClException(status, call, null);
    }
  }

  /** Runs a JOCL call that returns a status, also when the caller has turned JOCL's own exceptions on. */
  static void call(String call, StatusCall body) {
    int status;
    try {
      status = body.run();
    } catch (CLException e) {
      throw new OpenClException(e.getStatus(), call, e.getMessage());
    }
    check(status, call);
  }

  /** Runs a JOCL create call whose status comes back through {@code errcode_ret}. */
  static <T> T create(String call, CreateCall<T> body) {
    int[] err = new int[1];
    T result;
    try {
      result = body.run(err);
    } catch (CLException e) {
      throw new OpenClException(e.getStatus(), call, e.getMessage());
    }
    check(err[0], call);
    return result;
  }

  @FunctionalInterface
  interface StatusCall {
    int run();
  }

  @FunctionalInterface
  interface CreateCall<T> {
    T run(int[] errcode);
  }
}
