package dev.sdpa4j.conformance;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdpa4j.DType;
import org.junit.jupiter.api.Test;

/** The tolerance scheme on hand-made numbers. */
class ClosenessTest {
  private static final long[] SHAPE = {1, 1, 2, 2};

  @Test
  void toleranceIsTheFudgeTimesTheLowPrecisionErrorWithAFloor() {
    double[] exact = {1, 2, 3, 4};
    Closeness.Tolerance small = Closeness.tolerance(Quantity.OUTPUT, DType.FLOAT16, exact, new double[] {1, 2, 3, 4},
        64);
    assertThat(small.atol()).isEqualTo(4 * 1e-3);
    assertThat(small.rtol()).isEqualTo(4 * 1e-3);
    Closeness.Tolerance large = Closeness.tolerance(Quantity.GRAD_QUERY, DType.FLOAT16, exact,
        new double[] {1, 2.5, 3, 4}, 64);
    assertThat(large.atol()).isEqualTo(16 * 0.5);
    assertThat(large.lowPrecisionError()).isEqualTo(0.5);
  }

  @Test
  void theFloorGrowsWithTheSquareRootOfLongReductions() {
    double[] exact = {1};
    assertThat(Closeness.tolerance(Quantity.OUTPUT, DType.FLOAT32, exact, exact, 1024).atol()).isEqualTo(4 * 4e-5);
    assertThat(Closeness.tolerance(Quantity.OUTPUT, DType.FLOAT32, exact, exact, 16).atol()).isEqualTo(4 * 1e-5);
  }

  @Test
  void theLseAlwaysUsesFp32Floors() {
    Closeness.Tolerance t = Closeness.tolerance(Quantity.LSE, DType.BFLOAT16, new double[] {1}, new double[] {1}, 17);
    assertThat(t.atol()).isEqualTo(4 * 1e-5);
    assertThat(t.rtol()).isEqualTo(4 * 1.3e-6);
  }

  @Test
  void reportsTheWorstElementWithItsIndex() {
    Closeness.Tolerance t = new Closeness.Tolerance(0.01, 0, 0.001);
    double[] exact = {0, 1, 2, 3};
    assertThat(Closeness.mismatch(Quantity.OUTPUT, DType.FLOAT32, new double[] {0, 1.005, 2, 3}, exact, t, SHAPE,
        null, 2)).isEmpty();
    String report = Closeness.mismatch(Quantity.OUTPUT, DType.FLOAT32, new double[] {0, 1.02, 2.5, 3}, exact, t,
        SHAPE, null, 2).orElseThrow();
    assertThat(report).startsWith("output: 2 of 4 elements differ")
        .contains("worst at [0, 0, 1, 0]: got 2.5, expected 2.0");
  }

  @Test
  void nanOnlyWhereTheReferenceHasNaNAndInfinitiesExactly() {
    Closeness.Tolerance t = new Closeness.Tolerance(1, 1, 0);
    double[] exact = {Double.NaN, Double.NEGATIVE_INFINITY, 0, 0};
    double[] same = {Double.NaN, Double.NEGATIVE_INFINITY, 0, 0};
    assertThat(Closeness.mismatch(Quantity.LSE, DType.FLOAT32, same, exact, t, SHAPE, null, 1)).isEmpty();
    assertThat(Closeness.mismatch(Quantity.LSE, DType.FLOAT32, new double[] {0, Double.NEGATIVE_INFINITY, 0, 0},
        exact, t, SHAPE, null, 1)).hasValueSatisfying(m -> assertThat(m).contains("the reference is NaN here"));
    assertThat(Closeness.mismatch(Quantity.LSE, DType.FLOAT32, new double[] {Double.NaN, -1e30, 0, 0},
        exact, t, SHAPE, null, 1)).hasValueSatisfying(m -> assertThat(m).contains("infinities must match exactly"));
    assertThat(Closeness.mismatch(Quantity.LSE, DType.FLOAT32, new double[] {Double.NaN, Double.NEGATIVE_INFINITY, 0,
        Double.NaN}, exact, t, SHAPE, null, 1)).hasValueSatisfying(m -> assertThat(m)
        .contains("NaN where the reference is not"));
  }

  @Test
  void fullyMaskedRowsMustBeExactlyZero() {
    Closeness.Tolerance t = new Closeness.Tolerance(1, 1, 0);
    double[] exact = {0, 0, 1, 1};
    boolean[] masked = {true, false};
    assertThat(Closeness.mismatch(Quantity.OUTPUT, DType.FLOAT32, new double[] {0, -0.0, 1.5, 1}, exact, t, SHAPE,
        masked, 2)).isEmpty();
    assertThat(Closeness.mismatch(Quantity.OUTPUT, DType.FLOAT32, new double[] {0, 1e-30, 1, 1}, exact, t, SHAPE,
        masked, 2)).hasValueSatisfying(m -> assertThat(m).contains("a fully masked row must be exactly zero"));
  }
}
