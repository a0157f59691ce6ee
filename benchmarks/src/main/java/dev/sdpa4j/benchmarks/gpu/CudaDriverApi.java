package dev.sdpa4j.benchmarks.gpu;

import static org.bytedeco.cuda.global.cudart.cuCtxSetCurrent;
import static org.bytedeco.cuda.global.cudart.cuDevicePrimaryCtxRetain;
import static org.bytedeco.cuda.global.cudart.cuDriverGetVersion;
import static org.bytedeco.cuda.global.cudart.cuEventCreate;
import static org.bytedeco.cuda.global.cudart.cuEventDestroy;
import static org.bytedeco.cuda.global.cudart.cuEventElapsedTime;
import static org.bytedeco.cuda.global.cudart.cuEventRecord;
import static org.bytedeco.cuda.global.cudart.cuEventSynchronize;
import static org.bytedeco.cuda.global.cudart.cuGetErrorString;
import static org.bytedeco.cuda.global.cudart.cuInit;
import static org.bytedeco.cuda.global.cudart.cuMemAlloc;
import static org.bytedeco.cuda.global.cudart.cuMemFree;
import static org.bytedeco.cuda.global.cudart.cuMemGetInfo;
import static org.bytedeco.cuda.global.cudart.cuMemcpyDtoH;
import static org.bytedeco.cuda.global.cudart.cuMemcpyHtoD;
import static org.bytedeco.cuda.global.cudart.cuStreamCreate;
import static org.bytedeco.cuda.global.cudart.cuStreamDestroy;
import static org.bytedeco.cuda.global.cudart.cuStreamSynchronize;

import org.bytedeco.cuda.cudart.CUctx_st;
import org.bytedeco.cuda.cudart.CUevent_st;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.SizeTPointer;

/**
 * The few CUDA driver calls the GPU benchmark needs, straight through {@code org.bytedeco:cuda}: the device's
 * primary context (the one sdpa4j's CUDA providers use), device memory, a stream and events. Independent of the
 * providers' own plumbing, so the benchmark times them as any CUDA user would call them. Each method checks the
 * result and throws {@link IllegalStateException} naming the call and the CUDA error.
 */
final class CudaDriverApi {
  private CudaDriverApi() {}

  static void check(int result, String call) {
    if (result != 0) {
      BytePointer msg = new BytePointer((Pointer) null);
      cuGetErrorString(result, msg);
      throw new IllegalStateException(call + " failed: CUDA error " + result
          + (msg.isNull() ? "" : " (" + msg.getString() + ")"));
    }
  }

  private static final java.util.Map<Integer, CUctx_st> PRIMARY = new java.util.concurrent.ConcurrentHashMap<>();

  /**
   * Initialises the driver and makes device {@code ordinal}'s primary context current on this thread; the context
   * is retained once per process (and kept for its lifetime).
   */
  static void usePrimaryContext(int ordinal) {
    CUctx_st ctx = PRIMARY.computeIfAbsent(ordinal, o -> {
      check(cuInit(0), "cuInit");
      CUctx_st c = new CUctx_st();
      check(cuDevicePrimaryCtxRetain(c, o), "cuDevicePrimaryCtxRetain(" + o + ")");
      return c;
    });
    check(cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
  }

  /** The CUDA driver's version, e.g. {@code 13.0}. */
  static String driverVersion() {
    check(cuInit(0), "cuInit");
    int[] v = new int[1];
    check(cuDriverGetVersion(v), "cuDriverGetVersion");
    return v[0] / 1000 + "." + v[0] % 1000 / 10;
  }

  static long alloc(long bytes) {
    long[] p = new long[1];
    check(cuMemAlloc(p, bytes), "cuMemAlloc(" + bytes + ")");
    return p[0];
  }

  static void free(long ptr) {
    check(cuMemFree(ptr), "cuMemFree");
  }

  static void upload(long dst, Pointer src, long bytes) {
    check(cuMemcpyHtoD(dst, src, bytes), "cuMemcpyHtoD");
  }

  static void download(Pointer dst, long src, long bytes) {
    check(cuMemcpyDtoH(dst, src, bytes), "cuMemcpyDtoH");
  }

  /** Free device memory in bytes. */
  static long freeBytes() {
    try (SizeTPointer free = new SizeTPointer(1); SizeTPointer total = new SizeTPointer(1)) {
      check(cuMemGetInfo(free, total), "cuMemGetInfo");
      return free.get();
    }
  }

  static CUstream_st stream() {
    CUstream_st s = new CUstream_st();
    check(cuStreamCreate(s, 0), "cuStreamCreate");
    return s;
  }

  static void synchronize(CUstream_st s) {
    check(cuStreamSynchronize(s), "cuStreamSynchronize");
  }

  static void destroy(CUstream_st s) {
    check(cuStreamDestroy(s), "cuStreamDestroy");
  }

  static CUevent_st event() {
    CUevent_st e = new CUevent_st();
    check(cuEventCreate(e, 0), "cuEventCreate");
    return e;
  }

  static void record(CUevent_st e, CUstream_st s) {
    check(cuEventRecord(e, s), "cuEventRecord");
  }

  /** Milliseconds between two recorded events, after waiting for the second. */
  static float elapsedMs(CUevent_st start, CUevent_st stop) {
    check(cuEventSynchronize(stop), "cuEventSynchronize");
    try (FloatPointer ms = new FloatPointer(1)) {
      check(cuEventElapsedTime(ms, start, stop), "cuEventElapsedTime");
      return ms.get();
    }
  }

  static void destroy(CUevent_st e) {
    check(cuEventDestroy(e), "cuEventDestroy");
  }
}
