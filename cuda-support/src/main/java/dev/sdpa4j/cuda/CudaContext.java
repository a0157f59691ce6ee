package dev.sdpa4j.cuda;

import static org.bytedeco.cuda.global.cudart.cuCtxPopCurrent;
import static org.bytedeco.cuda.global.cudart.cuCtxPushCurrent;
import static org.bytedeco.cuda.global.cudart.cuDevicePrimaryCtxRelease;
import static org.bytedeco.cuda.global.cudart.cuDevicePrimaryCtxRetain;
import static org.bytedeco.cuda.global.cudart.cuMemGetInfo;

import java.util.concurrent.atomic.AtomicBoolean;
import org.bytedeco.cuda.cudart.CUctx_st;
import org.bytedeco.javacpp.SizeTPointer;

/**
 * A retained primary context of one device (the context the CUDA runtime and PyTorch use too, so device pointers
 * from those libraries are valid here). {@link #close()} releases the retain; the context itself lives while anyone
 * retains it. Thread-safe: {@link #enter()} makes it current on the calling thread only.
 *
 * <pre>{@code
 * try (CudaContext ctx = CudaContext.retainPrimary(0); CudaContext.Scope s = ctx.enter()) {
 *   ... driver calls ...
 * }
 * }</pre>
 */
@SuppressWarnings("try") // context scopes are held for their effect (push/pop), not referenced
public final class CudaContext implements AutoCloseable {
  private final CudaDevice device;
  private final long handle;
  private final AtomicBoolean closed = new AtomicBoolean();

  private CudaContext(CudaDevice device, long handle) {
    this.device = device;
    this.handle = handle;
  }

  /**
   * Retains the primary context of device {@code ordinal}.
   *
   * @throws IllegalStateException when CUDA is unavailable
   * @throws IllegalArgumentException when there is no such device
   * @throws CudaException when the driver refuses
   */
  public static CudaContext retainPrimary(int ordinal) {
    CudaDriver.requireAvailable();
    CudaDevice device = CudaDriver.device(ordinal);
    CUctx_st ctx = new CUctx_st();
    CudaDriver.check(cuDevicePrimaryCtxRetain(ctx, ordinal), "cuDevicePrimaryCtxRetain(" + ordinal + ")");
    return new CudaContext(device, ctx.address());
  }

  /** The device of this context. */
  public CudaDevice device() {
    return device;
  }

  /** The native {@code CUcontext}. */
  public long handle() {
    return handle;
  }

  /** Makes this context current on the calling thread until the returned scope is closed (push/pop, nestable). */
  public Scope enter() {
    if (closed.get()) {
      throw new IllegalStateException("context of CUDA device " + device.ordinal() + " is closed");
    }
    CudaDriver.check(cuCtxPushCurrent(Handles.context(handle)), "cuCtxPushCurrent(device " + device.ordinal() + ")");
    return new Scope();
  }

  /** Free and total device memory in bytes, as {@code cuMemGetInfo} reports them: {@code [free, total]}. */
  public long[] memoryInfo() {
    try (Scope s = enter(); SizeTPointer free = new SizeTPointer(1); SizeTPointer total = new SizeTPointer(1)) {
      CudaDriver.check(cuMemGetInfo(free, total), "cuMemGetInfo");
      return new long[] {free.get(), total.get()};
    }
  }

  /** Releases this retain of the primary context; idempotent. */
  @Override
  public void close() {
    if (closed.compareAndSet(false, true)) {
      CudaDriver.check(cuDevicePrimaryCtxRelease(device.ordinal()),
          "cuDevicePrimaryCtxRelease(" + device.ordinal() + ")");
    }
  }

  /** The span during which the context is current on this thread; close it on the same thread. */
  public final class Scope implements AutoCloseable {
    private Scope() {}

    @Override
    public void close() {
      CudaDriver.check(cuCtxPopCurrent(new CUctx_st()), "cuCtxPopCurrent(device " + device.ordinal() + ")");
    }
  }
}
