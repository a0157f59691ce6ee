package dev.sdpa4j.provider.math;

import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.AttentionShape;
import dev.sdpa4j.CausalMode;
import dev.sdpa4j.DType;
import dev.sdpa4j.Dropout;
import dev.sdpa4j.DropoutSeed;
import dev.sdpa4j.MaskKind;
import dev.sdpa4j.Tensor;
import java.lang.foreign.MemorySegment;

/**
 * A forward request unpacked for the kernels: sizes as ints, each tensor's segment and strides, the masking rules
 * and the dropout parameters. Immutable and shared by the tasks of one call.
 */
final class Problem {
  final DType dtype;
  final int batch;
  final int hq;
  final int hkv;
  final int group;
  final int lq;
  final int lk;
  final int e;
  final int ev;
  final double scale;
  final boolean causal;
  /** Key {@code j} is allowed for query {@code i} iff {@code j <= i + shift} (when causal). */
  final long shift;
  final MaskKind maskKind;
  final View q;
  final View k;
  final View v;
  final View out;
  final View mask;
  final MemorySegment lseSegment;
  final long[] lseStrides;
  final DropoutSeed seed;
  /** The request's dropout mask; its keep scale is 1 without dropout. */
  final Dropout.Mask dropout;
  /** False when some tensor lives in a thread-confined arena: then only the calling thread may touch it. */
  final boolean shareable;

  /** A thread that is never started: a confined segment is accessible by its owner only, so not by this one. */
  private static final Thread STRANGER = new Thread(() -> { });

  /** A tensor's segment, dtype and four element strides (rank-3 tensors are not Views). */
  record View(MemorySegment segment, DType type, long s0, long s1, long s2, long s3) {
    static View of(Tensor t) {
      return new View(t.hostSegment(), t.dtype(), t.stride(0), t.stride(1), t.stride(2), t.stride(3));
    }

    /** Element offset of {@code (a, b, c, 0)}. */
    long row(long a, long b, long c) {
      return a * s0 + b * s1 + c * s2;
    }
  }

  Problem(AttentionRequest r) {
    AttentionShape s = r.shape();
    this.dtype = r.dtype();
    this.batch = Math.toIntExact(s.batch());
    this.hq = Math.toIntExact(s.queryHeads());
    this.hkv = Math.toIntExact(s.kvHeads());
    this.group = hq / hkv;
    this.lq = Math.toIntExact(s.queryLength());
    this.lk = Math.toIntExact(s.keyLength());
    this.e = Math.toIntExact(s.headDim());
    this.ev = Math.toIntExact(s.valueHeadDim());
    this.scale = r.scale();
    this.causal = r.causal() != CausalMode.NONE;
    this.shift = r.causal() == CausalMode.BOTTOM_RIGHT ? (long) lk - lq : 0;
    this.maskKind = r.maskKind();
    this.q = View.of(r.query());
    this.k = View.of(r.key());
    this.v = View.of(r.value());
    this.out = View.of(r.output());
    this.mask = r.mask().map(View::of).orElse(null);
    Tensor lse = r.lse().orElse(null);
    this.lseSegment = lse == null ? null : lse.hostSegment();
    this.lseStrides = lse == null ? null : lse.strides();
    this.seed = r.dropoutSeed().orElse(null);
    this.dropout = r.dropoutMask();
    boolean all = true;
    for (Tensor t : new Tensor[] {r.query(), r.key(), r.value(), r.output(), lse, r.mask().orElse(null)}) {
      all &= t == null || shareable(t);
    }
    this.shareable = all;
  }

  /** True when threads other than the caller may access {@code t}'s memory. */
  static boolean shareable(Tensor t) {
    return t.hostSegment().isAccessibleBy(STRANGER);
  }

  /** Exclusive bound of the keys query {@code i} may see by causality: {@code min(Lk, i + shift + 1)}, at least 0. */
  int keyLimit(long i) {
    if (!causal) {
      return lk;
    }
    return (int) Math.max(0, Math.min(lk, i + shift + 1));
  }

  /** True when a boolean or additive mask tensor is present. */
  boolean hasTensorMask() {
    return mask != null;
  }

  /**
   * What the mask tensor adds to score {@code (b, h, i, j)}: 0 or {@code -inf} for a boolean mask; the value for an
   * additive mask, where an infinity of either sign masks ({@code -inf}).
   */
  double bias(long b, long h, long i, long j) {
    double m = mask.type().read(mask.segment(), (mask.row(b, h, i) + j * mask.s3()) * mask.type().byteSize());
    if (maskKind == MaskKind.BOOLEAN) {
      return m != 0 ? 0 : Double.NEGATIVE_INFINITY;
    }
    return Double.isInfinite(m) ? Double.NEGATIVE_INFINITY : m;
  }

  /** The key/value head that query head {@code h} reads. */
  int kvHead(int h) {
    return h / group;
  }

  /** Writes the LSE of row {@code (b, h, i)}, when the request has an LSE output. */
  void writeLse(long b, long h, long i, float value) {
    if (lseSegment != null) {
      DType.FLOAT32.write(lseSegment, (b * lseStrides[0] + h * lseStrides[1] + i * lseStrides[2]) * 4, value);
    }
  }
}
