package dev.sdpa4j.cuda;

import dev.sdpa4j.DType;
import dev.sdpa4j.Storage;
import dev.sdpa4j.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * A row-major tensor in CUDA device memory that this object owns, for callers with no CUDA library of their own.
 * {@link #tensor()} is the api view ({@code Storage.DeviceBuffer(Device.cuda(i), ptr, 0, bytes)}) to pass to
 * {@code Sdpa}; {@link #close()} frees the memory.
 *
 * <pre>{@code
 * try (CudaContext ctx = CudaContext.retainPrimary(0);
 *      DeviceTensor q = DeviceTensor.upload(ctx, hostQuery);
 *      DeviceTensor o = DeviceTensor.allocate(ctx, DType.FLOAT16, 2, 8, 1024, 64)) {
 *   ...
 *   o.download(hostOut);
 * }
 * }</pre>
 */
public final class DeviceTensor implements AutoCloseable {
  private final DeviceMemory memory;
  private final Tensor tensor;

  private DeviceTensor(DeviceMemory memory, Tensor tensor) {
    this.memory = memory;
    this.tensor = tensor;
  }

  /** Allocates a row-major tensor of {@code shape}; contents undefined. */
  public static DeviceTensor allocate(CudaContext context, DType dtype, long... shape) {
    long n = 1;
    for (long d : shape) {
      n = Math.multiplyExact(n, d);
    }
    long bytes = Math.multiplyExact(n, (long) dtype.byteSize());
    DeviceMemory m = DeviceMemory.allocate(context, bytes);
    try {
      Storage storage = new Storage.DeviceBuffer(context.device().device(), m.address(), 0, bytes);
      return new DeviceTensor(m, Tensor.contiguous(dtype, storage, shape));
    } catch (RuntimeException e) {
      m.close();
      throw e;
    }
  }

  /** Allocates a row-major device copy of host tensor {@code host} (any strides) and waits for the copy. */
  public static DeviceTensor upload(CudaContext context, Tensor host) {
    DeviceTensor t = allocate(context, host.dtype(), host.shape());
    try {
      t.upload(host);
      return t;
    } catch (RuntimeException e) {
      t.close();
      throw e;
    }
  }

  /** The api view of this memory. */
  public Tensor tensor() {
    return tensor;
  }

  public DeviceMemory memory() {
    return memory;
  }

  /** Copies host tensor {@code host} (same shape and dtype, any strides) into this tensor and waits. */
  public void upload(Tensor host) {
    sameShape(host);
    try (Arena arena = Arena.ofConfined()) {
      CudaStream stream = CudaStream.perThread(memory.context());
      memory.copyFromHostAndWait(HostStaging.pack(host, arena), 0, stream);
    }
  }

  /** Copies this tensor into host tensor {@code host} (same shape and dtype, any strides) and waits. */
  public void download(Tensor host) {
    sameShape(host);
    CudaStream stream = CudaStream.perThread(memory.context());
    try (Arena arena = Arena.ofConfined()) {
      if (host.isContiguous()) {
        memory.copyToHostAndWait(0, host.hostSegment().asSlice(0, HostStaging.packedBytes(host)), stream);
      } else {
        MemorySegment tmp = arena.allocate(HostStaging.packedBytes(host), 16);
        memory.copyToHostAndWait(0, tmp, stream);
        HostStaging.unpack(tmp, host);
      }
    }
  }

  /** Frees the device memory (idempotent); work using it must be finished. */
  @Override
  public void close() {
    memory.close();
  }

  private void sameShape(Tensor host) {
    if (host.dtype() != tensor.dtype() || !Arrays.equals(host.shape(), tensor.shape())) {
      throw new IllegalArgumentException("host tensor " + host + " does not match device tensor " + tensor);
    }
  }
}
