package dev.sdpa4j.provider.math;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdpa4j.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The conversions of {@link Strided}: the vectorised fp16/bf16 path against the scalar one, bit for bit. */
class StridedTest {

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"FLOAT16", "BFLOAT16"})
  void everyHalfWidthBitPatternConvertsExactly(DType t) {
    int n = 1 << 16;
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment seg = arena.allocate((long) n * 2 + 6);
      for (int x = 0; x < n; x++) {
        seg.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, x + 3, (short) x);
      }
      // rows of 1000 elements starting at element 3: vector body plus a scalar tail per row
      int cols = 1000;
      int rows = n / cols;
      float[] vectorised = new float[rows * cols];
      Strided.readRows(t, seg, 3, cols, 1, rows, cols, vectorised, 0, cols);
      for (int x = 0; x < rows * cols; x++) {
        float expected = (float) t.read(seg, (x + 3) * 2L);
        assertThat(Float.floatToRawIntBits(vectorised[x]) == Float.floatToRawIntBits(expected)
            || (Float.isNaN(expected) && Float.isNaN(vectorised[x])))
            .as("%s bits 0x%04x: expected %s, got %s", t, x, expected, vectorised[x]).isTrue();
      }
    }
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"FLOAT64", "FLOAT32", "FLOAT16", "BFLOAT16"})
  void stridedRowsRoundTrip(DType t) {
    try (Arena arena = Arena.ofConfined()) {
      // 5 rows of 7 elements, elements 3 apart, rows 40 apart
      MemorySegment seg = arena.allocate(200L * t.byteSize());
      float[] src = new float[7];
      for (int y = 0; y < 5; y++) {
        for (int c = 0; c < 7; c++) {
          src[c] = y * 10 + c + 0.5f;
        }
        Strided.write(t, seg, 2 + y * 40L, 3, 7, src, 0, 2f);
      }
      float[] back = new float[5 * 9];
      Strided.readRows(t, seg, 2, 40, 3, 5, 7, back, 0, 9);
      for (int y = 0; y < 5; y++) {
        for (int c = 0; c < 7; c++) {
          assertThat(back[y * 9 + c]).isEqualTo(2 * (y * 10 + c + 0.5f));
        }
      }
    }
  }
}
