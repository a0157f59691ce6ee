package dev.sdpa4j.cuda;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Device memory that lives for one provider call: allocated in stream order on the call's stream (from the device's
 * default pool, or from a {@link CudaMemoryPool}), freed together when the scratch is closed (also in stream order,
 * so kernels still queued keep their buffers). Not thread-safe: one per call.
 */
public final class DeviceScratch implements AutoCloseable {
  private final CudaContext context;
  private final CudaMemoryPool pool;
  private final CudaStream stream;
  private final List<DeviceMemory> buffers = new ArrayList<>();

  /** Scratch from the device's default memory pool. */
  public DeviceScratch(CudaContext context, CudaStream stream) {
    this.context = Objects.requireNonNull(context, "context");
    this.pool = null;
    this.stream = Objects.requireNonNull(stream, "stream");
  }

  /** Scratch from {@code pool}, which keeps its memory reserved between calls up to its release threshold. */
  public DeviceScratch(CudaMemoryPool pool, CudaStream stream) {
    this.pool = Objects.requireNonNull(pool, "pool");
    this.context = pool.context();
    this.stream = Objects.requireNonNull(stream, "stream");
  }

  /** A new buffer of at least {@code bytes} bytes (16 at least, so that empty tensors still get a valid address). */
  public DeviceMemory allocate(long bytes) {
    DeviceMemory m = pool == null ? DeviceMemory.allocateAsync(context, Math.max(16, bytes), stream)
        : DeviceMemory.allocateAsync(pool, Math.max(16, bytes), stream);
    buffers.add(m);
    return m;
  }

  /** Frees every buffer; the first failure is rethrown after all were tried. */
  @Override
  public void close() {
    RuntimeException first = null;
    for (DeviceMemory m : buffers) {
      try {
        m.close();
      } catch (RuntimeException e) {
        if (first == null) {
          first = e;
        }
      }
    }
    buffers.clear();
    if (first != null) {
      throw first;
    }
  }
}
