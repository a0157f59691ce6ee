package dev.sdpa4j.cuda;

import static org.bytedeco.cuda.global.cudart.CU_EVENT_DEFAULT;
import static org.bytedeco.cuda.global.cudart.CU_EVENT_DISABLE_TIMING;
import static org.bytedeco.cuda.global.cudart.cuEventCreate;
import static org.bytedeco.cuda.global.cudart.cuEventDestroy;
import static org.bytedeco.cuda.global.cudart.cuEventElapsedTime;
import static org.bytedeco.cuda.global.cudart.cuEventRecord;
import static org.bytedeco.cuda.global.cudart.cuEventSynchronize;

import java.util.concurrent.atomic.AtomicBoolean;
import org.bytedeco.cuda.cudart.CUevent_st;

/** A CUDA event, for timing ({@link #elapsedMillis}) and ordering; destroyed by {@link #close()}. */
@SuppressWarnings("try") // context scopes are held for their effect (push/pop), not referenced
public final class CudaEvent implements AutoCloseable {
  private final CudaContext context;
  private final CUevent_st event;
  private final AtomicBoolean closed = new AtomicBoolean();

  private CudaEvent(CudaContext context, CUevent_st event) {
    this.context = context;
    this.event = event;
  }

  /** Creates an event; {@code timing} false makes a lighter event that cannot be timed. */
  public static CudaEvent create(CudaContext context, boolean timing) {
    try (CudaContext.Scope s = context.enter()) {
      CUevent_st e = new CUevent_st();
      CudaDriver.check(cuEventCreate(e, timing ? CU_EVENT_DEFAULT : CU_EVENT_DISABLE_TIMING), "cuEventCreate");
      return new CudaEvent(context, e);
    }
  }

  /** Records this event on {@code stream}. */
  public void record(CudaStream stream) {
    try (CudaContext.Scope s = context.enter()) {
      CudaDriver.check(cuEventRecord(event, stream.pointer()), "cuEventRecord");
    }
  }

  /** Waits until the work before the last {@link #record} is done. */
  public void synchronize() {
    try (CudaContext.Scope s = context.enter()) {
      CudaDriver.check(cuEventSynchronize(event), "cuEventSynchronize");
    }
  }

  /** Milliseconds between two recorded, completed timing events. */
  public static float elapsedMillis(CudaEvent start, CudaEvent end) {
    float[] ms = new float[1];
    try (CudaContext.Scope s = start.context.enter()) {
      CudaDriver.check(cuEventElapsedTime(ms, start.event, end.event), "cuEventElapsedTime");
    }
    return ms[0];
  }

  @Override
  public void close() {
    if (closed.compareAndSet(false, true)) {
      try (CudaContext.Scope s = context.enter()) {
        CudaDriver.check(cuEventDestroy(event), "cuEventDestroy");
      }
    }
  }
}
