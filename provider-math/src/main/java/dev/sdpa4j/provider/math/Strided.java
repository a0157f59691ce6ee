package dev.sdpa4j.provider.math;

import dev.sdpa4j.DType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Reads and writes runs of elements of host tensors (any dtype, any element stride) into and out of float and
 * double work arrays, converting on the fly. Offsets and strides are in elements.
 */
final class Strided {
  private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.nativeOrder());
  private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.nativeOrder());
  private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.nativeOrder());

  private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Integer> IS = VectorSpecies.of(int.class, VectorShape.forBitSize(FS.vectorBitSize()));
  /** Shorts with as many lanes as {@link #FS}, in half the bits. */
  private static final VectorSpecies<Short> HS =
      VectorSpecies.of(short.class, VectorShape.forBitSize(FS.vectorBitSize() / 2));

  private Strided() {}

  /**
   * {@code dst[off + x * dstStride] = mul * element(start + x * stride)} for {@code x < n}.
   */
  static void read(DType type, MemorySegment seg, long start, long stride, int n, float[] dst, int off, int dstStride,
      float mul) {
    switch (type) {
      case FLOAT32 -> {
        if (stride == 1 && dstStride == 1 && mul == 1f) {
          MemorySegment.copy(seg, F32, start * 4, dst, off, n);
        } else {
          for (int x = 0; x < n; x++) {
            dst[off + x * dstStride] = mul * seg.get(F32, (start + x * stride) * 4);
          }
        }
      }
      case FLOAT16 -> {
        for (int x = 0; x < n; x++) {
          dst[off + x * dstStride] = mul * Float.float16ToFloat(seg.get(I16, (start + x * stride) * 2));
        }
      }
      case BFLOAT16 -> {
        for (int x = 0; x < n; x++) {
          dst[off + x * dstStride] = mul * DType.bfloat16ToFloat(seg.get(I16, (start + x * stride) * 2));
        }
      }
      case FLOAT64 -> {
        for (int x = 0; x < n; x++) {
          dst[off + x * dstStride] = (float) (mul * seg.get(F64, (start + x * stride) * 8));
        }
      }
      case BOOL -> throw new IllegalArgumentException("bool is not an attention dtype");
    }
  }

  /**
   * Reads {@code rows} rows of {@code cols} elements (row {@code y} starts at {@code start + y * rowStride}, its
   * elements {@code colStride} apart) into {@code dst}, row {@code y} at {@code off + y * dstRowStride}. Rows that
   * are contiguous in both places are copied in one piece.
   */
  static void readRows(DType type, MemorySegment seg, long start, long rowStride, long colStride, int rows, int cols,
      float[] dst, int off, int dstRowStride) {
    if (type == DType.FLOAT32 && colStride == 1 && rowStride == cols && dstRowStride == cols) {
      MemorySegment.copy(seg, F32, start * 4, dst, off, rows * cols);
      return;
    }
    if ((type == DType.FLOAT16 || type == DType.BFLOAT16) && colStride == 1 && HS.length() == FS.length()) {
      for (int y = 0; y < rows; y++) {
        readHalves(type == DType.FLOAT16, seg, start + y * rowStride, cols, dst, off + y * dstRowStride);
      }
      return;
    }
    for (int y = 0; y < rows; y++) {
      read(type, seg, start + y * rowStride, colStride, cols, dst, off + y * dstRowStride, 1, 1f);
    }
  }

  /**
   * Converts {@code n} contiguous fp16 ({@code half}) or bf16 elements from {@code start} to floats, a vector at a
   * time: bf16 is the upper half of a float; fp16's exponent and mantissa shifted into place and multiplied by
   * {@code 2^112} give every finite value (subnormals included) exactly, and an all-ones exponent maps to infinity or
   * NaN.
   */
  private static void readHalves(boolean half, MemorySegment seg, long start, int n, float[] dst, int off) {
    int x = 0;
    for (; x + HS.length() <= n; x += HS.length()) {
      IntVector bits = (IntVector) ShortVector.fromMemorySegment(HS, seg, (start + x) * 2, ByteOrder.nativeOrder())
          .convertShape(VectorOperators.S2I, IS, 0);
      FloatVector f;
      if (half) {
        IntVector magnitude = bits.and(0x7FFF);
        IntVector sign = bits.and(0x8000).lanewise(VectorOperators.LSHL, 16);
        IntVector shifted = magnitude.lanewise(VectorOperators.LSHL, 13);
        IntVector finite = shifted.reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts();
        IntVector special = shifted.or(0x7F80_0000);
        f = finite.blend(special, magnitude.compare(VectorOperators.GE, 0x7C00)).or(sign).reinterpretAsFloats();
      } else {
        f = bits.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
      }
      f.intoArray(dst, off + x);
    }
    if (x < n) {
      read(half ? DType.FLOAT16 : DType.BFLOAT16, seg, start + x, 1, n - x, dst, off + x, 1, 1f);
    }
  }

  /** {@code dst[off + x] = element(start + x * stride)} for {@code x < n}. */
  static void read(DType type, MemorySegment seg, long start, long stride, int n, double[] dst, int off) {
    for (int x = 0; x < n; x++) {
      dst[off + x] = type.read(seg, (start + x * stride) * type.byteSize());
    }
  }

  /**
   * {@code element(start + x * stride) = mul * src[off + x]} rounded to {@code type}, for {@code x < n}; a contiguous
   * float32 run a vector at a time.
   */
  static void write(DType type, MemorySegment seg, long start, long stride, int n, float[] src, int off, float mul) {
    switch (type) {
      case FLOAT32 -> {
        int x = 0;
        if (stride == 1) {
          for (; x + FS.length() <= n; x += FS.length()) {
            FloatVector.fromArray(FS, src, off + x).mul(mul)
                .intoMemorySegment(seg, (start + x) * 4, ByteOrder.nativeOrder());
          }
        }
        for (; x < n; x++) {
          seg.set(F32, (start + x * stride) * 4, mul * src[off + x]);
        }
      }
      case FLOAT16 -> {
        for (int x = 0; x < n; x++) {
          seg.set(I16, (start + x * stride) * 2, Float.floatToFloat16(mul * src[off + x]));
        }
      }
      case BFLOAT16 -> {
        for (int x = 0; x < n; x++) {
          seg.set(I16, (start + x * stride) * 2, DType.floatToBfloat16(mul * src[off + x]));
        }
      }
      case FLOAT64 -> {
        for (int x = 0; x < n; x++) {
          seg.set(F64, (start + x * stride) * 8, (double) (mul * src[off + x]));
        }
      }
      case BOOL -> throw new IllegalArgumentException("bool is not an attention dtype");
    }
  }

  /** {@code element(start + x * stride) = mul * src[off + x]} rounded to {@code type}, for {@code x < n}. */
  static void write(DType type, MemorySegment seg, long start, long stride, int n, double[] src, int off, double mul) {
    for (int x = 0; x < n; x++) {
      type.write(seg, (start + x * stride) * type.byteSize(), mul * src[off + x]);
    }
  }
}
