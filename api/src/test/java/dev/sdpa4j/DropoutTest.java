package dev.sdpa4j;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdpa4j.Dropout.Mask;
import java.util.SplittableRandom;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

/** The portable dropout mask of {@link Dropout}: its definition through {@link Philox4x32} and its statistics. */
class DropoutTest {

  @Test
  void wordThresholdIsFloorOfPTimesTwoToThe32() {
    assertThat(Mask.of(0, DropoutResolution.WORD).threshold()).isZero();
    assertThat(Mask.of(0.5, DropoutResolution.WORD).threshold()).isEqualTo(0x8000_0000);
    assertThat(Mask.of(0.25, DropoutResolution.WORD).threshold()).isEqualTo(0x4000_0000);
    assertThat(Integer.toUnsignedLong(Mask.of(0.1, DropoutResolution.WORD).threshold())).isEqualTo(429_496_729L);
    assertThat(Integer.toUnsignedLong(Mask.of(Math.nextDown(1.0), DropoutResolution.WORD).threshold()))
        .isEqualTo(0xFFFF_FFFFL);
    assertThat(Mask.of(0.2, DropoutResolution.WORD).keepScale()).isEqualTo(1.0 / 0.8);
    assertThat(Mask.of(0.25, DropoutResolution.WORD).dropProbability()).isEqualTo(0.25);
  }

  @ParameterizedTest(name = "p = {0}: t = {1}")
  @CsvSource({"0, 0", "0.001, 0", "0.002, 1", "0.1, 26", "0.25, 64", "0.5, 128", "0.997, 255", "0.9999, 255"})
  void byteThresholdIsPRoundedToMultiplesOfOneIn256(double p, int t) {
    Mask m = Mask.of(p, DropoutResolution.BYTE);
    assertThat(m.threshold()).isEqualTo(t);
    assertThat(m.keepScale()).isEqualTo(256.0 / (256 - t));
    assertThat(m.dropProbability()).isEqualTo(t / 256.0);
  }

