package dev.sdpa4j.conformance;

import dev.sdpa4j.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.StringJoiner;

/** Reading host tensors in logical row-major order, and naming elements. */
final class Values {
  private Values() {}

  /** Element offsets of every index of {@code t}, in row-major order of its logical shape. */
  static long[] offsets(Tensor t) {
    long[] shape = t.shape();
    long[] strides = t.strides();
    long[] out = new long[Math.toIntExact(t.elementCount())];
    long[] idx = new long[shape.length];
    for (int n = 0; n < out.length; n++) {
      long off = 0;
      for (int d = 0; d < shape.length; d++) {
        off += idx[d] * strides[d];
      }
      out[n] = off;
      for (int d = shape.length - 1; d >= 0; d--) {
        if (++idx[d] < shape[d]) {
          break;
        }
        idx[d] = 0;
      }
    }
    return out;
  }

  /** The elements of a host tensor as doubles, row-major in its logical shape. */
  static double[] read(Tensor t) {
    MemorySegment s = t.hostSegment();
    int size = t.dtype().byteSize();
    long[] offsets = offsets(t);
    double[] out = new double[offsets.length];
    for (int n = 0; n < out.length; n++) {
      out[n] = t.dtype().read(s, offsets[n] * size);
    }
    return out;
  }

  /** The index of row-major element {@code flat} of {@code shape}, e.g. {@code [1, 0, 16, 3]}. */
  static String index(long flat, long[] shape) {
    long[] idx = new long[shape.length];
    for (int d = shape.length - 1; d >= 0; d--) {
      idx[d] = flat % shape[d];
      flat /= shape[d];
    }
    StringJoiner j = new StringJoiner(", ", "[", "]");
    for (long i : idx) {
      j.add(Long.toString(i));
    }
    return j.toString();
  }
}
