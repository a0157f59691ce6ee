package dev.sdpa4j;

import java.lang.foreign.Arena;

/** Test tensors on the host. */
final class Tensors {
  private Tensors() {}

  static Tensor filled(DType dtype, double value, long... shape) {
    Tensor t = Tensor.allocate(Arena.ofAuto(), dtype, shape);
    long n = t.elementCount();
    for (long i = 0; i < n; i++) {
      dtype.write(t.hostSegment(), i * dtype.byteSize(), value);
    }
    return t;
  }

  /** True when every element of {@code t} equals {@code value} (NaN matches NaN). */
  static boolean allEqual(Tensor t, double value) {
    long n = t.elementCount();
    for (long i = 0; i < n; i++) {
      double v = t.dtype().read(t.hostSegment(), i * t.dtype().byteSize());
      if (Double.compare(v, value) != 0) {
        return false;
      }
    }
    return true;
  }
}
