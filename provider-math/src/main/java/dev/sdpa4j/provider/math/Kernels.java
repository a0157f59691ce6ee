package dev.sdpa4j.provider.math;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The float32 building blocks of the forward and backward kernels, on the preferred vector species: register-blocked
 * matrix products (4 × 4 vectors of accumulators, outer-product form: four vector loads and four broadcasts feed
 * sixteen FMAs), the masking of a transposed score tile, and a vectorised {@code 2^x}. Score tiles are transposed,
 * {@code st[key][row]}, so that per-row softmax statistics are lane-wise over rows, with no horizontal reductions.
 *
 * <p>Cache blocking: the product's depth is taken in slices of 64 and the accumulate's columns in slices of four
 * vectors, so that the operand re-read for every group of four keys or rows (16 KiB) stays in L1. Where the forward
 * calls them, the inner loops index arrays with constant strides only, so that the JIT hoists the bounds checks.
 */
final class Kernels {
  static final VectorSpecies<Float> SP = FloatVector.SPECIES_PREFERRED;
  static final int VL = SP.length();
  /** Query rows per block: the width of a transposed score tile, four vectors. */
  static final int BLOCK_ROWS = 4 * VL;
  /** {@code log2(e)}: scores are kept in the base-2 domain. */
  static final float LOG2E = (float) (1 / Math.log(2));
  /** Depth (head dim) slice of {@link #transposedProduct}: 64 rows × 64 floats, 16 KiB, stay in L1. */
  private static final int DEPTH_SLICE = 64;
  /**
   * Steps per inner-loop iteration of {@link #groupedProduct} (depth) and {@link #accumulateSlices} (keys): their
   * operands are padded with zeros to a multiple of it.
   */
  static final int UNROLL = 2;
  /** Columns of one slice of {@link #accumulateSlices}: four vectors. */
  static final int SLICE = 4 * VL;

  private static final float MAGIC = 12582912f; // 1.5 * 2^23: adding it rounds to an integer
  // 2^f on [-1/2, 1/2] as 1 + f·(C1 + f·(C2 + ... + f·C5)): a degree-5 fit of the relative error (Lawson's
  // iteration) with p(0) = 1 exact; evaluated in float32 with FMAs its relative error stays below 1.7e-7, less than
  // the degree-6 Taylor polynomial's 2.2e-7, with one FMA fewer
  private static final FloatVector C5 = FloatVector.broadcast(SP, 0.0013264711f);
  private static final FloatVector C4 = FloatVector.broadcast(SP, 0.009671507f);
  private static final FloatVector C3 = FloatVector.broadcast(SP, 0.055507336f);
  private static final FloatVector C2 = FloatVector.broadcast(SP, 0.24022242f);
  private static final FloatVector C1 = FloatVector.broadcast(SP, 0.693147f);
  private static final FloatVector ONE = FloatVector.broadcast(SP, 1f);
  private static final FloatVector LANE_INDEX;

  static {
    float[] iota = new float[VL];
    for (int x = 0; x < VL; x++) {
      iota[x] = x;
    }
    LANE_INDEX = FloatVector.fromArray(SP, iota, 0);
  }

  private Kernels() {}

  /** {@code n} rounded up to a multiple of the vector length. */
  static int padded(int n) {
    return (n + VL - 1) / VL * VL;
  }

  /** {@code n} rounded up to a multiple of {@link #UNROLL}: the depth or key count the unrolled kernels step over. */
  static int unrolled(int n) {
    return (n + UNROLL - 1) / UNROLL * UNROLL;
  }

  /**
   * The transposed product {@code st[jj * BLOCK_ROWS + r] = Σ_c at[atOff + c * BLOCK_ROWS + r] * b[jj * bStride + c]}
   * for keys {@code jj < nk} rounded up to 4 (rows of {@code b} up to there must exist) and rows
   * {@code r < rowVectors * VL}. ({@code at}'s stride is the constant {@link #BLOCK_ROWS}, so that the JIT can hoist
   * the bounds checks out of the inner loop.)
   */
  static void transposedProduct(float[] at, int atOff, int rowVectors, float[] b, int bStride, int depth,
      int nk, float[] st) {
    if (rowVectors != 4) {
      for (int jj = 0; jj < nk; jj += 4) {
        narrowProduct(at, atOff, rowVectors, b, jj * bStride, bStride, depth, jj, st);
      }
      return;
    }
    // the depth in slices of DEPTH_SLICE, so that the slice of rows read for every four keys stays in L1
    for (int c0 = 0; c0 < depth; c0 += DEPTH_SLICE) {
      wideProduct(at, atOff, b, bStride, c0, Math.min(depth, c0 + DEPTH_SLICE), c0 > 0, nk, st);
    }
  }

