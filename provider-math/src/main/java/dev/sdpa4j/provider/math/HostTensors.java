package dev.sdpa4j.provider.math;

import dev.sdpa4j.Tensor;
import java.lang.foreign.MemorySegment;

/** Whole-tensor reads and writes of host tensors through their strides, for the reference. */
final class HostTensors {
  private HostTensors() {}

  /** The values of a rank-4 host tensor, row-major (contiguous) in its logical shape. */
  static double[] read4(Tensor t) {
    MemorySegment seg = t.hostSegment();
    long s0 = t.stride(0), s1 = t.stride(1), s2 = t.stride(2), s3 = t.stride(3);
    int n0 = (int) t.size(0), n1 = (int) t.size(1), n2 = (int) t.size(2), n3 = (int) t.size(3);
    int bytes = t.dtype().byteSize();
    double[] out = new double[Math.toIntExact(t.elementCount())];
    int k = 0;
    for (int a = 0; a < n0; a++) {
      for (int b = 0; b < n1; b++) {
        for (int c = 0; c < n2; c++) {
          long base = a * s0 + b * s1 + c * s2;
          for (int d = 0; d < n3; d++) {
            out[k++] = t.dtype().read(seg, (base + d * s3) * bytes);
          }
        }
      }
    }
    return out;
  }

  /** Reads element {@code (a, b, c, d)} of a rank-4 host tensor. */
  static double get4(Tensor t, MemorySegment seg, long a, long b, long c, long d) {
    long off = a * t.stride(0) + b * t.stride(1) + c * t.stride(2) + d * t.stride(3);
    return t.dtype().read(seg, off * t.dtype().byteSize());
  }
}
