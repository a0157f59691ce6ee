package dev.sdpa4j.cuda;

import static org.bytedeco.cuda.global.cudart.CU_STREAM_CAPTURE_STATUS_NONE;
import static org.bytedeco.cuda.global.cudart.CU_STREAM_NON_BLOCKING;
import static org.bytedeco.cuda.global.cudart.cuStreamCreate;
import static org.bytedeco.cuda.global.cudart.cuStreamDestroy;
import static org.bytedeco.cuda.global.cudart.cuStreamIsCapturing;
import static org.bytedeco.cuda.global.cudart.cuStreamSynchronize;

import java.util.concurrent.atomic.AtomicBoolean;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.javacpp.IntPointer;

/**
 * A CUDA stream: one this library created ({@link #create}, destroyed by {@link #close()}), or a caller's handle
 * ({@link #wrap}, never destroyed here), or the per-thread default stream ({@link #perThread()}).
 */
@SuppressWarnings("try") // context scopes are held for their effect (push/pop), not referenced
public final class CudaStream implements AutoCloseable {
  /** The handle value of {@code CU_STREAM_PER_THREAD}. */
  public static final long PER_THREAD_HANDLE = 0x2;

  /** {@code cuStreamIsCapturing}'s status out-parameter, one per thread (no native allocation per query). */
  private static final ThreadLocal<IntPointer> CAPTURE_STATUS = ThreadLocal.withInitial(() -> new IntPointer(1));

  private final CudaContext context;
  private final long handle;
  private final boolean owned;
  private final AtomicBoolean closed = new AtomicBoolean();

  private CudaStream(CudaContext context, long handle, boolean owned) {
    this.context = context;
    this.handle = handle;
    this.owned = owned;
  }

  /** Creates a non-blocking stream in {@code context}. */
  public static CudaStream create(CudaContext context) {
    try (CudaContext.Scope s = context.enter()) {
      CUstream_st st = new CUstream_st();
      CudaDriver.check(cuStreamCreate(st, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
      return new CudaStream(context, st.address(), true);
    }
  }

  /** A caller's stream handle ({@code CUstream}; 0 is the legacy default stream); never destroyed here. */
  public static CudaStream wrap(CudaContext context, long handle) {
    return new CudaStream(context, handle, false);
  }

  /**
   * The stream a provider call runs on, from the {@code AttentionOptions.stream()} handle: the caller's stream
   * ({@link #wrap}), or for 0 the per-thread default stream ({@link #perThread}), which the call waits for itself.
   */
  public static CudaStream forCall(CudaContext context, long callerHandle) {
    return callerHandle != 0 ? wrap(context, callerHandle) : perThread(context);
  }

  /** The per-thread default stream of {@code context}: free to use from any thread, never destroyed. */
  public static CudaStream perThread(CudaContext context) {
    return new CudaStream(context, PER_THREAD_HANDLE, false);
  }

  public CudaContext context() {
    return context;
  }

  /** The native {@code CUstream}. */
  public long handle() {
    return handle;
  }

  CUstream_st pointer() {
    return Handles.stream(handle);
  }

  /** Waits until all work queued on this stream is done; a failed kernel surfaces here as a {@link CudaException}. */
  public void synchronize() {
    try (CudaContext.Scope s = context.enter()) {
      CudaDriver.check(cuStreamSynchronize(pointer()), "cuStreamSynchronize");
    }
  }

  /**
   * Whether work queued on this stream is being captured into a CUDA graph now ({@code cuStreamIsCapturing}): such
   * work runs later, possibly on another stream, so it must not use buffers whose contents depend on stream order.
   */
  public boolean capturing() {
    IntPointer status = CAPTURE_STATUS.get();
    try (CudaContext.Scope s = context.enter()) {
      CudaDriver.check(cuStreamIsCapturing(pointer(), status), "cuStreamIsCapturing");
    }
    return status.get() != CU_STREAM_CAPTURE_STATUS_NONE;
  }

  /** Destroys a created stream (idempotent); does nothing for wrapped ones. */
  @Override
  public void close() {
    if (owned && closed.compareAndSet(false, true)) {
      try (CudaContext.Scope s = context.enter()) {
        CudaDriver.check(cuStreamDestroy(pointer()), "cuStreamDestroy");
      }
    }
  }
}
