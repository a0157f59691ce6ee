package dev.sdpa4j.conformance;

import dev.sdpa4j.DType;
import dev.sdpa4j.Storage;
import dev.sdpa4j.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * One tensor of a case in two places: a host copy the kit fills and reads, and the storage in the provider's
 * {@link TensorMemory}, viewed with the same shape and strides. Host memory and storage have the same size, which is
 * the view's span plus some spare elements (so writes past the end are seen).
 */
final class Staged implements AutoCloseable {
  private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.nativeOrder());
  private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.nativeOrder());
  private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.nativeOrder());

  private final TensorMemory memory;
  private final MemorySegment host;
  private final Storage storage;
  private final Tensor hostView;
  private final Tensor deviceView;

  private Staged(TensorMemory memory, MemorySegment host, Storage storage, Tensor hostView, Tensor deviceView) {
    this.memory = memory;
    this.host = host;
    this.storage = storage;
    this.hostView = hostView;
    this.deviceView = deviceView;
  }

  /** Allocates a tensor of {@code shape} with element {@code strides} and {@code spare} extra elements. */
  static Staged allocate(TensorMemory memory, DType dtype, long[] shape, long[] strides, long spare) {
    Tensor probe = Tensor.of(dtype, shape, strides, new Storage.Host(MemorySegment.NULL));
    long bytes = (probe.elementSpan() + spare) * dtype.byteSize();
    MemorySegment host = Arena.ofAuto().allocate(bytes, 64);
    Storage storage = memory.allocate(bytes);
    return new Staged(memory, host, storage, Tensor.of(dtype, shape, strides, new Storage.Host(host)),
        Tensor.of(dtype, shape, strides, storage));
  }

  /** A row-major tensor with no spare elements (inputs and masks). */
  static Staged contiguous(TensorMemory memory, DType dtype, long... shape) {
    return allocate(memory, dtype, shape, Tensor.contiguousStrides(shape), 0);
  }

  /** The host copy's view: what the kit writes inputs into and reads results from. */
  Tensor host() {
    return hostView;
  }

  /** The view over the provider's memory: what the provider gets. */
  Tensor device() {
    return deviceView;
  }

  DType dtype() {
    return hostView.dtype();
  }

  /** A view with another shape and strides over the same memory, in both places (for aliasing cases). */
  Tensor deviceView(long[] shape, long[] strides) {
    return deviceView.view(shape, strides);
  }

  void upload() {
    memory.copyToDevice(host, storage);
  }

  void download() {
    memory.copyToHost(storage, host);
  }

  /** Fills all of the host copy (view, gaps and spare) with {@link #poisonBits} and uploads it. */
  void poison() {
    long bits = poisonBits(dtype());
    int size = dtype().byteSize();
    for (long off = 0; off + size <= host.byteSize(); off += size) {
      putRaw(host, off, size, bits);
    }
    upload();
  }

  /**
   * The byte offset of the first difference between the provider's memory and the host copy, or -1 (checks that a
   * provider left its inputs alone).
   */
  long changedByteInDevice() {
    MemorySegment now = Arena.ofAuto().allocate(host.byteSize(), 64);
    memory.copyToHost(storage, now);
    return host.mismatch(now);
  }

  /** The raw bits of the element at element offset {@code offset} of the host copy. */
  long rawAt(long offset) {
    int size = dtype().byteSize();
    return getRaw(host, offset * size, size);
  }

  /** Element slots in the host copy (view, gaps and spare). */
  long slots() {
    return host.byteSize() / dtype().byteSize();
  }

  @Override
  public void close() {
    memory.release(storage);
  }

  /**
   * The bit pattern of a poisoned element: a quiet NaN with a payload no arithmetic produces, so an element still
   * holding it was never written.
   */
  static long poisonBits(DType dtype) {
    return switch (dtype) {
      case FLOAT64 -> 0x7FFA_5A5A_5A5A_5A5AL;
      case FLOAT32 -> 0x7FE5_A5A5L;
      case FLOAT16 -> 0x7E5AL;
      case BFLOAT16 -> 0x7FDAL;
      case BOOL -> throw new IllegalArgumentException("bool tensors are never outputs");
    };
  }

  private static long getRaw(MemorySegment s, long byteOffset, int size) {
    return switch (size) {
      case 2 -> s.get(I16, byteOffset) & 0xFFFFL;
      case 4 -> s.get(I32, byteOffset) & 0xFFFF_FFFFL;
      case 8 -> s.get(I64, byteOffset);
      default -> s.get(ValueLayout.JAVA_BYTE, byteOffset) & 0xFFL;
    };
  }

  private static void putRaw(MemorySegment s, long byteOffset, int size, long bits) {
    switch (size) {
      case 2 -> s.set(I16, byteOffset, (short) bits);
      case 4 -> s.set(I32, byteOffset, (int) bits);
      case 8 -> s.set(I64, byteOffset, bits);
      default -> s.set(ValueLayout.JAVA_BYTE, byteOffset, (byte) bits);
    }
  }
}
