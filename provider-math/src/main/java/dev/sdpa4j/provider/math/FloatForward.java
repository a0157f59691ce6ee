package dev.sdpa4j.provider.math;

import dev.sdpa4j.Dropout;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The float32 forward kernel (fp32, fp16 and bf16 inputs): FlashAttention-2's tiling with an online softmax on the
 * CPU, no {@code Lq × Lk} buffer. One task owns up to {@link #TASK_ROWS} query rows of one (batch, head), so that the
 * conversion of each key/value tile to float32 is shared by up to eight blocks of {@link Kernels#BLOCK_ROWS} rows. It
 * walks the key tiles of {@link #TILE_KEYS} keys, converting each once (the values also in column slices for
 * {@link Kernels#accumulateSlices}), and for each block computes the transposed score tile {@code S^T [keys][rows]}
 * ({@link Kernels#groupedProduct}; the block's queries are stored transposed, {@code [E][BLOCK_ROWS]}), updates
 * the running max and sum lane-wise over rows (no horizontal reductions), and accumulates {@code P·V}
 * ({@link Kernels#accumulateSlices}, the output rows in registers across the tile's keys).
 *
 * <p>Scores are kept in the base-2 domain ({@code log2(e)} folded into the query's scale) and exponentiated with
 * {@link Kernels#exp2NoNaN}, or {@link Kernels#exp2} for a row whose max is NaN. Results depend only on the request,
 * not on the thread count or schedule.
 */
final class FloatForward {
  private static final VectorSpecies<Float> SP = Kernels.SP;
  private static final int VL = Kernels.VL;
  private static final int BLOCK_ROWS = Kernels.BLOCK_ROWS;
  private static final int SLICE = Kernels.SLICE;
  /** Query rows per task: up to eight blocks share each converted key/value tile. */
  static final int TASK_ROWS = 8 * BLOCK_ROWS;
  /** Keys per tile. */
  static final int TILE_KEYS = 64;
  /**
   * Blocks with fewer rows than this (decoding: one or a few queries) take row-wise dot products instead of the
   * tile of row vectors, which would leave most lanes idle.
   */
  private static final int FEW_ROWS = 4;
  private static final float LN2 = (float) Math.log(2);

  private final Problem p;
  private final int evPad;
  /** Full column slices of the value tile ({@link Kernels#accumulateSlices}); the rest is the narrow tail. */
  private final int slices;
  private final float qScale;

  FloatForward(Problem p) {
    this.p = p;
    this.evPad = Kernels.padded(p.ev);
    this.slices = evPad / SLICE;
    this.qScale = (float) p.scale * Kernels.LOG2E;
  }

  /** Number of tasks: batch × heads × query tiles. */
  int tasks() {
    return p.batch * p.hq * tilesPerHead();
  }

  private int tilesPerHead() {
    return (p.lq + TASK_ROWS - 1) / TASK_ROWS;
  }

  /** Runs task {@code t}: query rows {@code [i0, i0 + TASK_ROWS)} of one (batch, head). */
  void run(int t) {
    int tiles = tilesPerHead();
    int bh = t / tiles;
    int b = bh / p.hq;
    int h = bh % p.hq;
    int i0 = (t % tiles) * TASK_ROWS;
    int rows = Math.min(TASK_ROWS, p.lq - i0);
    int kvh = p.kvHead(h);
    int e = p.e;

    int cap = (rows + BLOCK_ROWS - 1) / BLOCK_ROWS * BLOCK_ROWS;
    float[] qt = new float[e * cap];
    float[] qr = new float[FEW_ROWS * e];
    float[] kp = new float[TILE_KEYS * e];
    // keys in groups of four, for the blocks of four row vectors (more than 3 * VL rows)
    float[] kg = Math.min(rows, BLOCK_ROWS) > 3 * VL ? new float[TILE_KEYS * e] : null;
    float[] vp = new float[TILE_KEYS * evPad];
    float[] vs = new float[TILE_KEYS * slices * SLICE];
    float[] st = new float[TILE_KEYS * BLOCK_ROWS];
    float[] o = new float[cap * evPad];
    float[] m = new float[cap];
    float[] l = new float[cap];
    float[] alpha = new float[cap];
    boolean[] keep = p.seed == null ? null : new boolean[TILE_KEYS];
    java.util.Arrays.fill(m, Float.NEGATIVE_INFINITY);

    for (int r = 0; r < rows; r++) {
      Strided.read(p.q.type(), p.q.segment(), p.q.row(b, h, i0 + r), p.q.s3(), e, qt,
          r / BLOCK_ROWS * e * BLOCK_ROWS + r % BLOCK_ROWS, BLOCK_ROWS, qScale);
    }
    int blocks = (rows + BLOCK_ROWS - 1) / BLOCK_ROWS;
    int keyEnd = p.keyLimit(i0 + rows - 1);
    for (int j0 = 0; j0 < keyEnd; j0 += TILE_KEYS) {
      int nk = Math.min(TILE_KEYS, keyEnd - j0);
      boolean vBad = packTile(b, kvh, j0, nk, kp, kg, vp, vs);
      for (int blk = 0; blk < blocks; blk++) {
        int r0 = blk * BLOCK_ROWS;
        int br = Math.min(BLOCK_ROWS, rows - r0);
        int ib = i0 + r0;
        if (p.keyLimit(ib + br - 1) <= j0) {
          continue; // causality hides the whole tile from these rows
        }
        int rowVectors = (br + VL - 1) / VL;
        if (br < FEW_ROWS) {
          for (int r = 0; r < br; r++) {
            for (int c = 0; c < e; c++) {
              qr[r * e + c] = qt[blk * e * BLOCK_ROWS + c * BLOCK_ROWS + r];
            }
          }
          Kernels.rowDots(qr, e, br, kp, e, e, nk, st);
        } else if (rowVectors == 4) {
          Kernels.groupedProduct(qt, blk * e * BLOCK_ROWS, kg, e, nk, st);
        } else { // a last block of at most 48 rows
          Kernels.transposedProduct(qt, blk * e * BLOCK_ROWS, rowVectors, kp, e, e, nk, st);
        }
        if (p.hasTensorMask() || p.keyLimit(ib) < j0 + nk) {
          Kernels.mask(p, b, h, ib, br, j0, nk, rowVectors, st);
        }
        softmax(r0, nk, rowVectors, st, m, l, alpha);
        if (keep != null) {
          dropout(b, h, ib, br, j0, nk, keep, st);
        }
        if (vBad) {
          accumulateSkippingZeros(r0, br, nk, st, vp, o, alpha);
        } else if (br < FEW_ROWS) {
          for (int r = 0; r < br; r++) {
            Kernels.accumulateRow(st, r, BLOCK_ROWS, nk, vp, evPad, o, (r0 + r) * evPad, evPad, alpha[r0 + r]);
          }
        } else {
          int na = (br + 3) & ~3;
          Kernels.accumulateSlices(st, na, nk, vs, TILE_KEYS, slices, o, r0 * evPad, evPad, alpha, r0);
          for (int aq = 0; slices * SLICE < evPad && aq < na; aq += 4) {
            Kernels.narrowAccumulate(st, aq, 1, BLOCK_ROWS, nk, vp, evPad, o, (r0 + aq) * evPad, evPad,
                slices * SLICE, evPad, alpha, r0 + aq);
          }
        }
      }
    }
    finish(b, h, i0, rows, o, m, l);
  }

  /**
   * Converts keys and values {@code [j0, j0 + nk)} to float32: the keys row-major ({@code kp}) and, unless {@code kg}
   * is null (no full block), in groups of four ({@code kg}, see {@link Kernels#groupedProduct}), the values row-major ({@code vp}) and, for their full column
   * slices, in slices ({@code vs}, see {@link Kernels#accumulateSlices}); true when a value is NaN or infinite.
   */
  private boolean packTile(int b, int kvh, int j0, int nk, float[] kp, float[] kg, float[] vp, float[] vs) {
    int e = p.e;
    Strided.readRows(p.k.type(), p.k.segment(), p.k.row(b, kvh, j0), p.k.s2(), p.k.s3(), nk, e, kp, 0, e);
    Strided.readRows(p.v.type(), p.v.segment(), p.v.row(b, kvh, j0), p.v.s2(), p.v.s3(), nk, p.ev, vp, 0, evPad);
    int nk4 = (nk + 3) & ~3;
    java.util.Arrays.fill(kp, nk * e, nk4 * e, 0f);
    for (int jj = 0; kg != null && jj < nk4; jj++) {
      int g0 = (jj & ~3) * e + (jj & 3);
      for (int c = 0; c < e; c++) {
        kg[g0 + c * 4] = kp[jj * e + c];
      }
    }
    FloatVector bad = FloatVector.zero(SP);
    for (int x = 0; x < nk * evPad; x += VL) {
      FloatVector val = FloatVector.fromArray(SP, vp, x);
      bad = bad.add(val.sub(val));
    }
    for (int sl = 0; sl < slices; sl++) {
      for (int jj = 0; jj < nk; jj++) {
        int from = jj * evPad + sl * SLICE;
        int to = (sl * TILE_KEYS + jj) * SLICE;
        for (int y = 0; y < SLICE; y += VL) {
          FloatVector.fromArray(SP, vp, from + y).intoArray(vs, to + y);
        }
      }
    }
    return bad.reduceLanes(VectorOperators.ADD) != 0;
  }

  /**
   * The online softmax step: new running max per row, {@code alpha = 2^(m_old - m_new)}, scores replaced by
   * {@code 2^(s - m_new)}, running sum rescaled and increased. Rows with every score so far masked keep max
   * {@code -inf} and get probabilities 0.
   */
  private static void softmax(int r0, int nk, int rowVectors, float[] st, float[] m, float[] l, float[] alpha) {
    for (int rv = 0; rv < rowVectors; rv++) {
      int ro = r0 + rv * VL;
      int so = rv * VL;
      FloatVector mOld = FloatVector.fromArray(SP, m, ro);
      FloatVector mx = mOld;
      for (int jj = 0; jj < nk; jj++) {
        mx = mx.max(FloatVector.fromArray(SP, st, so + jj * BLOCK_ROWS));
      }
      FloatVector mUse = mx.blend(0f, mx.eq(Float.NEGATIVE_INFINITY));
      FloatVector sum = FloatVector.zero(SP);
      if (mx.test(VectorOperators.IS_NAN).anyTrue()) {
        // a NaN score makes its row's max NaN: then every probability of that row is NaN
        for (int jj = 0; jj < nk; jj++) {
          int x = so + jj * BLOCK_ROWS;
          FloatVector pr = Kernels.exp2(FloatVector.fromArray(SP, st, x).sub(mUse));
          pr.intoArray(st, x);
          sum = sum.add(pr);
        }
      } else {
        for (int jj = 0; jj < nk; jj++) {
          int x = so + jj * BLOCK_ROWS;
          FloatVector pr = Kernels.exp2NoNaN(FloatVector.fromArray(SP, st, x).sub(mUse));
          pr.intoArray(st, x);
          sum = sum.add(pr);
        }
      }
      FloatVector a = Kernels.exp2(mOld.sub(mUse));
      a.intoArray(alpha, ro);
      FloatVector.fromArray(SP, l, ro).fma(a, sum).intoArray(l, ro);
      mx.intoArray(m, ro);
    }
  }

  /** Zeroes the probabilities of dropped elements (the {@code 1/(1-p)} factor is applied at the end). */
  private void dropout(int b, int h, int ib, int br, int j0, int nk, boolean[] keep, float[] st) {
    for (int r = 0; r < br; r++) {
      Dropout.keepRow(p.seed, p.threshold, b, h, p.hq, ib + r, j0, nk, keep);
      for (int jj = 0; jj < nk; jj++) {
        if (!keep[jj]) {
          st[jj * BLOCK_ROWS + r] = 0f;
        }
      }
    }
  }

  /**
   * {@link #accumulate} for a value tile holding NaN or infinity: keys whose probability is exactly zero (masked or
   * dropped) are skipped, so the non-finite value reaches only the rows that use it.
   */
  private void accumulateSkippingZeros(int r0, int br, int nk, float[] st, float[] vp, float[] o, float[] alpha) {
    for (int r = 0; r < br; r++) {
      int oo = (r0 + r) * evPad;
      FloatVector a = FloatVector.broadcast(SP, alpha[r0 + r]);
      for (int c = 0; c < evPad; c += VL) {
        FloatVector acc = FloatVector.fromArray(SP, o, oo + c).mul(a);
        for (int jj = 0; jj < nk; jj++) {
          float pr = st[jj * BLOCK_ROWS + r];
          if (pr != 0f) {
            acc = FloatVector.fromArray(SP, vp, jj * evPad + c).fma(FloatVector.broadcast(SP, pr), acc);
          }
        }
        acc.intoArray(o, oo + c);
      }
    }
  }

  /** Normalises and writes the output rows and their LSE; a row with no key gets zeros and {@code -inf}. */
  private void finish(int b, int h, int i0, int rows, float[] o, float[] m, float[] l) {
    for (int r = 0; r < rows; r++) {
      long at = p.out.row(b, h, i0 + r);
      if (m[r] == Float.NEGATIVE_INFINITY) {
        java.util.Arrays.fill(o, r * evPad, r * evPad + p.ev, 0f);
        Strided.write(p.out.type(), p.out.segment(), at, p.out.s3(), p.ev, o, r * evPad, 1f);
        p.writeLse(b, h, i0 + r, Float.NEGATIVE_INFINITY);
      } else {
        Strided.write(p.out.type(), p.out.segment(), at, p.out.s3(), p.ev, o, r * evPad, (float) (p.keepScale / l[r]));
        p.writeLse(b, h, i0 + r, (float) (m[r] * (double) LN2 + Math.log(l[r])));
      }
    }
  }

}