  /**
   * {@link #transposedProduct} for four row vectors over depth {@code [cFrom, cTo)}, added to {@code st} when
   * {@code add}, stored otherwise.
   */
  private static void wideProduct(float[] at, int atOff, float[] b, int bStride, int cFrom, int cTo,
      boolean add, int nk, float[] st) {
    for (int jj = 0; jj < nk; jj += 4) {
      int k0 = jj * bStride;
      int k1 = k0 + bStride;
      int k2 = k1 + bStride;
      int k3 = k2 + bStride;
      int s0 = jj * BLOCK_ROWS;
      FloatVector a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33;
      if (add) {
        a00 = FloatVector.fromArray(SP, st, s0);
        a01 = FloatVector.fromArray(SP, st, s0 + VL);
        a02 = FloatVector.fromArray(SP, st, s0 + 2 * VL);
        a03 = FloatVector.fromArray(SP, st, s0 + 3 * VL);
        a10 = FloatVector.fromArray(SP, st, s0 + BLOCK_ROWS);
        a11 = FloatVector.fromArray(SP, st, s0 + BLOCK_ROWS + VL);
        a12 = FloatVector.fromArray(SP, st, s0 + BLOCK_ROWS + 2 * VL);
        a13 = FloatVector.fromArray(SP, st, s0 + BLOCK_ROWS + 3 * VL);
        a20 = FloatVector.fromArray(SP, st, s0 + 2 * BLOCK_ROWS);
        a21 = FloatVector.fromArray(SP, st, s0 + 2 * BLOCK_ROWS + VL);
        a22 = FloatVector.fromArray(SP, st, s0 + 2 * BLOCK_ROWS + 2 * VL);
        a23 = FloatVector.fromArray(SP, st, s0 + 2 * BLOCK_ROWS + 3 * VL);
        a30 = FloatVector.fromArray(SP, st, s0 + 3 * BLOCK_ROWS);
        a31 = FloatVector.fromArray(SP, st, s0 + 3 * BLOCK_ROWS + VL);
        a32 = FloatVector.fromArray(SP, st, s0 + 3 * BLOCK_ROWS + 2 * VL);
        a33 = FloatVector.fromArray(SP, st, s0 + 3 * BLOCK_ROWS + 3 * VL);
      } else {
        a00 = FloatVector.zero(SP);
        a01 = a00;
        a02 = a00;
        a03 = a00;
        a10 = a00;
        a11 = a00;
        a12 = a00;
        a13 = a00;
        a20 = a00;
        a21 = a00;
        a22 = a00;
        a23 = a00;
        a30 = a00;
        a31 = a00;
        a32 = a00;
        a33 = a00;
      }
      for (int c = cFrom; c < cTo; c++) {
        int qo = atOff + c * BLOCK_ROWS;
        FloatVector q0 = FloatVector.fromArray(SP, at, qo);
        FloatVector q1 = FloatVector.fromArray(SP, at, qo + VL);
        FloatVector q2 = FloatVector.fromArray(SP, at, qo + 2 * VL);
        FloatVector q3 = FloatVector.fromArray(SP, at, qo + 3 * VL);
        FloatVector b0 = FloatVector.broadcast(SP, b[k0 + c]);
        a00 = q0.fma(b0, a00);
        a01 = q1.fma(b0, a01);
        a02 = q2.fma(b0, a02);
        a03 = q3.fma(b0, a03);
        FloatVector b1 = FloatVector.broadcast(SP, b[k1 + c]);
        a10 = q0.fma(b1, a10);
        a11 = q1.fma(b1, a11);
        a12 = q2.fma(b1, a12);
        a13 = q3.fma(b1, a13);
        FloatVector b2 = FloatVector.broadcast(SP, b[k2 + c]);
        a20 = q0.fma(b2, a20);
        a21 = q1.fma(b2, a21);
        a22 = q2.fma(b2, a22);
        a23 = q3.fma(b2, a23);
        FloatVector b3 = FloatVector.broadcast(SP, b[k3 + c]);
        a30 = q0.fma(b3, a30);
        a31 = q1.fma(b3, a31);
        a32 = q2.fma(b3, a32);
        a33 = q3.fma(b3, a33);
      }
      a00.intoArray(st, s0);
      a01.intoArray(st, s0 + VL);
      a02.intoArray(st, s0 + 2 * VL);
      a03.intoArray(st, s0 + 3 * VL);
      a10.intoArray(st, s0 + BLOCK_ROWS);
      a11.intoArray(st, s0 + BLOCK_ROWS + VL);
      a12.intoArray(st, s0 + BLOCK_ROWS + 2 * VL);
      a13.intoArray(st, s0 + BLOCK_ROWS + 3 * VL);
      a20.intoArray(st, s0 + 2 * BLOCK_ROWS);
      a21.intoArray(st, s0 + 2 * BLOCK_ROWS + VL);
      a22.intoArray(st, s0 + 2 * BLOCK_ROWS + 2 * VL);
      a23.intoArray(st, s0 + 2 * BLOCK_ROWS + 3 * VL);
      a30.intoArray(st, s0 + 3 * BLOCK_ROWS);
      a31.intoArray(st, s0 + 3 * BLOCK_ROWS + VL);
      a32.intoArray(st, s0 + 3 * BLOCK_ROWS + 2 * VL);
      a33.intoArray(st, s0 + 3 * BLOCK_ROWS + 3 * VL);
    }
  }

