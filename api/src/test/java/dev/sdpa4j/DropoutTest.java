package dev.sdpa4j;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The portable dropout mask of {@link Dropout}: its definition through {@link Philox4x32} and its statistics. */
class DropoutTest {

  @Test
  void thresholdIsFloorOfPTimesTwoToThe32() {
    assertThat(Dropout.threshold(0)).isZero();
    assertThat(Dropout.threshold(0.5)).isEqualTo(0x8000_0000);
    assertThat(Dropout.threshold(0.25)).isEqualTo(0x4000_0000);
    assertThat(Integer.toUnsignedLong(Dropout.threshold(0.1))).isEqualTo(429_496_729L);
    assertThat(Integer.toUnsignedLong(Dropout.threshold(Math.nextDown(1.0)))).isEqualTo(0xFFFF_FFFFL);
    assertThatThrownBy(() -> Dropout.threshold(1.0)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> Dropout.threshold(-0.1)).isInstanceOf(IllegalArgumentException.class);
    assertThat(Dropout.keepScale(0.2)).isEqualTo(1.0 / 0.8);
  }

  @Test
  void keepFollowsTheDocumentedCounterAndKey() {
    DropoutSeed seed = new DropoutSeed(0x0123_4567_89AB_CDEFL, 0xFEDC_BA98L);
    int threshold = Dropout.threshold(0.5);
    int[] r = new int[4];
    long heads = 3;
    for (long b = 0; b < 2; b++) {
      for (long h = 0; h < heads; h++) {
        for (long i = 0; i < 5; i++) {
          for (long j = 0; j < 11; j++) {
            Philox4x32.generate((int) (j / 4), (int) i, (int) (b * heads + h), 0xFEDC_BA98, 0x89AB_CDEF, 0x0123_4567, r);
            boolean expected = Integer.toUnsignedLong(r[(int) (j % 4)]) >= 0x8000_0000L;
            assertThat(Dropout.keep(seed, threshold, b, h, heads, i, j)).as("b=%d h=%d i=%d j=%d", b, h, i, j)
                .isEqualTo(expected);
          }
        }
      }
    }
  }

  @Test
  void keepRowAgreesWithKeepFromAnyStartingColumn() {
    DropoutSeed seed = new DropoutSeed(-7_777_777_777L, 12);
    int threshold = Dropout.threshold(0.3);
    for (int j0 : new int[] {0, 1, 2, 3, 5, 130}) {
      for (int count : new int[] {1, 3, 4, 9, 64}) {
        boolean[] row = new boolean[count];
        Dropout.keepRow(seed, threshold, 1, 2, 4, 17, j0, count, row);
        for (int x = 0; x < count; x++) {
          assertThat(row[x]).as("j0=%d x=%d", j0, x).isEqualTo(Dropout.keep(seed, threshold, 1, 2, 4, 17, j0 + x));
        }
      }
    }
  }

  @Test
  void zeroProbabilityKeepsEverything() {
    boolean[] row = new boolean[1000];
    Dropout.keepRow(new DropoutSeed(42, 0), Dropout.threshold(0), 0, 0, 1, 0, 0, row.length, row);
    for (boolean k : row) {
      assertThat(k).isTrue();
    }
  }

  @ParameterizedTest(name = "p = {0}")
  @ValueSource(doubles = {0.01, 0.1, 0.5, 0.9})
  void keptFractionIsWithinABinomialBound(double p) {
    long seedValue = new SplittableRandom().nextLong();
    System.out.println("DropoutTest.keptFractionIsWithinABinomialBound p=" + p + " seed=" + seedValue);
    DropoutSeed seed = new DropoutSeed(seedValue, seedValue >>> 40);
    int threshold = Dropout.threshold(p);
    int heads = 4;
    int rows = 64;
    int cols = 1000;
    boolean[] row = new boolean[cols];
    long kept = 0;
    double scaledSum = 0;
    for (int h = 0; h < heads; h++) {
      for (int i = 0; i < rows; i++) {
        Dropout.keepRow(seed, threshold, 1, h, heads, i, 0, cols, row);
        for (boolean k : row) {
          if (k) {
            kept++;
            scaledSum += Dropout.keepScale(p);
          }
        }
      }
    }
    long n = (long) heads * rows * cols;
    double sigma = Math.sqrt(n * p * (1 - p));
    // six standard deviations: a false alarm has probability about 2e-9
    assertThat((double) kept).isCloseTo(n * (1 - p), org.assertj.core.data.Offset.offset(6 * sigma));
    // the scaled mask is unbiased: its mean is 1
    assertThat(scaledSum / n).isCloseTo(1.0, org.assertj.core.data.Offset.offset(6 * sigma / n / (1 - p)));
  }

  @Test
  void differentRowsHeadsAndOffsetsGiveDifferentMasks() {
    int threshold = Dropout.threshold(0.5);
    boolean[] a = new boolean[256];
    boolean[] b = new boolean[256];
    Dropout.keepRow(new DropoutSeed(1, 0), threshold, 0, 0, 2, 0, 0, 256, a);
    Dropout.keepRow(new DropoutSeed(1, 0), threshold, 0, 0, 2, 1, 0, 256, b);
    assertThat(b).isNotEqualTo(a);
    Dropout.keepRow(new DropoutSeed(1, 0), threshold, 0, 1, 2, 0, 0, 256, b);
    assertThat(b).isNotEqualTo(a);
    Dropout.keepRow(new DropoutSeed(1, 1), threshold, 0, 0, 2, 0, 0, 256, b);
    assertThat(b).isNotEqualTo(a);
    Dropout.keepRow(new DropoutSeed(1L << 32 | 1, 0), threshold, 0, 0, 2, 0, 0, 256, b);
    assertThat(b).isNotEqualTo(a);
  }
}
