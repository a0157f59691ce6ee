package dev.sdpa4j.cuda;

import static org.bytedeco.cuda.global.cudart.CU_MEMPOOL_ATTR_RELEASE_THRESHOLD;
import static org.bytedeco.cuda.global.cudart.CU_MEM_ALLOCATION_TYPE_PINNED;
import static org.bytedeco.cuda.global.cudart.CU_MEM_HANDLE_TYPE_NONE;
import static org.bytedeco.cuda.global.cudart.CU_MEM_LOCATION_TYPE_DEVICE;
import static org.bytedeco.cuda.global.cudart.cuMemPoolCreate;
import static org.bytedeco.cuda.global.cudart.cuMemPoolDestroy;
import static org.bytedeco.cuda.global.cudart.cuMemPoolSetAttribute;

import java.util.concurrent.atomic.AtomicBoolean;
import org.bytedeco.cuda.cudart.CUmemPoolHandle_st;
import org.bytedeco.cuda.cudart.CUmemPoolProps_v1;
import org.bytedeco.javacpp.LongPointer;

/**
 * A stream-ordered memory pool of one device ({@code cuMemPoolCreate}) that keeps up to a release threshold of
 * memory reserved across synchronisations. The device's default pool has a threshold of 0: every synchronisation
 * hands its memory back to the driver, and the next stream-ordered allocation maps it again, which costs far more
 * than the allocation itself. Allocations from this pool ({@link DeviceMemory#allocateAsync(CudaMemoryPool, long,
 * CudaStream)}) are freed in stream order like those of the default pool; memory reuse across streams follows the
 * pool's default stream-ordering rules (reuse only after the freeing stream's work is known to be done). Thread-safe.
 * {@link #close()} destroys the pool; its allocations must be freed first.
 */
@SuppressWarnings("try") // context scopes are held for their effect (push/pop), not referenced
public final class CudaMemoryPool implements AutoCloseable {
  private final CudaContext context;
  private final CUmemPoolHandle_st pool;
  private final long releaseThreshold;
  private final AtomicBoolean closed = new AtomicBoolean();

  private CudaMemoryPool(CudaContext context, CUmemPoolHandle_st pool, long releaseThreshold) {
    this.context = context;
    this.pool = pool;
    this.releaseThreshold = releaseThreshold;
  }

  /**
   * Creates a pool of device memory on the context's device that keeps up to {@code releaseThresholdBytes} reserved
   * when a synchronisation finds them unused ({@code CU_MEMPOOL_ATTR_RELEASE_THRESHOLD}).
   *
   * @throws IllegalArgumentException when the threshold is negative
   * @throws CudaException when the driver refuses
   */
  public static CudaMemoryPool create(CudaContext context, long releaseThresholdBytes) {
    if (releaseThresholdBytes < 0) {
      throw new IllegalArgumentException("releaseThresholdBytes must be >= 0, got " + releaseThresholdBytes);
    }
    try (CudaContext.Scope s = context.enter(); CUmemPoolProps_v1 props = new CUmemPoolProps_v1();
         LongPointer threshold = new LongPointer(1)) {
      props.allocType(CU_MEM_ALLOCATION_TYPE_PINNED).handleTypes(CU_MEM_HANDLE_TYPE_NONE);
      props.location().type(CU_MEM_LOCATION_TYPE_DEVICE).id(context.device().ordinal());
      CUmemPoolHandle_st pool = new CUmemPoolHandle_st();
      CudaDriver.check(cuMemPoolCreate(pool, props), "cuMemPoolCreate(device " + context.device().ordinal() + ")");
      threshold.put(releaseThresholdBytes);
      int rc = cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, threshold);
      if (rc != 0) {
        cuMemPoolDestroy(pool);
        CudaDriver.check(rc, "cuMemPoolSetAttribute(RELEASE_THRESHOLD, " + releaseThresholdBytes + ")");
      }
      return new CudaMemoryPool(context, pool, releaseThresholdBytes);
    }
  }

  public CudaContext context() {
    return context;
  }

  /** The bytes the pool keeps reserved across synchronisations. */
  public long releaseThreshold() {
    return releaseThreshold;
  }

  CUmemPoolHandle_st handle() {
    if (closed.get()) {
      throw new IllegalStateException("memory pool already destroyed");
    }
    return pool;
  }

  /** Destroys the pool (idempotent); its memory goes back to the driver. */
  @Override
  public void close() {
    if (closed.compareAndSet(false, true)) {
      try (CudaContext.Scope s = context.enter()) {
        CudaDriver.check(cuMemPoolDestroy(pool), "cuMemPoolDestroy");
      }
    }
  }
}