  /**
   * {@link #transposedProduct} for four row vectors with the keys packed in groups of four, {@code kg[jj * depth +
   * c * 4 + k]} = element {@code c} of key {@code jj + k} ({@code jj} a multiple of 4): one index feeds the four
   * broadcasts of a step instead of four row indices, which leaves the JIT's register allocator more room in the
   * inner loop. {@code depth} must be a multiple of {@link #UNROLL} (callers pad {@code at} and {@code kg} with
   * zeros): the inner loop takes two depth steps per iteration, which halves its index and loop overhead (measured
   * here: about 30% faster at E = 128, a few percent at E = 64; see PERF_NOTES.md).
   */
  static void groupedProduct(float[] at, int atOff, float[] kg, int depth, int nk, float[] st) {
    for (int c0 = 0; c0 < depth; c0 += DEPTH_SLICE) {
      groupedWideProduct(at, atOff, kg, depth, c0, Math.min(depth, c0 + DEPTH_SLICE), c0 > 0, nk, st);
    }
  }

  /**
   * {@link #groupedProduct} over depth {@code [cFrom, cTo)} (multiples of {@link #UNROLL}), added to {@code st} when
   * {@code add}.
   */
  private static void groupedWideProduct(float[] at, int atOff, float[] kg, int depth, int cFrom, int cTo,
      boolean add, int nk, float[] st) {
    int qEnd = atOff + cTo * BLOCK_ROWS;
    for (int jj = 0; jj < nk; jj += 4) {
      int s0 = jj * BLOCK_ROWS;
      FloatVector a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33;
      if (add) {
        a00 = FloatVector.fromArray(SP, st, s0);
        a01 = FloatVector.fromArray(SP, st, s0 + VL);
        a02 = FloatVector.fromArray(SP, st, s0 + 2 * VL);
        a03 = FloatVector.fromArray(SP, st, s0 + 3 * VL);
        a10 = FloatVector.fromArray(SP, st, s0 + BLOCK_ROWS);
        a11 = FloatVector.fromArray(SP, st, s0 + BLOCK_ROWS + VL);
        a12 = FloatVector.fromArray(SP, st, s0 + BLOCK_ROWS + 2 * VL);
        a13 = FloatVector.fromArray(SP, st, s0 + BLOCK_ROWS + 3 * VL);
        a20 = FloatVector.fromArray(SP, st, s0 + 2 * BLOCK_ROWS);
        a21 = FloatVector.fromArray(SP, st, s0 + 2 * BLOCK_ROWS + VL);
        a22 = FloatVector.fromArray(SP, st, s0 + 2 * BLOCK_ROWS + 2 * VL);
        a23 = FloatVector.fromArray(SP, st, s0 + 2 * BLOCK_ROWS + 3 * VL);
        a30 = FloatVector.fromArray(SP, st, s0 + 3 * BLOCK_ROWS);
        a31 = FloatVector.fromArray(SP, st, s0 + 3 * BLOCK_ROWS + VL);
        a32 = FloatVector.fromArray(SP, st, s0 + 3 * BLOCK_ROWS + 2 * VL);
        a33 = FloatVector.fromArray(SP, st, s0 + 3 * BLOCK_ROWS + 3 * VL);
      } else {
        a00 = FloatVector.zero(SP);
        a01 = a00;
        a02 = a00;
        a03 = a00;
        a10 = a00;
        a11 = a00;
        a12 = a00;
        a13 = a00;
        a20 = a00;
        a21 = a00;
        a22 = a00;
        a23 = a00;
        a30 = a00;
        a31 = a00;
        a32 = a00;
        a33 = a00;
      }
      // qo walks the depth rows of `at`, ko the matching groups of four key elements: two depth steps per iteration
      for (int qo = atOff + cFrom * BLOCK_ROWS, ko = jj * depth + cFrom * 4; qo < qEnd;
          qo += UNROLL * BLOCK_ROWS, ko += UNROLL * 4) {
        FloatVector q0 = FloatVector.fromArray(SP, at, qo);
        FloatVector q1 = FloatVector.fromArray(SP, at, qo + VL);
        FloatVector q2 = FloatVector.fromArray(SP, at, qo + 2 * VL);
        FloatVector q3 = FloatVector.fromArray(SP, at, qo + 3 * VL);
        FloatVector b0 = FloatVector.broadcast(SP, kg[ko]);
        a00 = q0.fma(b0, a00);
        a01 = q1.fma(b0, a01);
        a02 = q2.fma(b0, a02);
        a03 = q3.fma(b0, a03);
        FloatVector b1 = FloatVector.broadcast(SP, kg[ko + 1]);
        a10 = q0.fma(b1, a10);
        a11 = q1.fma(b1, a11);
        a12 = q2.fma(b1, a12);
        a13 = q3.fma(b1, a13);
        FloatVector b2 = FloatVector.broadcast(SP, kg[ko + 2]);
        a20 = q0.fma(b2, a20);
        a21 = q1.fma(b2, a21);
        a22 = q2.fma(b2, a22);
        a23 = q3.fma(b2, a23);
        FloatVector b3 = FloatVector.broadcast(SP, kg[ko + 3]);
        a30 = q0.fma(b3, a30);
        a31 = q1.fma(b3, a31);
        a32 = q2.fma(b3, a32);
        a33 = q3.fma(b3, a33);
        q0 = FloatVector.fromArray(SP, at, qo + BLOCK_ROWS);
        q1 = FloatVector.fromArray(SP, at, qo + BLOCK_ROWS + VL);
        q2 = FloatVector.fromArray(SP, at, qo + BLOCK_ROWS + 2 * VL);
        q3 = FloatVector.fromArray(SP, at, qo + BLOCK_ROWS + 3 * VL);
        b0 = FloatVector.broadcast(SP, kg[ko + 4]);
        a00 = q0.fma(b0, a00);
        a01 = q1.fma(b0, a01);
        a02 = q2.fma(b0, a02);
        a03 = q3.fma(b0, a03);
        b1 = FloatVector.broadcast(SP, kg[ko + 5]);
        a10 = q0.fma(b1, a10);
        a11 = q1.fma(b1, a11);
        a12 = q2.fma(b1, a12);
        a13 = q3.fma(b1, a13);
        b2 = FloatVector.broadcast(SP, kg[ko + 6]);
        a20 = q0.fma(b2, a20);
        a21 = q1.fma(b2, a21);
        a22 = q2.fma(b2, a22);
        a23 = q3.fma(b2, a23);
        b3 = FloatVector.broadcast(SP, kg[ko + 7]);
        a30 = q0.fma(b3, a30);
        a31 = q1.fma(b3, a31);
        a32 = q2.fma(b3, a32);
        a33 = q3.fma(b3, a33);
      }
      a00.intoArray(st, s0);
      a01.intoArray(st, s0 + VL);
      a02.intoArray(st, s0 + 2 * VL);
      a03.intoArray(st, s0 + 3 * VL);
      a10.intoArray(st, s0 + BLOCK_ROWS);
      a11.intoArray(st, s0 + BLOCK_ROWS + VL);
      a12.intoArray(st, s0 + BLOCK_ROWS + 2 * VL);
      a13.intoArray(st, s0 + BLOCK_ROWS + 3 * VL);
      a20.intoArray(st, s0 + 2 * BLOCK_ROWS);
      a21.intoArray(st, s0 + 2 * BLOCK_ROWS + VL);
      a22.intoArray(st, s0 + 2 * BLOCK_ROWS + 2 * VL);
      a23.intoArray(st, s0 + 2 * BLOCK_ROWS + 3 * VL);
      a30.intoArray(st, s0 + 3 * BLOCK_ROWS);
      a31.intoArray(st, s0 + 3 * BLOCK_ROWS + VL);
      a32.intoArray(st, s0 + 3 * BLOCK_ROWS + 2 * VL);
      a33.intoArray(st, s0 + 3 * BLOCK_ROWS + 3 * VL);
    }
  }

