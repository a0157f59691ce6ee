package dev.sdpa4j.cuda;

import static org.bytedeco.cuda.global.cudart.cuMemAlloc;
import static org.bytedeco.cuda.global.cudart.cuMemAllocAsync;
import static org.bytedeco.cuda.global.cudart.cuMemAllocFromPoolAsync;
import static org.bytedeco.cuda.global.cudart.cuMemFree;
import static org.bytedeco.cuda.global.cudart.cuMemFreeAsync;
import static org.bytedeco.cuda.global.cudart.cuMemcpyDtoHAsync;
import static org.bytedeco.cuda.global.cudart.cuMemcpyHtoDAsync;
import static org.bytedeco.cuda.global.cudart.cuMemsetD8Async;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A device allocation ({@code cuMemAlloc}, 256-byte aligned) owned by this object and freed by {@link #close()}.
 * Copies are queued on a stream; the host side of a copy must stay alive until the stream is synchronized (the
 * {@code copy...AndWait} variants synchronize for you).
 */
@SuppressWarnings("try") // context scopes are held for their effect (push/pop), not referenced
public final class DeviceMemory implements AutoCloseable {
  private final CudaContext context;
  private final long address;
  private final long byteSize;
  private final CudaStream freeStream;
  private final AtomicBoolean closed = new AtomicBoolean();

  private DeviceMemory(CudaContext context, long address, long byteSize, CudaStream freeStream) {
    this.context = context;
    this.address = address;
    this.byteSize = byteSize;
    this.freeStream = freeStream;
  }

  /**
   * Allocates {@code byteSize} bytes (at least 1) on the context's device; contents undefined.
   *
   * @throws CudaException ({@code CUDA_ERROR_OUT_OF_MEMORY}) when the device is full
   */
  public static DeviceMemory allocate(CudaContext context, long byteSize) {
    if (byteSize < 0) {
      throw new IllegalArgumentException("byteSize must be >= 0, got " + byteSize);
    }
    long n = Math.max(1, byteSize);
    long[] ptr = new long[1];
    try (CudaContext.Scope s = context.enter()) {
      CudaDriver.check(cuMemAlloc(ptr, n), "cuMemAlloc(" + n + " bytes)");
    }
    return new DeviceMemory(context, ptr[0], byteSize, null);
  }

  /**
   * Allocates {@code byteSize} bytes in stream order ({@code cuMemAllocAsync} from the device's default pool): usable
   * by work queued on {@code stream} after this call, and freed by {@link #close()} in stream order too
   * ({@code cuMemFreeAsync}), so a workspace can be released without waiting for the kernels that use it.
   */
  public static DeviceMemory allocateAsync(CudaContext context, long byteSize, CudaStream stream) {
    if (byteSize < 0) {
      throw new IllegalArgumentException("byteSize must be >= 0, got " + byteSize);
    }
    long n = Math.max(1, byteSize);
    long[] ptr = new long[1];
    try (CudaContext.Scope s = context.enter()) {
      CudaDriver.check(cuMemAllocAsync(ptr, n, stream.pointer()), "cuMemAllocAsync(" + n + " bytes)");
    }
    return new DeviceMemory(context, ptr[0], byteSize, stream);
  }

  /**
   * Allocates {@code byteSize} bytes in stream order from {@code pool} ({@code cuMemAllocFromPoolAsync}): as
   * {@link #allocateAsync(CudaContext, long, CudaStream)}, but from a pool that keeps its memory reserved across
   * synchronisations up to its release threshold, so that repeated calls do not map memory again.
   */
  public static DeviceMemory allocateAsync(CudaMemoryPool pool, long byteSize, CudaStream stream) {
    if (byteSize < 0) {
      throw new IllegalArgumentException("byteSize must be >= 0, got " + byteSize);
    }
    long n = Math.max(1, byteSize);
    long[] ptr = new long[1];
    try (CudaContext.Scope s = pool.context().enter()) {
      CudaDriver.check(cuMemAllocFromPoolAsync(ptr, n, pool.handle(), stream.pointer()),
          "cuMemAllocFromPoolAsync(" + n + " bytes)");
    }
    return new DeviceMemory(pool.context(), ptr[0], byteSize, stream);
  }

  public CudaContext context() {
    return context;
  }

  /** The device pointer ({@code CUdeviceptr}). */
  public long address() {
    return address;
  }

  public long byteSize() {
    return byteSize;
  }

  /** Queues a copy of all of {@code src} (host memory) to {@code dstOffset}; see the class note on lifetimes. */
  public void copyFromHost(MemorySegment src, long dstOffset, CudaStream stream) {
    checkRange(dstOffset, src.byteSize());
    if (src.byteSize() == 0) {
      return;
    }
    try (CudaContext.Scope s = context.enter()) {
      CudaDriver.check(cuMemcpyHtoDAsync(address + dstOffset, Handles.at(nativeAddress(src)), src.byteSize(),
          stream.pointer()), "cuMemcpyHtoDAsync(" + src.byteSize() + " bytes)");
    }
  }

  /** Queues a copy of {@code dst.byteSize()} bytes from {@code srcOffset} into host memory {@code dst}. */
  public void copyToHost(long srcOffset, MemorySegment dst, CudaStream stream) {
    checkRange(srcOffset, dst.byteSize());
    if (dst.byteSize() == 0) {
      return;
    }
    try (CudaContext.Scope s = context.enter()) {
      CudaDriver.check(cuMemcpyDtoHAsync(Handles.at(nativeAddress(dst)), address + srcOffset, dst.byteSize(),
          stream.pointer()), "cuMemcpyDtoHAsync(" + dst.byteSize() + " bytes)");
    }
  }

  /** Copies host memory to the device and waits; {@code src} may be a heap segment. */
  public void copyFromHostAndWait(MemorySegment src, long dstOffset, CudaStream stream) {
    try (Arena arena = Arena.ofConfined()) {
      copyFromHost(src.isNative() ? src : arena.allocate(src.byteSize(), 16).copyFrom(src), dstOffset, stream);
      stream.synchronize();
    }
  }

  /** Copies device memory to the host and waits; {@code dst} may be a heap segment. */
  public void copyToHostAndWait(long srcOffset, MemorySegment dst, CudaStream stream) {
    if (dst.isNative()) {
      copyToHost(srcOffset, dst, stream);
      stream.synchronize();
      return;
    }
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment tmp = arena.allocate(dst.byteSize(), 16);
      copyToHost(srcOffset, tmp, stream);
      stream.synchronize();
      dst.copyFrom(tmp);
    }
  }

  /** Queues setting {@code length} bytes from {@code offset} to {@code value}. */
  public void fill(long offset, long length, byte value, CudaStream stream) {
    checkRange(offset, length);
    try (CudaContext.Scope s = context.enter()) {
      CudaDriver.check(cuMemsetD8Async(address + offset, value, length, stream.pointer()), "cuMemsetD8Async");
    }
  }

  /**
   * Frees the allocation (idempotent). For {@link #allocate}, work using it must be finished (synchronize first);
   * for {@link #allocateAsync}, the free is queued on the allocating stream after the work already queued there.
   */
  @Override
  public void close() {
    if (closed.compareAndSet(false, true)) {
      try (CudaContext.Scope s = context.enter()) {
        if (freeStream == null) {
          CudaDriver.check(cuMemFree(address), "cuMemFree");
        } else {
          CudaDriver.check(cuMemFreeAsync(address, freeStream.pointer()), "cuMemFreeAsync");
        }
      }
    }
  }

  private void checkRange(long offset, long length) {
    if (closed.get()) {
      throw new IllegalStateException("device memory already freed");
    }
    if (offset < 0 || length < 0 || offset + length > byteSize) {
      throw new IndexOutOfBoundsException("range [" + offset + ", " + (offset + length) + ") outside a "
          + byteSize + "-byte allocation");
    }
  }

  private static long nativeAddress(MemorySegment segment) {
    Objects.requireNonNull(segment, "segment");
    if (!segment.isNative()) {
      throw new IllegalArgumentException("asynchronous copies need native (off-heap) host memory");
    }
    return segment.address();
  }
}
