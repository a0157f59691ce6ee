package dev.sdpa4j.provider.math;

import static dev.sdpa4j.provider.math.Fixtures.problem;
import static dev.sdpa4j.provider.math.Fixtures.values;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.DType;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.provider.math.Fixtures.Case;
import dev.sdpa4j.provider.math.Fixtures.Masking;
import java.lang.foreign.Arena;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The reference itself: a hand-computed case, gradients against finite differences, the low-precision mode. */
class ReferenceAttentionTest {

  @Test
  void matchesAHandComputedCase() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor q = Tensor.allocate(arena, DType.FLOAT64, 1, 1, 1, 1);
      Tensor k = Tensor.allocate(arena, DType.FLOAT64, 1, 1, 2, 1);
      Tensor v = Tensor.allocate(arena, DType.FLOAT64, 1, 1, 2, 2);
      q.set(2, 0, 0, 0, 0);
      k.set(1, 0, 0, 0, 0);
      k.set(-1, 0, 0, 1, 0);
      v.set(2, 0, 0, 0, 0);
      v.set(1, 0, 0, 0, 1);
      v.set(4, 0, 0, 1, 0);
      v.set(3, 0, 0, 1, 1);
      Tensor out = Tensor.allocate(arena, DType.FLOAT64, 1, 1, 1, 2);
      AttentionRequest r = AttentionRequest.create(q, k, v, out, null, AttentionOptions.builder().scale(0.5).build());
      ReferenceAttention.Forward f = ReferenceAttention.forward(r, DType.FLOAT64);
      // scores 0.5 * 2 * (1, -1) = (1, -1)
      double p0 = Math.exp(1) / (Math.exp(1) + Math.exp(-1));
      double p1 = 1 - p0;
      assertThat(f.output()[0]).isCloseTo(2 * p0 + 4 * p1, within(1e-15));
      assertThat(f.output()[1]).isCloseTo(p0 + 3 * p1, within(1e-15));
      assertThat(f.lse()[0]).isCloseTo(Math.log(Math.exp(1) + Math.exp(-1)), within(1e-15));
    }
  }

  static Stream<Case> smallCases() {
    return Stream.of(
        Case.of(1, 1, 1, 3, 4, 3, 2),
        Case.of(2, 2, 1, 3, 5, 2, 3).with(Masking.CAUSAL_TOP_LEFT),
        Case.of(1, 2, 2, 2, 5, 3, 3).with(Masking.CAUSAL_BOTTOM_RIGHT),
        Case.of(1, 2, 2, 5, 3, 3, 3).with(Masking.CAUSAL_BOTTOM_RIGHT),
        Case.of(1, 2, 1, 4, 4, 2, 2).with(Masking.BOOL_FULL),
        Case.of(2, 2, 2, 3, 4, 2, 3).with(Masking.ADDITIVE_FP32),
        Case.of(1, 4, 2, 3, 6, 3, 2).with(Masking.ADDITIVE_BIAS).withDropout(0.3),
        new Case(1, 2, 1, 3, 4, 3, 2, DType.FLOAT64, Masking.NONE, true, 0.5, 0.7));
  }

  @ParameterizedTest
  @MethodSource("smallCases")
  void gradientsMatchCentralFiniteDifferences(Case small) {
    Case c = small.with(DType.FLOAT64);
    long seed = Fixtures.seed("gradientsMatchCentralFiniteDifferences " + c);
    try (Arena arena = Arena.ofConfined()) {
      Fixtures.Problem p = problem(arena, c, seed);
      BackwardRequest br = p.backward();
      ReferenceAttention.Gradients g = ReferenceAttention.backward(br, DType.FLOAT64);
      double[] dOut = values(p.gradOut());
      AttentionRequest r = p.request();
      checkFiniteDifferences("dQ", r.query(), g.query(), r, dOut);
      checkFiniteDifferences("dK", r.key(), g.key(), r, dOut);
      checkFiniteDifferences("dV", r.value(), g.value(), r, dOut);
    }
  }

  /** Perturbs each element of {@code x} by ±h and compares {@code d(sum(dOut · O))/dx} with the gradient. */
  private static void checkFiniteDifferences(String what, Tensor x, double[] gradient, AttentionRequest r,
      double[] dOut) {
    double h = 1e-6;
    int n = 0;
    for (long a = 0; a < x.size(0); a++) {
      for (long b = 0; b < x.size(1); b++) {
        for (long c = 0; c < x.size(2); c++) {
          for (long d = 0; d < x.size(3); d++) {
            double x0 = x.get(a, b, c, d);
            x.set(x0 + h, a, b, c, d);
            double up = loss(r, dOut);
            x.set(x0 - h, a, b, c, d);
            double down = loss(r, dOut);
            x.set(x0, a, b, c, d);
            double numeric = (up - down) / (2 * h);
            assertThat(gradient[n]).as("%s[%d] (%d,%d,%d,%d)", what, n, a, b, c, d)
                .isCloseTo(numeric, within(1e-7 + 1e-6 * Math.abs(numeric)));
            n++;
          }
        }
      }
    }
  }

  private static double loss(AttentionRequest r, double[] dOut) {
    double[] o = ReferenceAttention.forward(r, DType.FLOAT64).output();
    double s = 0;
    for (int i = 0; i < o.length; i++) {
      s += o[i] * dOut[i];
    }
    return s;
  }

  @Test
  void lowPrecisionModesRoundTheIntermediates() {
    long seed = Fixtures.seed("lowPrecisionModesRoundTheIntermediates");
    try (Arena arena = Arena.ofConfined()) {
      Fixtures.Problem p = problem(arena, Case.of(1, 2, 2, 17, 33, 16, 16).with(DType.FLOAT16), seed);
      double[] exact = ReferenceAttention.forward(p.request(), DType.FLOAT64).output();
      for (DType t : new DType[] {DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16}) {
        double[] low = ReferenceAttention.forward(p.request(), t).output();
        double worst = 0;
        for (int x = 0; x < exact.length; x++) {
          worst = Math.max(worst, Math.abs(low[x] - exact[x]));
          assertThat(low[x]).as("%s output %d is a %s value", t, x, t).isEqualTo(t.round(low[x]));
        }
        double unit = t == DType.FLOAT32 ? 0x1p-23 : t == DType.FLOAT16 ? 0x1p-10 : 0x1p-7;
        assertThat(worst).as("%s error", t).isPositive().isLessThan(64 * unit);
      }
    }
  }

  @Test
  void rejectsANonFloatingPrecision() {
    try (Arena arena = Arena.ofConfined()) {
      Fixtures.Problem p = problem(arena, Case.of(1, 1, 1, 2, 2, 2, 2), 1);
      org.assertj.core.api.Assertions.assertThatThrownBy(() -> ReferenceAttention.forward(p.request(), DType.BOOL))
          .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("precision");
    }
  }
}