  /** {@link #transposedProduct} for four keys from {@code jj} and fewer than four row vectors, one at a time. */
  private static void narrowProduct(float[] at, int atOff, int rowVectors, float[] b, int k0, int bStride,
      int depth, int jj, float[] st) {
    int k1 = k0 + bStride;
    int k2 = k1 + bStride;
    int k3 = k2 + bStride;
    for (int rv = 0; rv < rowVectors; rv++) {
      FloatVector a0 = FloatVector.zero(SP), a1 = a0, a2 = a0, a3 = a0;
      for (int c = 0; c < depth; c++) {
        FloatVector qv = FloatVector.fromArray(SP, at, atOff + c * BLOCK_ROWS + rv * VL);
        a0 = qv.fma(FloatVector.broadcast(SP, b[k0 + c]), a0);
        a1 = qv.fma(FloatVector.broadcast(SP, b[k1 + c]), a1);
        a2 = qv.fma(FloatVector.broadcast(SP, b[k2 + c]), a2);
        a3 = qv.fma(FloatVector.broadcast(SP, b[k3 + c]), a3);
      }
      int s0 = jj * BLOCK_ROWS + rv * VL;
      a0.intoArray(st, s0);
      a1.intoArray(st, s0 + BLOCK_ROWS);
      a2.intoArray(st, s0 + 2 * BLOCK_ROWS);
      a3.intoArray(st, s0 + 3 * BLOCK_ROWS);
    }
  }

  /**
   * Scores of a few rows by dot products along the head dim, for decoding, where a tile of row vectors would
   * waste lanes: {@code st[jj * BLOCK_ROWS + r] = Σ_c q[r * qStride + c] * b[jj * bStride + c]} for rows
   * {@code r < rows} and keys {@code jj < nk}.
   */
  static void rowDots(float[] q, int qStride, int rows, float[] b, int bStride, int depth, int nk, float[] st) {
    int vecEnd = depth / VL * VL;
    for (int r = 0; r < rows; r++) {
      int qo = r * qStride;
      for (int jj = 0; jj < nk; jj++) {
        int ko = jj * bStride;
        FloatVector a0 = FloatVector.zero(SP);
        FloatVector a1 = a0;
        int c = 0;
        for (; c + 2 * VL <= vecEnd; c += 2 * VL) {
          a0 = FloatVector.fromArray(SP, q, qo + c).fma(FloatVector.fromArray(SP, b, ko + c), a0);
          a1 = FloatVector.fromArray(SP, q, qo + c + VL).fma(FloatVector.fromArray(SP, b, ko + c + VL), a1);
        }
        if (c < vecEnd) {
          a0 = FloatVector.fromArray(SP, q, qo + c).fma(FloatVector.fromArray(SP, b, ko + c), a0);
          c += VL;
        }
        float sum = a0.add(a1).reduceLanes(VectorOperators.ADD);
        for (; c < depth; c++) {
          sum += q[qo + c] * b[ko + c];
        }
        st[jj * BLOCK_ROWS + r] = sum;
      }
    }
  }

