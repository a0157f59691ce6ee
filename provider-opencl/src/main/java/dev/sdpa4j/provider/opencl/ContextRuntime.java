package dev.sdpa4j.provider.opencl;

import static org.jocl.CL.CL_CONTEXT_PLATFORM;

import dev.sdpa4j.DType;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import org.jocl.CL;
import org.jocl.cl_command_queue;
import org.jocl.cl_context;
import org.jocl.cl_context_properties;
import org.jocl.cl_device_id;

/**
 * One OpenCL context on one device: the compiled kernel families (per storage type and head-dim bound) and a pool
 * of the provider's own in-order command queues. The provider's own context is created here; a caller's context
 * (from a caller's buffers or queue) is retained for as long as the provider caches its programs.
 */
final class ContextRuntime {
  private final ClDevice device;
  private final cl_context context;
  private final Optional<BinaryCache> cache;
  private final ConcurrentHashMap<ProgramKey, KernelProgram> programs = new ConcurrentHashMap<>();
  private final ConcurrentLinkedDeque<cl_command_queue> queues = new ConcurrentLinkedDeque<>();

  private record ProgramKey(DType dtype, int dmax) {}

  private ContextRuntime(ClDevice device, cl_context context, Optional<BinaryCache> cache) {
    this.device = device;
    this.context = context;
    this.cache = cache;
  }

  /** A new context of the provider's own on {@code device}. */
  static ContextRuntime create(ClDevice device, Optional<BinaryCache> cache) {
    cl_context_properties props = new cl_context_properties();
    props.addProperty(CL_CONTEXT_PLATFORM, device.platform());
    try {
      cl_context ctx = ClStatus.create("clCreateContext(" + device.name() + ")",
          err -> CL.clCreateContext(props, 1, new cl_device_id[] {device.id()}, null, null, err));
      return new ContextRuntime(device, ctx, cache);
    } finally {
      JvmSignalHandlers.INSTANCE.restore("clCreateContext");
    }
  }

  /** Adopts a caller's context (retaining it), to build programs and queues in it. */
  static ContextRuntime adopt(ClDevice device, long contextHandle, Optional<BinaryCache> cache) {
    cl_context ctx = NativeHandles.context(contextHandle);
    ClStatus.call("clRetainContext", () -> CL.clRetainContext(ctx));
    return new ContextRuntime(device, ctx, cache);
  }

  ClDevice device() {
    return device;
  }

  cl_context context() {
    return context;
  }

  long contextHandle() {
    return NativeHandles.address(context);
  }

  /** The kernel family for {@code dtype} and head dims up to {@code dmax}, compiled at first use. */
  KernelProgram program(DType dtype, int dmax) {
    return programs.computeIfAbsent(new ProgramKey(dtype, dmax),
        k -> KernelProgram.build(context, device, k.dtype(), k.dmax(), cache));
  }

  /**
   * An in-order queue of the provider's own, for the calling thread's exclusive use until {@link #releaseQueue}.
   * Created with {@code clCreateCommandQueue}, deprecated in OpenCL 2.0 but the one call every 1.2+ driver has.
   */
  @SuppressWarnings("deprecation")
  cl_command_queue borrowQueue() {
    cl_command_queue q = queues.poll();
    if (q != null) {
      return q;
    }
    return ClStatus.create("clCreateCommandQueue(" + device.name() + ")",
        err -> CL.clCreateCommandQueue(context, device.id(), 0, err));
  }

  void releaseQueue(cl_command_queue queue) {
    queues.push(queue);
  }
}
