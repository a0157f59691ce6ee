package dev.sdpa4j;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Element types of tensors. Attention inputs are {@link #FLOAT32}, {@link #FLOAT16} or {@link #BFLOAT16}
 * ({@link #FLOAT64} where a provider declares it); {@link #BOOL} is for boolean masks only (one byte, non-zero
 * means "takes part").
 *
 * <p>Host memory is read and written in native byte order. Conversions to a narrower type round to nearest even.
 */
public enum DType {
  FLOAT64(8, "fp64"),
  FLOAT32(4, "fp32"),
  FLOAT16(2, "fp16"),
  BFLOAT16(2, "bf16"),
  BOOL(1, "bool");

  private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.nativeOrder());
  private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.nativeOrder());
  private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.nativeOrder());

  private final int byteSize;
  private final String shortName;

  DType(int byteSize, String shortName) {
    this.byteSize = byteSize;
    this.shortName = shortName;
  }

  /** Bytes per element. */
  public int byteSize() {
    return byteSize;
  }

  /** The short name used on the command line and in messages: fp64, fp32, fp16, bf16, bool. */
  public String shortName() {
    return shortName;
  }

  /** True for the floating-point types. */
  public boolean isFloatingPoint() {
    return this != BOOL;
  }

  /** Parses a short name ({@code fp16}) or an enum name ({@code FLOAT16}), ignoring case. */
  public static DType parse(String name) {
    for (DType t : values()) {
      if (t.shortName.equalsIgnoreCase(name) || t.name().equalsIgnoreCase(name)) {
        return t;
      }
    }
    throw new IllegalArgumentException("unknown dtype '" + name + "'; expected one of fp64, fp32, fp16, bf16, bool");
  }

  /** Reads the element at {@code byteOffset} of a host segment as a double ({@link #BOOL}: 1 or 0). */
  public double read(MemorySegment segment, long byteOffset) {
    return switch (this) {
      case FLOAT64 -> segment.get(F64, byteOffset);
      case FLOAT32 -> segment.get(F32, byteOffset);
      case FLOAT16 -> Float.float16ToFloat(segment.get(I16, byteOffset));
      case BFLOAT16 -> bfloat16ToFloat(segment.get(I16, byteOffset));
      case BOOL -> segment.get(ValueLayout.JAVA_BYTE, byteOffset) != 0 ? 1.0 : 0.0;
    };
  }

  /** Writes {@code value}, rounded to this type, at {@code byteOffset} of a host segment ({@link #BOOL}: value != 0). */
  public void write(MemorySegment segment, long byteOffset, double value) {
    switch (this) {
      case FLOAT64 -> segment.set(F64, byteOffset, value);
      case FLOAT32 -> segment.set(F32, byteOffset, (float) value);
      case FLOAT16 -> segment.set(I16, byteOffset, Float.floatToFloat16((float) value));
      case BFLOAT16 -> segment.set(I16, byteOffset, floatToBfloat16((float) value));
      case BOOL -> segment.set(ValueLayout.JAVA_BYTE, byteOffset, (byte) (value != 0 ? 1 : 0));
    }
  }

  /** Rounds a value to this type's precision and returns it as a double (identity for FLOAT64). */
  public double round(double value) {
    return switch (this) {
      case FLOAT64 -> value;
      case FLOAT32 -> (float) value;
      case FLOAT16 -> Float.float16ToFloat(Float.floatToFloat16((float) value));
      case BFLOAT16 -> bfloat16ToFloat(floatToBfloat16((float) value));
      case BOOL -> value != 0 ? 1 : 0;
    };
  }

  /** The float whose upper 16 bits are {@code bits}. */
  public static float bfloat16ToFloat(short bits) {
    return Float.intBitsToFloat((bits & 0xFFFF) << 16);
  }

  /** Rounds a float to bfloat16, nearest even; NaN stays NaN. */
  public static short floatToBfloat16(float value) {
    int bits = Float.floatToRawIntBits(value);
    if (Float.isNaN(value)) {
      return (short) ((bits >>> 16) | 0x0040);
    }
    int rounding = 0x7FFF + ((bits >>> 16) & 1);
    return (short) ((bits + rounding) >>> 16);
  }
}
