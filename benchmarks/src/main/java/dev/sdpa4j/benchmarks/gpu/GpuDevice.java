package dev.sdpa4j.benchmarks.gpu;

import dev.sdpa4j.cuda.CudaContext;
import dev.sdpa4j.cuda.CudaException;
import dev.sdpa4j.cuda.CudaFunction;
import dev.sdpa4j.cuda.CudaStream;
import dev.sdpa4j.cuda.DeviceMemory;
import dev.sdpa4j.cuda.Dim3;
import dev.sdpa4j.cuda.KernelArgs;
import dev.sdpa4j.cuda.KernelModule;
import dev.sdpa4j.cuda.KernelSource;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.bytedeco.javacpp.Pointer;

/**
 * One CUDA device as the GPU benchmark uses it: the device's primary context (the one sdpa4j's CUDA providers and
 * PyTorch use, so device pointers pass between them) and the benchmark's own kernels
 * ({@code src/main/cuda/eager_attention.cu}: the input generator and the eager baseline's softmax kernels), loaded
 * once per process and kept for its lifetime.
 */
final class GpuDevice {
  static final KernelSource KERNELS = new KernelSource("bench-eager", "/dev/sdpa4j/benchmarks/gpu/kernels",
      "eager_attention.cu", List.of("-std=c++17"), GpuDevice.class::getResourceAsStream);

  private static final Map<Integer, GpuDevice> DEVICES = new ConcurrentHashMap<>();

  private final CudaContext context;
  private final KernelModule module;

  private GpuDevice(int ordinal) {
    context = CudaContext.retainPrimary(ordinal);
    module = KernelModule.load(context, KERNELS);
  }

  /** The device {@code ordinal}, opened at the first call. */
  static GpuDevice of(int ordinal) {
    return DEVICES.computeIfAbsent(ordinal, GpuDevice::new);
  }

  CudaContext context() {
    return context;
  }

  /** Where the kernels came from: a packaged cubin, NVRTC, or PTX. */
  String kernelOrigin() {
    return module.origin() + " " + module.arch();
  }

  CudaFunction function(String name) {
    return module.function(name);
  }

  /** Free device memory in bytes. */
  long freeBytes() {
    return context.memoryInfo()[0];
  }

  /**
   * Allocates {@code bytes}; a full device becomes an {@link OutOfMemoryError} naming the request, so that sweeps
   * record it as OOM.
   */
  DeviceMemory allocate(long bytes, String what) {
    try {
      return DeviceMemory.allocate(context, bytes);
    } catch (CudaException e) {
      if ("CUDA_ERROR_OUT_OF_MEMORY".equals(e.errorName())) {
        OutOfMemoryError oom = new OutOfMemoryError("device out of memory allocating " + bytes + " bytes for " + what
            + " (" + freeBytes() + " bytes free)");
        oom.initCause(e);
        throw oom;
      }
      throw e;
    }
  }

  /**
   * Fills {@code elements} 16-bit values ({@code bf16} true: bfloat16, else float16) at {@code memory} with
   * {@link GpuInputs#value}{@code (seed, tag, i)}, queued on {@code stream}.
   */
  void fill(DeviceMemory memory, long elements, boolean bf16, int seed, int tag, CudaStream stream) {
    int blocks = (int) Math.max(1, Math.min(132L * 16, (elements + 255) / 256));
    function(bf16 ? "fill_bf16" : "fill_f16").launch(Dim3.of(blocks), Dim3.of(256), 0, stream,
        KernelArgs.builder().pointer(memory.address()).i64(elements).i32(seed).i32(tag).build());
  }

  /** A JavaCPP pointer at a native address (for cuBLAS's {@code void*} arguments). */
  static Pointer at(long nativeAddress) {
    // (the parameter must not be called "address": inside the subclass that name is Pointer's field)
    return new Pointer() {
      {
        this.address = nativeAddress;
      }
    };
  }
}
