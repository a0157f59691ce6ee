package dev.sdpa4j.cuda;

import static org.bytedeco.cuda.global.cudart.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES;
import static org.bytedeco.cuda.global.cudart.CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED;
import static org.bytedeco.cuda.global.cudart.CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
import static org.bytedeco.cuda.global.cudart.cuFuncSetAttribute;
import static org.bytedeco.cuda.global.cudart.cuLaunchKernel;
import static org.bytedeco.cuda.global.cudart.cuLaunchKernelEx;

import org.bytedeco.cuda.cudart.CUfunc_st;
import org.bytedeco.cuda.cudart.CUlaunchAttribute;
import org.bytedeco.cuda.cudart.CUlaunchConfig;
import org.bytedeco.javacpp.PointerPointer;

/**
 * A kernel of a loaded {@link KernelModule}. Thread-safe. A launch copies its arguments into the calling thread's
 * reused native buffer ({@link CallScratch}: no allocation per launch) and pushes the module's context once.
 */
@SuppressWarnings("try") // context scopes are held for their effect (push/pop), not referenced
public final class CudaFunction {
  private final KernelModule module;
  private final String name;
  private final CUfunc_st function;
  private volatile int dynamicSharedLimit = 48 * 1024;
  private volatile boolean nonPortableClusters;
  /** The portable cluster size: larger clusters need {@code CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED}. */
  public static final int MAX_PORTABLE_CLUSTER = 8;

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
    CallScratch scratch = CallScratch.get();
    try (CudaContext.Scope s = module.context().enter()) {
      CudaDriver.check(cuLaunchKernel(function, grid.x(), grid.y(), grid.z(), block.x(), block.y(), block.z(),
              sharedBytes, stream.pointer(), scratch.params.of(args), (PointerPointer<?>) null),
          "cuLaunchKernel(" + name + ", grid " + grid + ", block " + block + ", smem " + sharedBytes + ")");
    }
  }

  /**
   * Queues the kernel as a grid of thread-block clusters ({@code cuLaunchKernelEx} with
   * {@code CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION}; compute capability 9.0 and later): the blocks of each
   * {@code cluster}-shaped tile of {@code grid} run at the same time on one GPU processing cluster and may read each
   * other's shared memory. Each grid dimension must be a multiple of the cluster's; clusters of more than
   * {@link #MAX_PORTABLE_CLUSTER} blocks set the kernel's non-portable cluster size attribute first (up to 16 on
   * Hopper).
   *
   * @throws CudaException naming the kernel when the device refuses the attribute or the launch
   */
  public void launchCluster(Dim3 grid, Dim3 cluster, Dim3 block, int sharedBytes, CudaStream stream, KernelArgs args) {
    if (sharedBytes > dynamicSharedLimit) {
      setMaxDynamicSharedMemory(sharedBytes);
    }
    if ((long) cluster.x() * cluster.y() * cluster.z() > MAX_PORTABLE_CLUSTER && !nonPortableClusters) {
      allowNonPortableClusters();
    }
    CallScratch scratch = CallScratch.get();
    try (CudaContext.Scope s = module.context().enter()) {
      CUlaunchAttribute a = scratch.attribute;
      a.id(CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION);
      a.value().clusterDim_x(cluster.x()).clusterDim_y(cluster.y()).clusterDim_z(cluster.z());
      CUlaunchConfig c = scratch.config;
      c.gridDimX(grid.x()).gridDimY(grid.y()).gridDimZ(grid.z()).blockDimX(block.x()).blockDimY(block.y())
          .blockDimZ(block.z()).sharedMemBytes(sharedBytes).hStream(stream.pointer()).attrs(a).numAttrs(1);
      CudaDriver.check(cuLaunchKernelEx(c, function, scratch.params.of(args), (PointerPointer<?>) null),
          "cuLaunchKernelEx(" + name + ", grid " + grid + ", cluster " + cluster + ", block " + block + ", smem "
              + sharedBytes + ")");
    }
  }

  private synchronized void allowNonPortableClusters() {
    if (nonPortableClusters) {
      return;
    }
    try (CudaContext.Scope s = module.context().enter()) {
      CudaDriver.check(cuFuncSetAttribute(function, CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1),
          "cuFuncSetAttribute(" + name + ", NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1)");
    }
    nonPortableClusters = true;
  }
}