  /**
   * One row of {@link #accumulate}: {@code out[outOff..] = alpha * out[outOff..] + Σ_{b < nb} coef[coefOff + b * cb]
   * * x[b * xStride..]} over {@code width} elements (a multiple of VL).
   */
  static void accumulateRow(float[] coef, int coefOff, int cb, int nb, float[] x, int xStride, float[] out,
      int outOff, int width, float alpha) {
    for (int c = 0; c < width; c += VL) {
      FloatVector acc = FloatVector.fromArray(SP, out, outOff + c).mul(alpha);
      for (int bb = 0; bb < nb; bb++) {
        acc = FloatVector.fromArray(SP, x, bb * xStride + c).fma(FloatVector.broadcast(SP, coef[coefOff + bb * cb]), acc);
      }
      acc.intoArray(out, outOff + c);
    }
  }

  /**
   * The product-accumulate {@code out[a] = scale[a] * out[a] + Σ_{b < nb} coef[a * ca + b * cb] * x[b]} over rows
   * {@code a < na} (a multiple of 4) of {@code width} elements (a multiple of VL), where {@code out[a]} starts at
   * {@code outOff + a * outStride} and {@code x[b]} at {@code b * xStride}. {@code scale} is read from
   * {@code alpha[alphaOff + a]}, or is 1 when {@code alpha} is null.
   */
  static void accumulate(float[] coef, int coefOff, int ca, int cb, int na, int nb, float[] x, int xStride,
      float[] out, int outOff, int outStride, int width, float[] alpha, int alphaOff) {
    // column slices outermost: the slice of x (nb × 4 vectors) stays in L1 while every row group reads it
    int wide = width / (4 * VL) * (4 * VL);
    for (int c = 0; c < wide; c += 4 * VL) {
      for (int aq = 0; aq < na; aq += 4) {
        accumulateWide(coef, coefOff + aq * ca, ca, cb, nb, x, xStride, out, outOff + aq * outStride, outStride, c,
            alpha, alphaOff + aq);
      }
    }
    if (wide < width) {
      for (int aq = 0; aq < na; aq += 4) {
        narrowAccumulate(coef, coefOff + aq * ca, ca, cb, nb, x, xStride, out, outOff + aq * outStride, outStride,
            wide, width, alpha, alphaOff + aq);
      }
    }
  }

  /**
   * The forward's {@code P·V} step over the full column slices: for rows {@code a < na} (a multiple of 4) and columns
   * {@code [0, slices * SLICE)}, {@code out[a] = alpha[alphaOff + a] * out[a] + Σ_{b < nb} st[b * BLOCK_ROWS + a]
   * * x[b]}, where {@code out[a]} starts at {@code outOff + a * outStride} and {@code x} is in slices: column
   * {@code s * SLICE + y} of key {@code b} at {@code xOff + (s * nbStride + b) * SLICE + y}. {@code nb} must be a
   * multiple of {@link #UNROLL} (two keys per inner-loop iteration; callers pad {@code st} and {@code x} with a zero
   * key). Every inner-loop stride is a constant, so the JIT hoists the bounds checks.
   */
  static void accumulateSlices(float[] st, int na, int nb, float[] x, int xOff, int nbStride, int slices,
      float[] out, int outOff, int outStride, float[] alpha, int alphaOff) {
    for (int sl = 0; sl < slices; sl++) {
      sliceAccumulate(st, na, nb, x, xOff + sl * nbStride * SLICE, out, outOff + sl * SLICE, outStride, alpha,
          alphaOff);
    }
  }

