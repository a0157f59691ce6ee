package dev.sdpa4j.provider.opencl;

import org.jocl.CL;
import org.jocl.Pointer;
import org.jocl.Sizeof;
import org.jocl.cl_command_queue;
import org.jocl.cl_kernel;
import org.jocl.cl_mem;

/** Sets a kernel's arguments in order, then enqueues it; every failure names the kernel and the argument. */
final class KernelArgs {
  private final cl_kernel kernel;
  private final String name;
  private int index;

  KernelArgs(cl_kernel kernel, String name) {
    this.kernel = kernel;
    this.name = name;
  }

  /** A buffer argument; null passes a null buffer. */
  KernelArgs mem(cl_mem mem) {
    return set(Sizeof.cl_mem, mem == null ? null : Pointer.to(mem));
  }

  /** A tensor: its buffer, its element offset and its four element strides. */
  KernelArgs tensor(Buffers.Bound b) {
    return mem(b.mem()).i64(b.offset()).long4(b.strides4());
  }

  /** An absent tensor: a null buffer, offset 0, zero strides. */
  KernelArgs absent() {
    return mem(null).i64(0).long4(new long[4]);
  }

  KernelArgs i32(int v) {
    return set(Sizeof.cl_int, Pointer.to(new int[] {v}));
  }

  KernelArgs i64(long v) {
    return set(Sizeof.cl_long, Pointer.to(new long[] {v}));
  }

  KernelArgs f32(float v) {
    return set(Sizeof.cl_float, Pointer.to(new float[] {v}));
  }

  KernelArgs long4(long[] v) {
    return set(Sizeof.cl_long4, Pointer.to(v.clone()));
  }

  /** Enqueues the kernel over {@code global} work-items in groups of {@code local} (null: the driver's choice). */
  void enqueue(cl_command_queue queue, long[] global, long[] local) {
    ClStatus.call("clEnqueueNDRangeKernel(" + name + ")",
        () -> CL.clEnqueueNDRangeKernel(queue, kernel, global.length, null, global, local, 0, null, null));
  }

  private KernelArgs set(long size, Pointer value) {
    int i = index++;
    ClStatus.call("clSetKernelArg(" + name + ", argument " + i + ")", () -> CL.clSetKernelArg(kernel, i, size, value));
    return this;
  }
}
