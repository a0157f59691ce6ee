package dev.sdpa4j.cuda;

import static org.bytedeco.cuda.global.cudart.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES;
import static org.bytedeco.cuda.global.cudart.cuFuncSetAttribute;
import static org.bytedeco.cuda.global.cudart.cuLaunchKernel;

import java.util.List;
import org.bytedeco.cuda.cudart.CUfunc_st;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerPointer;

/** A kernel of a loaded {@link KernelModule}. Thread-safe. */
@SuppressWarnings("try") // context scopes are held for their effect (push/pop), not referenced
public final class CudaFunction {
  private final KernelModule module;
  private final String name;
  private final CUfunc_st function;
  private volatile int dynamicSharedLimit = 48 * 1024;

  CudaFunction(KernelModule module, String name, CUfunc_st function) {
    this.module = module;
    this.name = name;
    this.function = function;
  }

  public String name() {
    return name;
  }

  /** Raises the kernel's dynamic shared-memory limit ({@code cuFuncSetAttribute}); needed above 48 KiB. */
  public synchronized void setMaxDynamicSharedMemory(int bytes) {
    if (bytes <= dynamicSharedLimit) {
      return;
    }
    try (CudaContext.Scope s = module.context().enter()) {
      CudaDriver.check(cuFuncSetAttribute(function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes),
          "cuFuncSetAttribute(" + name + ", MAX_DYNAMIC_SHARED_SIZE_BYTES, " + bytes + ")");
    }
    dynamicSharedLimit = bytes;
  }

  /**
   * Queues the kernel on {@code stream}. Raises the shared-memory limit first when {@code sharedBytes} needs it.
   *
   * @throws CudaException naming the kernel when the launch is refused
   */
  public void launch(Dim3 grid, Dim3 block, int sharedBytes, CudaStream stream, KernelArgs args) {
    if (sharedBytes > dynamicSharedLimit) {
      setMaxDynamicSharedMemory(sharedBytes);
    }
    List<byte[]> values = args.values();
    BytePointer[] natives = new BytePointer[values.size()];
    try (PointerPointer<BytePointer> params = new PointerPointer<>(values.size());
         CudaContext.Scope s = module.context().enter()) {
      for (int i = 0; i < natives.length; i++) {
        natives[i] = new BytePointer(Math.max(8, values.get(i).length));
        natives[i].put(values.get(i));
        params.put(i, natives[i]);
      }
      CudaDriver.check(cuLaunchKernel(function, grid.x(), grid.y(), grid.z(), block.x(), block.y(), block.z(),
              sharedBytes, stream.pointer(), params, (PointerPointer<?>) null),
          "cuLaunchKernel(" + name + ", grid " + grid + ", block " + block + ", smem " + sharedBytes + ")");
    } finally {
      for (BytePointer p : natives) {
        if (p != null) {
          p.close();
        }
      }
    }
  }
}
