package dev.sdpa4j.cuda;

import dev.sdpa4j.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Packs strided host tensors into row-major buffers and back: the host side of the convenience path that runs a
 * device provider on host tensors (copy in, run, copy out).
 */
public final class HostStaging {
  private HostStaging() {}

  /** Bytes of a row-major copy of {@code t}. */
  public static long packedBytes(Tensor t) {
    return Math.multiplyExact(t.elementCount(), (long) t.dtype().byteSize());
  }

  /**
   * A row-major native copy of host tensor {@code t} allocated in {@code arena}, or {@code t}'s own segment when it
   * is already row-major and native.
   */
  public static MemorySegment pack(Tensor t, Arena arena) {
    MemorySegment src = t.hostSegment();
    long bytes = packedBytes(t);
    if (t.isContiguous() && src.isNative()) {
      return src.asSlice(0, bytes);
    }
    MemorySegment dst = arena.allocate(bytes, 16);
    transfer(t, src, dst, true);
    return dst;
  }

  /** Writes the row-major buffer {@code packed} into host tensor {@code t}, following its strides. */
  public static void unpack(MemorySegment packed, Tensor t) {
    MemorySegment dst = t.hostSegment();
    if (t.isContiguous()) {
      MemorySegment.copy(packed, 0, dst, 0, packedBytes(t));
      return;
    }
    transfer(t, dst, packed, false);
  }

  /** Copies between the strided view {@code t} over {@code strided} and the row-major {@code packed}. */
  private static void transfer(Tensor t, MemorySegment strided, MemorySegment packed, boolean toPacked) {
    int rank = t.rank();
    long[] shape = new long[4];
    long[] stride = new long[4];
    for (int i = 0; i < 4; i++) {
      int d = i - (4 - rank);
      shape[i] = d < 0 ? 1 : t.size(d);
      stride[i] = d < 0 ? 0 : t.stride(d);
    }
    int es = t.dtype().byteSize();
    boolean rows = stride[3] == 1;
    long rowBytes = shape[3] * es;
    long p = 0;
    for (long a = 0; a < shape[0]; a++) {
      for (long b = 0; b < shape[1]; b++) {
        for (long c = 0; c < shape[2]; c++) {
          long base = (a * stride[0] + b * stride[1] + c * stride[2]) * es;
          if (rows) {
            if (toPacked) {
              MemorySegment.copy(strided, base, packed, p, rowBytes);
            } else {
              MemorySegment.copy(packed, p, strided, base, rowBytes);
            }
            p += rowBytes;
          } else {
            for (long d = 0; d < shape[3]; d++) {
              long off = base + d * stride[3] * es;
              if (toPacked) {
                MemorySegment.copy(strided, off, packed, p, es);
              } else {
                MemorySegment.copy(packed, p, strided, off, es);
              }
              p += es;
            }
          }
        }
      }
    }
  }
}
