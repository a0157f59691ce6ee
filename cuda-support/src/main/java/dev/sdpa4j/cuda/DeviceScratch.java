package dev.sdpa4j.cuda;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Device memory that lives for one provider call: allocated in stream order on the call's stream, freed together
 * when the scratch is closed (also in stream order, so kernels still queued keep their buffers). Not thread-safe:
 * one per call.
 */
public final class DeviceScratch implements AutoCloseable {
  private final CudaContext context;
  private final CudaStream stream;
  private final List<DeviceMemory> buffers = new ArrayList<>();

  public DeviceScratch(CudaContext context, CudaStream stream) {
    this.context = Objects.requireNonNull(context, "context");
    this.stream = Objects.requireNonNull(stream, "stream");
  }

  /** A new buffer of at least {@code bytes} bytes (16 at least, so that empty tensors still get a valid address). */
  public DeviceMemory allocate(long bytes) {
    DeviceMemory m = DeviceMemory.allocateAsync(context, Math.max(16, bytes), stream);
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
