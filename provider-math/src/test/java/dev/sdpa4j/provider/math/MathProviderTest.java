package dev.sdpa4j.provider.math;

import static dev.sdpa4j.provider.math.Fixtures.assertClose;
import static dev.sdpa4j.provider.math.Fixtures.problem;
import static dev.sdpa4j.provider.math.Fixtures.tolerance;
import static dev.sdpa4j.provider.math.Fixtures.values;
import static org.assertj.core.api.Assertions.assertThat;

import dev.sdpa4j.DType;
import dev.sdpa4j.provider.math.Fixtures.Case;
import dev.sdpa4j.provider.math.Fixtures.Masking;
import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The provider against the float64 reference over a grid of shapes, dtypes, masks and options. */
class MathProviderTest {
  private static final MathProvider PROVIDER = new MathProvider();

  static Stream<Case> forwardGrid() {
    List<Case> shapes = List.of(
        Case.of(1, 1, 1, 1, 1, 1, 1),
        Case.of(1, 1, 1, 1, 129, 16, 16),
        Case.of(2, 3, 3, 7, 13, 5, 9),
        Case.of(1, 4, 2, 13, 7, 32, 16),
        Case.of(2, 2, 1, 129, 129, 64, 64),
        Case.of(1, 2, 2, 70, 200, 17, 33),
        Case.of(1, 3, 1, 200, 70, 8, 8),
        Case.of(1, 1, 1, 20, 30, 300, 257),
        Case.of(1, 2, 1, 2, 100, 37, 20),
        Case.of(2, 1, 1, 3, 65, 130, 48),
        // full row blocks with E and Ev past one 64-wide slice (depth slices, value slices and a narrow tail)
        Case.of(1, 2, 1, 150, 97, 130, 80),
        // two query tasks of one head, two value slices
        Case.of(1, 1, 1, 600, 70, 64, 128),
        // one block of four row vectors, not full
        Case.of(1, 1, 1, 55, 40, 24, 64));
    List<Case> cases = new ArrayList<>();
    int n = 0;
    for (Case s : shapes) {
      for (Masking m : Masking.values()) {
        for (DType t : new DType[] {DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16, DType.FLOAT64}) {
          // every shape × mask in fp32; the other dtypes on a rotating subset, to keep the run short
          if (t == DType.FLOAT32 || (n++ % 3) == 0) {
            cases.add(s.with(m).with(t).withBlhe(n % 2 == 0));
          }
        }
      }
    }
    return cases.stream();
  }

  @ParameterizedTest
  @MethodSource("forwardGrid")
  void forwardMatchesReference(Case c) {
    long seed = Fixtures.seed("forwardMatchesReference " + c);
    try (Arena arena = Arena.ofShared()) {
      Fixtures.Problem p = problem(arena, c, seed);
      PROVIDER.forward(p.request());
      ReferenceAttention.Forward ref = ReferenceAttention.forward(p.request(), DType.FLOAT64);
      assertClose("output", values(p.request().output()), ref.output(), tolerance(c.dtype()), tolerance(c.dtype()));
      assertClose("lse", values(p.request().lse().orElseThrow()), ref.lse(), 1e-5, 1e-5);
    }
  }

  static Stream<Case> dropoutGrid() {
    return Stream.of(
        Case.of(2, 2, 1, 33, 70, 16, 8).withDropout(0.3),
        Case.of(1, 2, 2, 129, 129, 64, 64).with(Masking.CAUSAL_TOP_LEFT).withDropout(0.5),
        Case.of(1, 1, 1, 13, 7, 5, 3).with(Masking.BOOL_FULL).withDropout(0.1).with(DType.FLOAT64),
        Case.of(1, 2, 1, 40, 90, 24, 24).with(Masking.ADDITIVE_FP32).withDropout(0.2).with(DType.BFLOAT16));
  }

