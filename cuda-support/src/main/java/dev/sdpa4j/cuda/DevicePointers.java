package dev.sdpa4j.cuda;

import static org.bytedeco.cuda.global.cudart.CUDA_SUCCESS;
import static org.bytedeco.cuda.global.cudart.CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL;
import static org.bytedeco.cuda.global.cudart.cuMemGetAddressRange;
import static org.bytedeco.cuda.global.cudart.cuPointerGetAttribute;

import dev.sdpa4j.Storage;
import dev.sdpa4j.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Checks on callers' device pointers, so kernels never touch memory the caller did not give them. They run on every
 * provider call: the driver's out-parameters live in the calling thread's reused {@link CallScratch} (no allocation
 * per call) and the context is pushed once per call.
 */
@SuppressWarnings("try") // context scopes are held for their effect (push/pop), not referenced
public final class DevicePointers {
  private DevicePointers() {}

  /**
   * Every reason the device tensors cannot be used in {@code context}: an address not aligned to the tensor's
   * element size, or a {@link #problem}. Null entries of {@code tensors} (absent optional tensors) are skipped.
   *
   * @param names the tensors' names for the messages, parallel to {@code tensors}
   */
  public static List<String> problems(CudaContext context, String[] names, Tensor[] tensors) {
    List<String> reasons = new ArrayList<>();
    CallScratch out = CallScratch.get();
    try (CudaContext.Scope s = context.enter()) {
      for (int i = 0; i < tensors.length; i++) {
        Tensor t = tensors[i];
        if (t == null) {
          continue;
        }
        if (t.storage() instanceof Storage.DeviceBuffer b
            && (b.handle() + b.byteOffset()) % t.dtype().byteSize() != 0) {
          reasons.add(names[i] + " address 0x" + Long.toHexString(b.handle() + b.byteOffset())
              + " is not aligned to its " + t.dtype().byteSize() + "-byte elements");
        }
        check(context, t, names[i], out).ifPresent(reasons::add);
      }
    }
    return reasons;
  }

  /**
   * Why the device storage behind {@code t} cannot be used in {@code context}, or empty when it can: the handle
   * must be CUDA memory of the context's device, and the tensor's elements must lie inside that allocation.
   *
   * @param what the tensor's name for the message, e.g. {@code query}
   */
  public static Optional<String> problem(CudaContext context, Tensor t, String what) {
    try (CudaContext.Scope s = context.enter()) {
      return check(context, t, what, CallScratch.get());
    }
  }

  /** {@link #problem} with the context current, the driver's answers in {@code out}. */
  private static Optional<String> check(CudaContext context, Tensor t, String what, CallScratch out) {
    if (!(t.storage() instanceof Storage.DeviceBuffer(var device, long handle, long byteOffset, long byteSize))) {
      return Optional.of(what + " is not in device memory");
    }
    long start = handle + byteOffset;
    long end = start + t.elementSpan() * t.dtype().byteSize();
    int r = cuPointerGetAttribute(out.int1, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, handle);
    if (r != CUDA_SUCCESS) {
      return Optional.of(what + " handle 0x" + Long.toHexString(handle) + " is not CUDA device memory ("
          + CudaDriver.errorName(r) + ")");
    }
    int ordinal = out.int1.get();
    if (ordinal != context.device().ordinal()) {
      return Optional.of(what + " handle 0x" + Long.toHexString(handle) + " is memory of cuda:" + ordinal
          + ", not of cuda:" + context.device().ordinal());
    }
    long[] base = new long[1];
    r = cuMemGetAddressRange(base, out.size1, start);
    if (r != CUDA_SUCCESS) {
      return Optional.of(what + " address 0x" + Long.toHexString(start) + " is outside any CUDA allocation ("
          + CudaDriver.errorName(r) + ")");
    }
    long size = out.size1.get();
    if (end > base[0] + size) {
      return Optional.of(what + " reaches byte 0x" + Long.toHexString(end) + " beyond its CUDA allocation [0x"
          + Long.toHexString(base[0]) + ", 0x" + Long.toHexString(base[0] + size) + ")");
    }
    return Optional.empty();
  }
}