  /**
   * {@link #accumulateSlices} for one slice from {@code xOff}, rows {@code [a0, a0 + 4)} at a time. (The loop over the
   * rows is in this method, not around a call, so that the JIT sets up the inner loop once per slice: measured here,
   * 6-10% faster.)
   */
  private static void sliceAccumulate(float[] st, int na, int nb, float[] x, int xOff, float[] out, int outOff,
      int outStride, float[] alpha, int alphaOff) {
    for (int a0 = 0; a0 < na; a0 += 4) {
      int o0 = outOff + a0 * outStride;
      int alphaAt = alphaOff + a0;
      FloatVector al0 = FloatVector.broadcast(SP, alpha[alphaAt]);
      FloatVector al1 = FloatVector.broadcast(SP, alpha[alphaAt + 1]);
      FloatVector al2 = FloatVector.broadcast(SP, alpha[alphaAt + 2]);
      FloatVector al3 = FloatVector.broadcast(SP, alpha[alphaAt + 3]);
      int o1 = o0 + outStride;
      int o2 = o1 + outStride;
      int o3 = o2 + outStride;
      FloatVector a00 = FloatVector.fromArray(SP, out, o0).mul(al0);
      FloatVector a01 = FloatVector.fromArray(SP, out, o0 + VL).mul(al0);
      FloatVector a02 = FloatVector.fromArray(SP, out, o0 + 2 * VL).mul(al0);
      FloatVector a03 = FloatVector.fromArray(SP, out, o0 + 3 * VL).mul(al0);
      FloatVector a10 = FloatVector.fromArray(SP, out, o1).mul(al1);
      FloatVector a11 = FloatVector.fromArray(SP, out, o1 + VL).mul(al1);
      FloatVector a12 = FloatVector.fromArray(SP, out, o1 + 2 * VL).mul(al1);
      FloatVector a13 = FloatVector.fromArray(SP, out, o1 + 3 * VL).mul(al1);
      FloatVector a20 = FloatVector.fromArray(SP, out, o2).mul(al2);
      FloatVector a21 = FloatVector.fromArray(SP, out, o2 + VL).mul(al2);
      FloatVector a22 = FloatVector.fromArray(SP, out, o2 + 2 * VL).mul(al2);
      FloatVector a23 = FloatVector.fromArray(SP, out, o2 + 3 * VL).mul(al2);
      FloatVector a30 = FloatVector.fromArray(SP, out, o3).mul(al3);
      FloatVector a31 = FloatVector.fromArray(SP, out, o3 + VL).mul(al3);
      FloatVector a32 = FloatVector.fromArray(SP, out, o3 + 2 * VL).mul(al3);
      FloatVector a33 = FloatVector.fromArray(SP, out, o3 + 3 * VL).mul(al3);
      // xo walks the keys' slice rows, co their probabilities: two keys per iteration
      int xEnd = xOff + nb * SLICE;
      for (int xo = xOff, co = a0; xo < xEnd; xo += UNROLL * SLICE, co += UNROLL * BLOCK_ROWS) {
        FloatVector x0 = FloatVector.fromArray(SP, x, xo);
        FloatVector x1 = FloatVector.fromArray(SP, x, xo + VL);
        FloatVector x2 = FloatVector.fromArray(SP, x, xo + 2 * VL);
        FloatVector x3 = FloatVector.fromArray(SP, x, xo + 3 * VL);
        FloatVector p0 = FloatVector.broadcast(SP, st[co]);
        a00 = x0.fma(p0, a00);
        a01 = x1.fma(p0, a01);
        a02 = x2.fma(p0, a02);
        a03 = x3.fma(p0, a03);
        FloatVector p1 = FloatVector.broadcast(SP, st[co + 1]);
        a10 = x0.fma(p1, a10);
        a11 = x1.fma(p1, a11);
        a12 = x2.fma(p1, a12);
        a13 = x3.fma(p1, a13);
        FloatVector p2 = FloatVector.broadcast(SP, st[co + 2]);
        a20 = x0.fma(p2, a20);
        a21 = x1.fma(p2, a21);
        a22 = x2.fma(p2, a22);
        a23 = x3.fma(p2, a23);
        FloatVector p3 = FloatVector.broadcast(SP, st[co + 3]);
        a30 = x0.fma(p3, a30);
        a31 = x1.fma(p3, a31);
        a32 = x2.fma(p3, a32);
        a33 = x3.fma(p3, a33);
        x0 = FloatVector.fromArray(SP, x, xo + SLICE);
        x1 = FloatVector.fromArray(SP, x, xo + SLICE + VL);
        x2 = FloatVector.fromArray(SP, x, xo + SLICE + 2 * VL);
        x3 = FloatVector.fromArray(SP, x, xo + SLICE + 3 * VL);
        p0 = FloatVector.broadcast(SP, st[co + BLOCK_ROWS]);
        a00 = x0.fma(p0, a00);
        a01 = x1.fma(p0, a01);
        a02 = x2.fma(p0, a02);
        a03 = x3.fma(p0, a03);
        p1 = FloatVector.broadcast(SP, st[co + BLOCK_ROWS + 1]);
        a10 = x0.fma(p1, a10);
        a11 = x1.fma(p1, a11);
        a12 = x2.fma(p1, a12);
        a13 = x3.fma(p1, a13);
        p2 = FloatVector.broadcast(SP, st[co + BLOCK_ROWS + 2]);
        a20 = x0.fma(p2, a20);
        a21 = x1.fma(p2, a21);
        a22 = x2.fma(p2, a22);
        a23 = x3.fma(p2, a23);
        p3 = FloatVector.broadcast(SP, st[co + BLOCK_ROWS + 3]);
        a30 = x0.fma(p3, a30);
        a31 = x1.fma(p3, a31);
        a32 = x2.fma(p3, a32);
        a33 = x3.fma(p3, a33);
      }
      a00.intoArray(out, o0);
      a01.intoArray(out, o0 + VL);
      a02.intoArray(out, o0 + 2 * VL);
      a03.intoArray(out, o0 + 3 * VL);
      a10.intoArray(out, o1);
      a11.intoArray(out, o1 + VL);
      a12.intoArray(out, o1 + 2 * VL);
      a13.intoArray(out, o1 + 3 * VL);
      a20.intoArray(out, o2);
      a21.intoArray(out, o2 + VL);
      a22.intoArray(out, o2 + 2 * VL);
      a23.intoArray(out, o2 + 3 * VL);
      a30.intoArray(out, o3);
      a31.intoArray(out, o3 + VL);
      a32.intoArray(out, o3 + 2 * VL);
      a33.intoArray(out, o3 + 3 * VL);
    }
  }

