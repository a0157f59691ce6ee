package dev.sdpa4j.provider.opencl;

import static org.jocl.CL.CL_MEM_CONTEXT;
import static org.jocl.CL.CL_QUEUE_CONTEXT;
import static org.jocl.CL.CL_QUEUE_DEVICE;

import dev.sdpa4j.AttentionArgumentException;
import dev.sdpa4j.Platform;
import dev.sdpa4j.Storage;
import dev.sdpa4j.Tensor;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import org.jocl.CL;
import org.jocl.Pointer;
import org.jocl.Sizeof;
import org.jocl.cl_command_queue;

/**
 * The OpenCL devices found at discovery and their contexts: one context of the provider's own per device (created
 * at first use) and the callers' contexts met through their buffers and queues.
 */
final class OpenClRuntime {
  private final List<ClDevice> devices;
  private final Optional<BinaryCache> cache;
  private final ContextRuntime[] own;
  private final ConcurrentHashMap<ForeignKey, ContextRuntime> foreign = new ConcurrentHashMap<>();

  private record ForeignKey(long context, int device) {}

  /** Where one call runs: a context, a queue, and whether the queue is the provider's (borrowed from the pool). */
  record Target(ContextRuntime runtime, cl_command_queue queue, boolean ownQueue) {
    /** Returns a borrowed queue to its pool. */
    void release() {
      if (ownQueue) {
        runtime.releaseQueue(queue);
      }
    }
  }

  OpenClRuntime(List<ClDevice> devices, Optional<BinaryCache> cache) {
    this.devices = List.copyOf(devices);
    this.cache = cache;
    this.own = new ContextRuntime[devices.size()];
  }

  List<ClDevice> devices() {
    return devices;
  }

  /** The provider's own context on device {@code index}. */
  ContextRuntime own(int index) {
    synchronized (own) {
      if (own[index] == null) {
        own[index] = ContextRuntime.create(devices.get(index), cache);
      }
      return own[index];
    }
  }

  /**
   * The context and queue for a call whose tensors are on {@code device} (or on the host, for {@code device}
   * chosen by the provider): host tensors and device tensors with stream 0 use a pooled queue of the buffers'
   * context; a caller's queue ({@code stream != 0}) is used as it is.
   */
  Target target(ClDevice device, Tensor anyTensor, long stream) {
    if (anyTensor.device().platform() == Platform.HOST) {
      ContextRuntime rt = own(device.index());
      return new Target(rt, rt.borrowQueue(), true);
    }
    if (stream != 0) {
      cl_command_queue queue = NativeHandles.queue(stream);
      long queueDevice = queueInfo(queue, CL_QUEUE_DEVICE);
      if (queueDevice != NativeHandles.address(device.id())) {
        throw new AttentionArgumentException("options.stream", "the command queue belongs to another device than "
            + anyTensor.device() + " (" + device.name() + ") where the tensors are");
      }
      return new Target(runtimeFor(device, queueInfo(queue, CL_QUEUE_CONTEXT)), queue, false);
    }
    Storage.DeviceBuffer buffer = (Storage.DeviceBuffer) anyTensor.storage();
    long[] ctx = new long[1];
    ClStatus.call("clGetMemObjectInfo(CL_MEM_CONTEXT)", () -> CL.clGetMemObjectInfo(
        NativeHandles.mem(buffer.handle()), CL_MEM_CONTEXT, Sizeof.cl_context, Pointer.to(ctx), null));
    ContextRuntime rt = runtimeFor(device, ctx[0]);
    return new Target(rt, rt.borrowQueue(), true);
  }

  private ContextRuntime runtimeFor(ClDevice device, long contextHandle) {
    ContextRuntime mine = own(device.index());
    if (mine.contextHandle() == contextHandle) {
      return mine;
    }
    return foreign.computeIfAbsent(new ForeignKey(contextHandle, device.index()),
        k -> ContextRuntime.adopt(device, contextHandle, cache));
  }

  private static long queueInfo(cl_command_queue queue, int param) {
    long[] v = new long[1];
    ClStatus.call("clGetCommandQueueInfo", () -> CL.clGetCommandQueueInfo(queue, param, Sizeof.POINTER, Pointer.to(v), null));
    return v[0];
  }
}