  @ParameterizedTest
  @EnumSource(DropoutResolution.class)
  void probabilitiesOutsideZeroToOneAreRefused(DropoutResolution r) {
    assertThatThrownBy(() -> Mask.of(1.0, r)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> Mask.of(-0.1, r)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> Mask.of(Double.NaN, r)).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void wordKeepFollowsTheDocumentedCounterAndKey() {
    DropoutSeed seed = new DropoutSeed(0x0123_4567_89AB_CDEFL, 0xFEDC_BA98L);
    Mask mask = Mask.of(0.5, DropoutResolution.WORD);
    int[] r = new int[4];
    long heads = 3;
    for (long b = 0; b < 2; b++) {
      for (long h = 0; h < heads; h++) {
        for (long i = 0; i < 5; i++) {
          for (long j = 0; j < 11; j++) {
            Philox4x32.generate((int) (j / 4), (int) i, (int) (b * heads + h), 0xFEDC_BA98, 0x89AB_CDEF, 0x0123_4567, r);
            boolean expected = Integer.toUnsignedLong(r[(int) (j % 4)]) >= 0x8000_0000L;
            assertThat(mask.keep(seed, b, h, heads, i, j)).as("b=%d h=%d i=%d j=%d", b, h, i, j).isEqualTo(expected);
          }
        }
      }
    }
  }

  @Test
  void byteKeepReadsSixteenLittleEndianBytesPerCall() {
    DropoutSeed seed = new DropoutSeed(0x0123_4567_89AB_CDEFL, 0xFEDC_BA98L);
    Mask mask = Mask.of(0.3, DropoutResolution.BYTE);
    assertThat(mask.threshold()).isEqualTo(77);
    int[] r = new int[4];
    long heads = 3;
    for (long b = 0; b < 2; b++) {
      for (long h = 0; h < heads; h++) {
        for (long i = 0; i < 5; i++) {
          for (long j = 0; j < 40; j++) {
            Philox4x32.generate((int) (j / 16), (int) i, (int) (b * heads + h), 0xFEDC_BA98, 0x89AB_CDEF, 0x0123_4567,
                r);
            int word = (int) ((j % 16) / 4);
            int lane = (r[word] >>> (8 * (int) (j % 4))) & 0xff;
            assertThat(mask.keep(seed, b, h, heads, i, j)).as("b=%d h=%d i=%d j=%d", b, h, i, j)
                .isEqualTo(lane >= 77);
          }
        }
      }
    }
  }

  @ParameterizedTest
  @EnumSource(DropoutResolution.class)
  void keepRowAgreesWithKeepFromAnyStartingColumn(DropoutResolution resolution) {
    DropoutSeed seed = new DropoutSeed(-7_777_777_777L, 12);
    Mask mask = Mask.of(0.3, resolution);
    for (int j0 : new int[] {0, 1, 2, 3, 5, 15, 17, 130}) {
      for (int count : new int[] {1, 3, 4, 9, 16, 64}) {
        boolean[] row = new boolean[count];
        mask.keepRow(seed, 1, 2, 4, 17, j0, count, row);
        for (int x = 0; x < count; x++) {
          assertThat(row[x]).as("j0=%d x=%d", j0, x).isEqualTo(mask.keep(seed, 1, 2, 4, 17, j0 + x));
        }
      }
    }
  }

  @ParameterizedTest
  @EnumSource(DropoutResolution.class)
  void zeroProbabilityKeepsEverything(DropoutResolution resolution) {
    boolean[] row = new boolean[1000];
    Mask mask = Mask.of(0, resolution);
    mask.keepRow(new DropoutSeed(42, 0), 0, 0, 1, 0, 0, row.length, row);
    assertThat(row).containsOnly(true);
    assertThat(mask.keepScale()).isEqualTo(1.0);
  }

  @ParameterizedTest(name = "p = {0}, {1}")
  @CsvSource({"0.01, WORD", "0.1, WORD", "0.5, WORD", "0.9, WORD", "0.01, BYTE", "0.1, BYTE", "0.5, BYTE", "0.9, BYTE"})
  void keptFractionIsWithinABinomialBound(double p, DropoutResolution resolution) {
    long seedValue = new SplittableRandom().nextLong();
    System.out.println("DropoutTest.keptFractionIsWithinABinomialBound p=" + p + " " + resolution + " seed="
        + seedValue);
    DropoutSeed seed = new DropoutSeed(seedValue, seedValue >>> 40);
    Mask mask = Mask.of(p, resolution);
    double q = mask.dropProbability();
    assertThat(q).isCloseTo(p, Offset.offset(resolution == DropoutResolution.BYTE ? 0.5 / 256 : 0x1p-32));
    int heads = 4;
    int rows = 64;
    int cols = 1000;
    boolean[] row = new boolean[cols];
    long kept = 0;
    double scaledSum = 0;
    for (int h = 0; h < heads; h++) {
      for (int i = 0; i < rows; i++) {
        mask.keepRow(seed, 1, h, heads, i, 0, cols, row);
        for (boolean k : row) {
          if (k) {
            kept++;
            scaledSum += mask.keepScale();
          }
        }
      }
    }
    long n = (long) heads * rows * cols;
    double sigma = Math.sqrt(n * q * (1 - q));
    // six standard deviations: a false alarm has probability about 2e-9
    assertThat((double) kept).isCloseTo(n * (1 - q), Offset.offset(6 * sigma));
    // the scaled mask is unbiased: its mean is 1
    assertThat(scaledSum / n).isCloseTo(1.0, Offset.offset(6 * sigma / n / (1 - q)));
  }

  @ParameterizedTest
  @EnumSource(DropoutResolution.class)
  void differentRowsHeadsAndOffsetsGiveDifferentMasks(DropoutResolution resolution) {
    Mask mask = Mask.of(0.5, resolution);
    boolean[] a = new boolean[256];
    boolean[] b = new boolean[256];
    mask.keepRow(new DropoutSeed(1, 0), 0, 0, 2, 0, 0, 256, a);
    mask.keepRow(new DropoutSeed(1, 0), 0, 0, 2, 1, 0, 256, b);
    assertThat(b).isNotEqualTo(a);
    mask.keepRow(new DropoutSeed(1, 0), 0, 1, 2, 0, 0, 256, b);
    assertThat(b).isNotEqualTo(a);
    mask.keepRow(new DropoutSeed(1, 1), 0, 0, 2, 0, 0, 256, b);
    assertThat(b).isNotEqualTo(a);
    mask.keepRow(new DropoutSeed(1L << 32 | 1, 0), 0, 0, 2, 0, 0, 256, b);
    assertThat(b).isNotEqualTo(a);
  }

  @Test
  void byteAndWordMasksOfOneSeedDiffer() {
    DropoutSeed seed = new DropoutSeed(5, 0);
    boolean[] a = new boolean[256];
    boolean[] b = new boolean[256];
    Mask.of(0.5, DropoutResolution.WORD).keepRow(seed, 0, 0, 1, 0, 0, 256, a);
    Mask.of(0.5, DropoutResolution.BYTE).keepRow(seed, 0, 0, 1, 0, 0, 256, b);
    assertThat(b).isNotEqualTo(a);
  }
}