  /** {@link #accumulate} for four rows from {@code o0} over columns {@code [c, c + 4 * VL)}. */
  private static void accumulateWide(float[] coef, int c0, int ca, int cb, int nb, float[] x, int xStride,
      float[] out, int o0, int outStride, int c, float[] alpha, int alphaAt) {
    FloatVector al0 = FloatVector.broadcast(SP, alpha == null ? 1f : alpha[alphaAt]);
    FloatVector al1 = FloatVector.broadcast(SP, alpha == null ? 1f : alpha[alphaAt + 1]);
    FloatVector al2 = FloatVector.broadcast(SP, alpha == null ? 1f : alpha[alphaAt + 2]);
    FloatVector al3 = FloatVector.broadcast(SP, alpha == null ? 1f : alpha[alphaAt + 3]);
    int o1 = o0 + outStride;
    int o2 = o1 + outStride;
    int o3 = o2 + outStride;
    int c1 = c0 + ca;
    int c2 = c1 + ca;
    int c3 = c2 + ca;
    FloatVector a00 = FloatVector.fromArray(SP, out, o0 + c).mul(al0);
    FloatVector a01 = FloatVector.fromArray(SP, out, o0 + c + VL).mul(al0);
    FloatVector a02 = FloatVector.fromArray(SP, out, o0 + c + 2 * VL).mul(al0);
    FloatVector a03 = FloatVector.fromArray(SP, out, o0 + c + 3 * VL).mul(al0);
    FloatVector a10 = FloatVector.fromArray(SP, out, o1 + c).mul(al1);
    FloatVector a11 = FloatVector.fromArray(SP, out, o1 + c + VL).mul(al1);
    FloatVector a12 = FloatVector.fromArray(SP, out, o1 + c + 2 * VL).mul(al1);
    FloatVector a13 = FloatVector.fromArray(SP, out, o1 + c + 3 * VL).mul(al1);
    FloatVector a20 = FloatVector.fromArray(SP, out, o2 + c).mul(al2);
    FloatVector a21 = FloatVector.fromArray(SP, out, o2 + c + VL).mul(al2);
    FloatVector a22 = FloatVector.fromArray(SP, out, o2 + c + 2 * VL).mul(al2);
    FloatVector a23 = FloatVector.fromArray(SP, out, o2 + c + 3 * VL).mul(al2);
    FloatVector a30 = FloatVector.fromArray(SP, out, o3 + c).mul(al3);
    FloatVector a31 = FloatVector.fromArray(SP, out, o3 + c + VL).mul(al3);
    FloatVector a32 = FloatVector.fromArray(SP, out, o3 + c + 2 * VL).mul(al3);
    FloatVector a33 = FloatVector.fromArray(SP, out, o3 + c + 3 * VL).mul(al3);
    for (int bb = 0; bb < nb; bb++) {
      int xo = bb * xStride + c;
      FloatVector x0 = FloatVector.fromArray(SP, x, xo);
      FloatVector x1 = FloatVector.fromArray(SP, x, xo + VL);
      FloatVector x2 = FloatVector.fromArray(SP, x, xo + 2 * VL);
      FloatVector x3 = FloatVector.fromArray(SP, x, xo + 3 * VL);
      int co = bb * cb;
      FloatVector p0 = FloatVector.broadcast(SP, coef[c0 + co]);
      a00 = x0.fma(p0, a00);
      a01 = x1.fma(p0, a01);
      a02 = x2.fma(p0, a02);
      a03 = x3.fma(p0, a03);
      FloatVector p1 = FloatVector.broadcast(SP, coef[c1 + co]);
      a10 = x0.fma(p1, a10);
      a11 = x1.fma(p1, a11);
      a12 = x2.fma(p1, a12);
      a13 = x3.fma(p1, a13);
      FloatVector p2 = FloatVector.broadcast(SP, coef[c2 + co]);
      a20 = x0.fma(p2, a20);
      a21 = x1.fma(p2, a21);
      a22 = x2.fma(p2, a22);
      a23 = x3.fma(p2, a23);
      FloatVector p3 = FloatVector.broadcast(SP, coef[c3 + co]);
      a30 = x0.fma(p3, a30);
      a31 = x1.fma(p3, a31);
      a32 = x2.fma(p3, a32);
      a33 = x3.fma(p3, a33);
    }
    a00.intoArray(out, o0 + c);
    a01.intoArray(out, o0 + c + VL);
    a02.intoArray(out, o0 + c + 2 * VL);
    a03.intoArray(out, o0 + c + 3 * VL);
    a10.intoArray(out, o1 + c);
    a11.intoArray(out, o1 + c + VL);
    a12.intoArray(out, o1 + c + 2 * VL);
    a13.intoArray(out, o1 + c + 3 * VL);
    a20.intoArray(out, o2 + c);
    a21.intoArray(out, o2 + c + VL);
    a22.intoArray(out, o2 + c + 2 * VL);
    a23.intoArray(out, o2 + c + 3 * VL);
    a30.intoArray(out, o3 + c);
    a31.intoArray(out, o3 + c + VL);
    a32.intoArray(out, o3 + c + 2 * VL);
    a33.intoArray(out, o3 + c + 3 * VL);
  }