  @ParameterizedTest
  @MethodSource("dropoutGrid")
  void dropoutUsesThePortableMask(Case c) {
    long seed = Fixtures.seed("dropoutUsesThePortableMask " + c);
    try (Arena arena = Arena.ofShared()) {
      Fixtures.Problem p = problem(arena, c, seed);
      PROVIDER.forward(p.request());
      ReferenceAttention.Forward ref = ReferenceAttention.forward(p.request(), DType.FLOAT64);
      assertClose("output", values(p.request().output()), ref.output(), 2 * tolerance(c.dtype()), tolerance(c.dtype()));
      assertClose("lse", values(p.request().lse().orElseThrow()), ref.lse(), 1e-5, 1e-5);
    }
  }

  static Stream<Case> backwardGrid() {
    return Stream.of(
        Case.of(1, 1, 1, 1, 1, 1, 1),
        Case.of(2, 4, 2, 13, 7, 5, 9),
        Case.of(1, 2, 1, 129, 129, 32, 16).with(Masking.CAUSAL_TOP_LEFT),
        Case.of(1, 2, 2, 70, 100, 16, 16).with(Masking.CAUSAL_BOTTOM_RIGHT).withBlhe(true),
        Case.of(1, 2, 2, 100, 70, 16, 16).with(Masking.CAUSAL_BOTTOM_RIGHT),
        Case.of(2, 2, 2, 33, 65, 8, 8).with(Masking.BOOL_FULL).withDropout(0.25),
        Case.of(1, 3, 1, 40, 40, 12, 20).with(Masking.ADDITIVE_FP32).with(DType.FLOAT64),
        Case.of(1, 2, 2, 64, 64, 16, 16).with(Masking.BOOL_BROADCAST).with(DType.FLOAT16),
        Case.of(1, 2, 1, 64, 50, 16, 16).with(Masking.ADDITIVE_BIAS).with(DType.BFLOAT16).withDropout(0.1),
        Case.of(1, 1, 1, 9, 70, 1024, 1000).with(Masking.CAUSAL_BOTTOM_RIGHT));
  }

  @ParameterizedTest
  @MethodSource("backwardGrid")
  void backwardMatchesReference(Case c) {
    long seed = Fixtures.seed("backwardMatchesReference " + c);
    try (Arena arena = Arena.ofShared()) {
      Fixtures.Problem p = problem(arena, c, seed);
      PROVIDER.forward(p.request());
      PROVIDER.backward(p.backward());
      ReferenceAttention.Gradients ref = ReferenceAttention.backward(p.backward(), DType.FLOAT64);
      // the provider uses the forward's output and LSE as stored (in the dtype, and fp32): allow for that
      double tol = switch (c.dtype()) {
        case FLOAT64 -> 1e-10;
        case FLOAT32 -> 1e-4;
        case FLOAT16 -> 1e-2;
        default -> 5e-2;
      };
      assertClose("dQ", values(p.gradQ()), ref.query(), tol, tol);
      assertClose("dK", values(p.gradK()), ref.key(), tol, tol);
      assertClose("dV", values(p.gradV()), ref.value(), tol, tol);
    }
  }

  @ParameterizedTest
  @MethodSource("backwardGrid")
  void resultsAreBitReproducible(Case c) {
    long seed = Fixtures.seed("resultsAreBitReproducible " + c);
    try (Arena arena = Arena.ofShared()) {
      Fixtures.Problem p = problem(arena, c, seed);
      PROVIDER.forward(p.request());
      PROVIDER.backward(p.backward());
      double[] o1 = values(p.request().output());
      double[] dq1 = values(p.gradQ());
      double[] dk1 = values(p.gradK());
      PROVIDER.forward(p.request());
      PROVIDER.backward(p.backward());
      assertThat(values(p.request().output())).containsExactly(o1);
      assertThat(values(p.gradQ())).containsExactly(dq1);
      assertThat(values(p.gradK())).containsExactly(dk1);
    }
  }
}
