package dev.sdpa4j.provider.opencl;

import static org.jocl.CL.CL_MAP_READ;
import static org.jocl.CL.CL_MEM_READ_WRITE;
import static org.jocl.CL.CL_MEM_USE_HOST_PTR;

import dev.sdpa4j.Storage;
import dev.sdpa4j.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.jocl.CL;
import org.jocl.Pointer;
import org.jocl.cl_command_queue;
import org.jocl.cl_mem;

/**
 * The device buffers of one call. A caller's {@code cl_mem} is used as it is (element offset from its byte offset);
 * a host tensor gets a buffer holding the span of its view (element strides kept): on CPU devices the host memory
 * itself ({@code CL_MEM_USE_HOST_PTR}), elsewhere a copy. Outputs are made visible to the host again by
 * {@link #finish()}. Closing releases every buffer this object created, never a caller's.
 */
final class Buffers implements AutoCloseable {
  /** Host transfers move at most this many bytes per call (a ByteBuffer holds at most 2 GiB). */
  private static final long CHUNK = 1L << 30;
  /** Heap (non-native) host memory is staged through native buffers of at most this size. */
  private static final long STAGE = 64L << 20;

  /** A tensor bound to a buffer: element 0 is at element {@code offset} of {@code mem}. */
  record Bound(cl_mem mem, long offset, long[] strides) {
    /** The strides padded to four (a rank-3 LSE gets a zero last stride), for the kernels' {@code long4}. */
    long[] strides4() {
      long[] s = new long[4];
      System.arraycopy(strides, 0, s, 0, strides.length);
      return s;
    }
  }

  private record Readback(cl_mem mem, MemorySegment host, boolean mapped) {}

  private final ContextRuntime runtime;
  private final cl_command_queue queue;
  private final boolean ownQueue;
  private final List<cl_mem> created = new ArrayList<>();
  private final List<Readback> readbacks = new ArrayList<>();

  /**
   * @param ownQueue true when {@code queue} is the provider's: {@link #finish()} then waits for the work; on a
   *                 caller's queue it only flushes, and the caller orders later work after it
   */
  Buffers(ContextRuntime runtime, cl_command_queue queue, boolean ownQueue) {
    this.runtime = runtime;
    this.queue = queue;
    this.ownQueue = ownQueue;
  }

  /** Binds an input tensor. */
  Bound input(Tensor t) {
    return bind(t, false);
  }

  /** Binds an output tensor; host outputs are written back by {@link #finish()}. */
  Bound output(Tensor t) {
    return bind(t, true);
  }

  /** A scratch buffer of {@code bytes} bytes, released on close. */
  cl_mem scratch(long bytes, String what) {
    return allocate(Math.max(bytes, 4), CL_MEM_READ_WRITE, null, what);
  }

  /** Waits for (own queue) or flushes (caller's queue) the enqueued work, and copies host outputs back. */
  void finish() {
    for (Readback r : readbacks) {
      if (r.mapped()) {
        ByteBuffer view = ClStatus.create("clEnqueueMapBuffer", err -> CL.clEnqueueMapBuffer(queue, r.mem(), true,
            CL_MAP_READ, 0, r.host().byteSize(), 0, null, null, err));
        ClStatus.call("clEnqueueUnmapMemObject", () -> CL.clEnqueueUnmapMemObject(queue, r.mem(), view, 0, null, null));
      } else {
        transfer(r.mem(), r.host(), false);
      }
    }
    if (ownQueue) {
      ClStatus.call("clFinish", () -> CL.clFinish(queue));
    } else {
      ClStatus.call("clFlush", () -> CL.clFlush(queue));
    }
  }

  @Override
  public void close() {
    for (cl_mem m : created) {
      CL.clReleaseMemObject(m);
    }
    created.clear();
  }

  private Bound bind(Tensor t, boolean output) {
    if (t.storage() instanceof Storage.DeviceBuffer d) {
      return new Bound(NativeHandles.mem(d.handle()), d.byteOffset() / t.dtype().byteSize(), t.strides());
    }
    long bytes = t.elementSpan() * t.dtype().byteSize();
    MemorySegment host = t.hostSegment().asSlice(0, bytes);
    cl_mem mem;
    boolean mapped = runtime.device().isCpu() && host.isNative() && bytes <= Integer.MAX_VALUE;
    if (mapped) {
      mem = allocate(bytes, CL_MEM_READ_WRITE | CL_MEM_USE_HOST_PTR, Pointer.toBuffer(host.asByteBuffer()), t.toString());
    } else {
      mem = allocate(bytes, CL_MEM_READ_WRITE, null, t.toString());
      if (!output || t.elementCount() != t.elementSpan()) {
        transfer(mem, host, true);
      }
    }
    if (output) {
      readbacks.add(new Readback(mem, host, mapped));
    }
    return new Bound(mem, 0, t.strides());
  }

  private cl_mem allocate(long bytes, long flags, Pointer hostPtr, String what) {
    if (bytes > runtime.device().maxAllocBytes()) {
      throw new OpenClException(CL.CL_INVALID_BUFFER_SIZE, "clCreateBuffer(" + what + ")", bytes
          + " bytes exceed the largest buffer " + runtime.device().name() + " allows ("
          + runtime.device().maxAllocBytes() + " bytes)");
    }
    cl_mem mem = ClStatus.create("clCreateBuffer(" + bytes + " bytes for " + what + ")",
        err -> CL.clCreateBuffer(runtime.context(), flags, bytes, hostPtr, err));
    created.add(mem);
    return mem;
  }

  /** Copies host memory to ({@code toDevice}) or from a buffer, blocking, in chunks. */
  private void transfer(cl_mem mem, MemorySegment host, boolean toDevice) {
    long size = host.byteSize();
    if (host.isNative()) {
      for (long off = 0; off < size; off += CHUNK) {
        long n = Math.min(CHUNK, size - off);
        copy(mem, off, host.asSlice(off, n), toDevice);
      }
      return;
    }
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment stage = arena.allocate(Math.min(size, STAGE), 16);
      for (long off = 0; off < size; off += STAGE) {
        long n = Math.min(STAGE, size - off);
        MemorySegment s = stage.asSlice(0, n);
        if (toDevice) {
          s.copyFrom(host.asSlice(off, n));
          copy(mem, off, s, true);
        } else {
          copy(mem, off, s, false);
          host.asSlice(off, n).copyFrom(s);
        }
      }
    }
  }

  private void copy(cl_mem mem, long offset, MemorySegment nativeSlice, boolean toDevice) {
    Pointer p = Pointer.toBuffer(nativeSlice.asByteBuffer());
    long n = nativeSlice.byteSize();
    if (toDevice) {
      ClStatus.call("clEnqueueWriteBuffer", () -> CL.clEnqueueWriteBuffer(queue, mem, true, offset, n, p, 0, null, null));
    } else {
      ClStatus.call("clEnqueueReadBuffer", () -> CL.clEnqueueReadBuffer(queue, mem, true, offset, n, p, 0, null, null));
    }
  }
}
