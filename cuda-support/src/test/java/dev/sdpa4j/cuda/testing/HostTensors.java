package dev.sdpa4j.cuda.testing;

import dev.sdpa4j.DType;
import dev.sdpa4j.Tensor;
import java.lang.foreign.Arena;
import java.util.Random;

/**
 * Random host inputs and error measures against a float64 reference, for the CUDA modules' GPU tests (shared through
 * this module's test jar). Every measure reads {@code got} as a contiguous host tensor in row-major order, the layout
 * of {@code dev.sdpa4j.provider.math.ReferenceAttention}'s results.
 */
public final class HostTensors {
  private HostTensors() {}

  /** A contiguous host tensor of standard normal values (rounded to {@code dtype}) drawn from {@code random}. */
  public static Tensor gaussian(Arena arena, DType dtype, Random random, long... shape) {
    Tensor t = Tensor.allocate(arena, dtype, shape);
    long n = t.elementCount();
    for (long i = 0; i < n; i++) {
      dtype.write(t.hostSegment(), i * dtype.byteSize(), random.nextGaussian());
    }
    return t;
  }

  /** {@code max |got - ref|}; an element equal to an infinite reference value counts as no error. */
  public static double maxAbsError(Tensor got, double[] ref) {
    double err = 0;
    for (int i = 0; i < ref.length; i++) {
      double x = value(got, i);
      if (Double.isInfinite(ref[i]) && x == ref[i]) {
        continue;
      }
      err = Math.max(err, Math.abs(x - ref[i]));
    }
    return err;
  }

  /** {@code max |got - ref| / max(1, max |ref|)}: an absolute error for small values, relative for large ones. */
  public static double maxScaledError(Tensor got, double[] ref) {
    double scale = 1;
    for (double r : ref) {
      scale = Math.max(scale, Math.abs(r));
    }
    return maxAbsError(got, ref) / scale;
  }

  /** {@code ‖got - ref‖₂ / ‖ref‖₂}. */
  public static double relativeL2Error(Tensor got, double[] ref) {
    double num = 0;
    double den = 0;
    for (int i = 0; i < ref.length; i++) {
      double d = value(got, i) - ref[i];
      num += d * d;
      den += ref[i] * ref[i];
    }
    return Math.sqrt(num / den);
  }

  private static double value(Tensor t, int i) {
    return t.dtype().read(t.hostSegment(), (long) i * t.dtype().byteSize());
  }
}
