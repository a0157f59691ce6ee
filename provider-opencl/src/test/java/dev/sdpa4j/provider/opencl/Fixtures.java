package dev.sdpa4j.provider.opencl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.DType;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.provider.math.ReferenceAttention;
import java.lang.foreign.Arena;
import java.util.Random;

/** Random tensors, the shared provider instance, and comparison with the float64 reference. */
final class Fixtures {
  /** One provider for all tests, as ServiceLoader would give (discovery and compiled kernels are shared). */
  static final OpenClProvider PROVIDER = new OpenClProvider();

  private Fixtures() {}

  /** Skips the calling test when no OpenCL device is usable here. */
  static void assumeOpenCl() {
    assumeTrue(PROVIDER.availability().available(), () -> "no OpenCL device: " + PROVIDER.availability().reason());
  }

  /** A contiguous host tensor of uniform values in [-1, 1), rounded to {@code dtype}. */
  static Tensor random(Arena arena, Random rnd, DType dtype, long... shape) {
    Tensor t = Tensor.allocate(arena, dtype, shape);
    fill(t, rnd);
    return t;
  }

  /** Fills every element of a host view with uniform values in [-1, 1). */
  static void fill(Tensor t, Random rnd) {
    long[] shape = t.shape();
    long[] idx = new long[shape.length];
    for (long n = 0; n < t.elementCount(); n++) {
      long rem = n;
      for (int d = shape.length - 1; d >= 0; d--) {
        idx[d] = rem % shape[d];
        rem /= shape[d];
      }
      t.set(rnd.nextDouble() * 2 - 1, idx);
    }
  }

  /** Tolerance (absolute and relative) for outputs stored as {@code dtype}, computed in fp32. */
  static double tolerance(DType dtype) {
    return switch (dtype) {
      case FLOAT32 -> 2e-5;
      case FLOAT16 -> 2e-3;
      case BFLOAT16 -> 1.6e-2;
      default -> throw new IllegalArgumentException(dtype.toString());
    };
  }

  /** Asserts that the request's output and LSE match the float64 reference. */
  static void assertMatchesReference(AttentionRequest r) {
    ReferenceAttention.Forward ref = ReferenceAttention.forward(r, DType.FLOAT64);
    assertClose("output", r.output(), ref.output(), tolerance(r.dtype()));
    r.lse().ifPresent(lse -> assertClose("lse", lse, ref.lse(), 2e-5));
  }

  /**
   * Asserts {@code |actual - expected| <= tol * (1 + |expected|)} element by element over a host view, comparing in
   * the view's logical row-major order with {@code expected} (infinities must match exactly).
   */
  static void assertClose(String what, Tensor actual, double[] expected, double tol) {
    long[] shape = actual.shape();
    long[] idx = new long[shape.length];
    assertThat((long) expected.length).as(what + " size").isEqualTo(actual.elementCount());
    for (int n = 0; n < expected.length; n++) {
      long rem = n;
      for (int d = shape.length - 1; d >= 0; d--) {
        idx[d] = rem % shape[d];
        rem /= shape[d];
      }
      double a = actual.get(idx);
      double e = expected[n];
      if (Double.isInfinite(e) || Double.isNaN(e)) {
        assertThat(a).as("%s%s", what, java.util.Arrays.toString(idx)).isEqualTo(e);
      } else if (!(Math.abs(a - e) <= tol * (1 + Math.abs(e)))) {
        throw new AssertionError(what + java.util.Arrays.toString(idx) + ": expected " + e + " but got " + a
            + " (tolerance " + tol + ")");
      }
    }
  }
}
