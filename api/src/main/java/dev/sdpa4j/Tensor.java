package dev.sdpa4j;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Objects;

/**
 * An immutable strided view of memory: an element type, a shape, element strides (not bytes) and the
 * {@link Storage} behind it. Attention tensors have rank 4 with the logical layout {@code [B, H, L, E]}; any
 * strides are allowed, so FlashAttention's {@code [B, L, H, E]} memory is the zero-copy view made by
 * {@link #blhe}. Masks have rank 1 to 4 and broadcast (a stride of 0 repeats); the log-sum-exp has rank 3.
 *
 * <p>Strides must be non-negative. The element at index {@code (i0, ..., in)} is at element offset
 * {@code sum(ik * stride[k])} from the storage's start.
 */
public final class Tensor {
  private final DType dtype;
  private final long[] shape;
  private final long[] strides;
  private final Storage storage;

  private Tensor(DType dtype, long[] shape, long[] strides, Storage storage) {
    this.dtype = Objects.requireNonNull(dtype, "dtype");
    this.storage = Objects.requireNonNull(storage, "storage");
    Objects.requireNonNull(shape, "shape");
    Objects.requireNonNull(strides, "strides");
    if (shape.length == 0 || shape.length > 4) {
      throw new IllegalArgumentException("tensor rank must be 1..4, got shape " + Arrays.toString(shape));
    }
    if (shape.length != strides.length) {
      throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " and strides " + Arrays.toString(strides)
          + " differ in rank");
    }
    for (int i = 0; i < shape.length; i++) {
      if (shape[i] < 1) {
        throw new IllegalArgumentException("every dimension must be >= 1, got shape " + Arrays.toString(shape));
      }
      if (strides[i] < 0) {
        throw new IllegalArgumentException("strides must be >= 0, got " + Arrays.toString(strides));
      }
    }
    this.shape = shape.clone();
    this.strides = strides.clone();
  }

  /** A view with the given shape and element strides over {@code storage}. */
  public static Tensor of(DType dtype, long[] shape, long[] strides, Storage storage) {
    return new Tensor(dtype, shape, strides, storage);
  }

  /** A row-major (contiguous) view with the given shape over {@code storage}. */
  public static Tensor contiguous(DType dtype, Storage storage, long... shape) {
    return new Tensor(dtype, shape, contiguousStrides(shape), storage);
  }

  /** A row-major view over a host segment. */
  public static Tensor host(MemorySegment segment, DType dtype, long... shape) {
    return contiguous(dtype, new Storage.Host(segment), shape);
  }

  /** Allocates a row-major host tensor in {@code arena}; its contents are zero. */
  public static Tensor allocate(Arena arena, DType dtype, long... shape) {
    long n = 1;
    for (long d : shape) {
      n = Math.multiplyExact(n, d);
    }
    return host(arena.allocate(Math.multiplyExact(n, dtype.byteSize()), 16), dtype, shape);
  }

  /**
   * The {@code [B, H, L, E]} view of memory laid out as {@code [B, L, H, E]} (FlashAttention's layout, and what a
   * linear projection produces), with no copy.
   */
  public static Tensor blhe(DType dtype, Storage storage, long batch, long seqLen, long heads, long headDim) {
    return new Tensor(dtype, new long[] {batch, heads, seqLen, headDim},
        new long[] {seqLen * heads * headDim, headDim, heads * headDim, 1}, storage);
  }

  /** Row-major strides for {@code shape}. */
  public static long[] contiguousStrides(long... shape) {
    long[] s = new long[shape.length];
    long acc = 1;
    for (int i = shape.length - 1; i >= 0; i--) {
      s[i] = acc;
      acc = Math.multiplyExact(acc, shape[i]);
    }
    return s;
  }

  public DType dtype() {
    return dtype;
  }

  public Storage storage() {
    return storage;
  }

  public Device device() {
    return storage.device();
  }

  public int rank() {
    return shape.length;
  }

  /** Size of dimension {@code dim}; negative values count from the end. */
  public long size(int dim) {
    return shape[dim < 0 ? shape.length + dim : dim];
  }

  /** Element stride of dimension {@code dim}; negative values count from the end. */
  public long stride(int dim) {
    return strides[dim < 0 ? strides.length + dim : dim];
  }

  public long[] shape() {
    return shape.clone();
  }

  public long[] strides() {
    return strides.clone();
  }

  /** Number of logical elements. */
  public long elementCount() {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }

  /** One past the largest element offset reached by this view, in elements (0-based offsets). */
  public long elementSpan() {
    long last = 0;
    for (int i = 0; i < shape.length; i++) {
      last += (shape[i] - 1) * strides[i];
    }
    return last + 1;
  }

  /** True when the view is row-major with no gaps. */
  public boolean isContiguous() {
    return Arrays.equals(strides, contiguousStrides(shape));
  }

  /**
   * True when no two indices address the same element (so writing through the view is race-free). Size-1
   * dimensions are ignored.
   */
  public boolean isNonOverlapping() {
    Integer[] order = new Integer[shape.length];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    Arrays.sort(order, (a, b) -> Long.compare(strides[a], strides[b]));
    long needed = 1;
    for (int d : order) {
      if (shape[d] == 1) {
        continue;
      }
      if (strides[d] < needed) {
        return false;
      }
      needed = strides[d] * shape[d];
    }
    return true;
  }

  /** Element offset of an index. */
  public long offsetOf(long... index) {
    if (index.length != shape.length) {
      throw new IllegalArgumentException("index of rank " + index.length + " for tensor of rank " + shape.length);
    }
    long off = 0;
    for (int i = 0; i < index.length; i++) {
      if (index[i] < 0 || index[i] >= shape[i]) {
        throw new IndexOutOfBoundsException("index " + Arrays.toString(index) + " outside shape " + Arrays.toString(shape));
      }
      off += index[i] * strides[i];
    }
    return off;
  }

  /** Reads one element of a host tensor as a double. */
  public double get(long... index) {
    return dtype.read(hostSegment(), offsetOf(index) * dtype.byteSize());
  }

  /** Writes one element of a host tensor, rounded to the tensor's type. */
  public void set(double value, long... index) {
    dtype.write(hostSegment(), offsetOf(index) * dtype.byteSize(), value);
  }

  /** The host segment behind this tensor; throws if the tensor is in device memory. */
  public MemorySegment hostSegment() {
    if (storage instanceof Storage.Host(MemorySegment segment)) {
      return segment;
    }
    throw new IllegalStateException("tensor is in " + device() + " memory, not on the host");
  }

  /** The same memory seen with another shape and strides. */
  public Tensor view(long[] newShape, long[] newStrides) {
    return new Tensor(dtype, newShape, newStrides, storage);
  }

  /** The view with dimensions reordered: dimension {@code i} of the result is dimension {@code order[i]} of this. */
  public Tensor permute(int... order) {
    if (order.length != shape.length) {
      throw new IllegalArgumentException("permutation " + Arrays.toString(order) + " for rank " + shape.length);
    }
    long[] s = new long[order.length];
    long[] st = new long[order.length];
    boolean[] seen = new boolean[order.length];
    for (int i = 0; i < order.length; i++) {
      if (order[i] < 0 || order[i] >= order.length || seen[order[i]]) {
        throw new IllegalArgumentException("not a permutation: " + Arrays.toString(order));
      }
      seen[order[i]] = true;
      s[i] = shape[order[i]];
      st[i] = strides[order[i]];
    }
    return new Tensor(dtype, s, st, storage);
  }

  /** Shape as text, e.g. {@code [2, 8, 1024, 64]}. */
  public String shapeString() {
    return Arrays.toString(shape);
  }

  @Override
  public String toString() {
    return "Tensor" + shapeString() + " " + dtype.shortName() + " strides " + Arrays.toString(strides) + " on " + device();
  }
}
