package dev.sdpa4j.cuda.testing;

import dev.sdpa4j.Device;
import dev.sdpa4j.Storage;
import dev.sdpa4j.conformance.TensorMemory;
import dev.sdpa4j.cuda.CudaContext;
import dev.sdpa4j.cuda.CudaStream;
import dev.sdpa4j.cuda.DeviceMemory;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The conformance kit's tensors in CUDA device memory, so the kit exercises a provider's zero-copy path. Shared by
 * the CUDA providers' tests through this module's test jar ({@code <type>test-jar</type>}).
 */
public final class CudaTensorMemory implements TensorMemory {
  private final CudaContext context;
  private final ConcurrentHashMap<Long, DeviceMemory> live = new ConcurrentHashMap<>();

  /** Tensors live in {@code context}'s device; the context stays owned by the caller. */
  public CudaTensorMemory(CudaContext context) {
    this.context = context;
  }

  @Override
  public Device device() {
    return context.device().device();
  }

  @Override
  public Storage allocate(long byteSize) {
    DeviceMemory m = DeviceMemory.allocate(context, Math.max(1, byteSize));
    live.put(m.address(), m);
    return new Storage.DeviceBuffer(device(), m.address(), 0, byteSize);
  }

  private DeviceMemory memory(Storage s) {
    return live.get(((Storage.DeviceBuffer) s).handle());
  }

  @Override
  public void copyToDevice(MemorySegment source, Storage target) {
    memory(target).copyFromHostAndWait(source, ((Storage.DeviceBuffer) target).byteOffset(),
        CudaStream.perThread(context));
  }

  @Override
  public void copyToHost(Storage source, MemorySegment target) {
    memory(source).copyToHostAndWait(((Storage.DeviceBuffer) source).byteOffset(), target,
        CudaStream.perThread(context));
  }

  @Override
  public void release(Storage storage) {
    DeviceMemory m = live.remove(((Storage.DeviceBuffer) storage).handle());
    if (m != null) {
      m.close();
    }
  }
}