  /**
   * {@link #accumulate} for four rows from {@code o0} over columns {@code [cFrom, width)}, one vector at a time.
   * (Scalars, not vectors, cross the call: a vector argument of a call that is not inlined is boxed.)
   */
  static void narrowAccumulate(float[] coef, int c0, int ca, int cb, int nb, float[] x, int xStride,
      float[] out, int o0, int outStride, int cFrom, int width, float[] alpha, int alphaOff) {
    FloatVector al0 = FloatVector.broadcast(SP, alpha == null ? 1f : alpha[alphaOff]);
    FloatVector al1 = FloatVector.broadcast(SP, alpha == null ? 1f : alpha[alphaOff + 1]);
    FloatVector al2 = FloatVector.broadcast(SP, alpha == null ? 1f : alpha[alphaOff + 2]);
    FloatVector al3 = FloatVector.broadcast(SP, alpha == null ? 1f : alpha[alphaOff + 3]);
    int o1 = o0 + outStride;
    int o2 = o1 + outStride;
    int o3 = o2 + outStride;
    int c1 = c0 + ca;
    int c2 = c1 + ca;
    int c3 = c2 + ca;
    for (int c = cFrom; c < width; c += VL) {
      FloatVector a0 = FloatVector.fromArray(SP, out, o0 + c).mul(al0);
      FloatVector a1 = FloatVector.fromArray(SP, out, o1 + c).mul(al1);
      FloatVector a2 = FloatVector.fromArray(SP, out, o2 + c).mul(al2);
      FloatVector a3 = FloatVector.fromArray(SP, out, o3 + c).mul(al3);
      for (int bb = 0; bb < nb; bb++) {
        FloatVector x0 = FloatVector.fromArray(SP, x, bb * xStride + c);
        int co = bb * cb;
        a0 = x0.fma(FloatVector.broadcast(SP, coef[c0 + co]), a0);
        a1 = x0.fma(FloatVector.broadcast(SP, coef[c1 + co]), a1);
        a2 = x0.fma(FloatVector.broadcast(SP, coef[c2 + co]), a2);
        a3 = x0.fma(FloatVector.broadcast(SP, coef[c3 + co]), a3);
      }
      a0.intoArray(out, o0 + c);
      a1.intoArray(out, o1 + c);
      a2.intoArray(out, o2 + c);
      a3.intoArray(out, o3 + c);
    }
  }

  /**
   * Applies causality and the mask tensor to a transposed score tile (base-2 domain) of rows
   * {@code [ib, ib + br)} and keys {@code [j0, j0 + nk)}: hidden scores become {@code -inf}, an additive mask's
   * value is added.
   */
  static void mask(Problem p, int b, int h, int ib, int br, int j0, int nk, int rowVectors, float[] st) {
    for (int jj = 0; jj < nk; jj++) {
      long j = j0 + jj;
      int so = jj * BLOCK_ROWS;
      if (p.causal) {
        // row ib + r may see key j iff r >= j - shift - ib
        long first = j - p.shift - ib;
        if (first > 0) {
          float f = (float) Math.min(first, BLOCK_ROWS);
          for (int rv = 0; rv < rowVectors; rv++) {
            FloatVector s = FloatVector.fromArray(SP, st, so + rv * VL);
            VectorMask<Float> hidden = LANE_INDEX.add((float) (rv * VL)).lt(f);
            s.blend(Float.NEGATIVE_INFINITY, hidden).intoArray(st, so + rv * VL);
          }
        }
      }
      if (p.hasTensorMask()) {
        for (int r = 0; r < br; r++) {
          double bias = p.bias(b, h, ib + r, j);
          st[so + r] = bias == Double.NEGATIVE_INFINITY ? Float.NEGATIVE_INFINITY
              : st[so + r] + (float) bias * LOG2E;
        }
      }
    }
  }

  /**
   * {@code 2^x} lane-wise for {@code x <= 0}: exactly 0 below -125 (so {@code -inf} gives 0); NaN gives NaN. The
   * clamp is a compare and blend (the mask serves the final blend too), not {@code max}, whose Java semantics cost
   * six instructions; the power {@code 2^round(x)} is built as a float and multiplied (exact: a power of two times a
   * normal number stays normal above {@code 2^-126}), so that a NaN lane stays NaN without a separate blend.
   */
  static FloatVector exp2(FloatVector x) {
    VectorMask<Float> under = x.lt(-125f);
    FloatVector xc = x.blend(-125f, under);
    FloatVector t = xc.add(MAGIC);
    FloatVector f = xc.sub(t.sub(MAGIC));
    FloatVector poly = f.fma(C5, C4);
    poly = poly.fma(f, C3);
    poly = poly.fma(f, C2);
    poly = poly.fma(f, C1);
    poly = poly.fma(f, ONE);
    // t's low mantissa bits hold n = round(xc) in two's complement; (n + 127) << 23 is the float 2^n
    FloatVector power = t.reinterpretAsInts().add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
    return poly.mul(power).blend(0f, under);
  }
}
