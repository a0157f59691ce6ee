package dev.sdpa4j.provider.opencl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.jocl.CL;
import org.jocl.Pointer;
import org.jocl.Sizeof;
import org.jocl.cl_command_queue;
import org.jocl.cl_context;
import org.jocl.cl_mem;
import org.junit.jupiter.api.Test;

class NativeHandlesTest {
  @Test
  void wrappedHandlesReachTheSameOpenClObjects() {
    Fixtures.assumeOpenCl();
    ContextRuntime rt = ContextRuntime.create(ClDevice.discover().getFirst(), java.util.Optional.empty());
    cl_command_queue queue = rt.borrowQueue();
    cl_mem mem = ClStatus.create("clCreateBuffer", err -> CL.clCreateBuffer(rt.context(), CL.CL_MEM_READ_WRITE, 4096,
        null, err));
    try {
      cl_mem wrapped = NativeHandles.mem(NativeHandles.address(mem));
      assertThat(NativeHandles.address(wrapped)).isEqualTo(mem.getNativePointer());
      long[] size = new long[1];
      ClStatus.call("clGetMemObjectInfo", () -> CL.clGetMemObjectInfo(wrapped, CL.CL_MEM_SIZE, Sizeof.size_t,
          Pointer.to(size), null));
      assertThat(size[0]).isEqualTo(4096);

      cl_command_queue q2 = NativeHandles.queue(NativeHandles.address(queue));
      long[] ctx = new long[1];
      ClStatus.call("clGetCommandQueueInfo", () -> CL.clGetCommandQueueInfo(q2, CL.CL_QUEUE_CONTEXT, Sizeof.cl_context,
          Pointer.to(ctx), null));
      assertThat(ctx[0]).isEqualTo(rt.contextHandle());
      cl_context c2 = NativeHandles.context(ctx[0]);
      int[] refs = new int[1];
      ClStatus.call("clGetContextInfo", () -> CL.clGetContextInfo(c2, CL.CL_CONTEXT_REFERENCE_COUNT, Sizeof.cl_uint,
          Pointer.to(refs), null));
      assertThat(refs[0]).isPositive();
      assertThat(NativeHandles.address(NativeHandles.device(NativeHandles.address(rt.device().id()))))
          .isEqualTo(rt.device().id().getNativePointer());
    } finally {
      CL.clReleaseMemObject(mem);
      rt.releaseQueue(queue);
    }
  }

  @Test
  void nullHandlesAreRejected() {
    assertThatThrownBy(() -> NativeHandles.mem(0)).hasMessageContaining("null OpenCL handle");
  }
}
