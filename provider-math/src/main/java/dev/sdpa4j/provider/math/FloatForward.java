package dev.sdpa4j.provider.math;

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
 * {@link Kernels#exp2}. A NaN score is passed over by the running max and makes its row's sum, hence its output and
 * LSE, NaN. Results depend only on the request, not on the thread count or schedule.
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

  /** Each thread's scratch arrays (see {@link Workspace}). */
  private static final ThreadLocal<Workspace> WORKSPACES = ThreadLocal.withInitial(Workspace::new);

  private final Problem p;
  private final int evPad;
  /** Full column slices of the value tile ({@link Kernels#accumulateSlices}); the rest is the narrow tail. */
  private final int slices;
  private final float qScale;
  /**
   * Gather map from four key rows of {@code E} elements to their interleaved group ({@link Kernels#groupedProduct}):
   * lane {@code i} reads element {@code i / 4} of key {@code i % 4}.
   */
  private final int[] groupMap;

  FloatForward(Problem p) {
    this.p = p;
    this.evPad = Kernels.padded(p.ev);
    this.slices = evPad / SLICE;
    this.qScale = (float) p.scale * Kernels.LOG2E;
    this.groupMap = new int[VL];
    for (int i = 0; i < VL; i++) {
      groupMap[i] = i % 4 * p.e + i / 4;
    }
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
    // the transposed queries and grouped keys with the depth padded (zeros) for Kernels.groupedProduct
    int depth = Kernels.unrolled(e);
    Workspace w = WORKSPACES.get();
    // the panels that the kernels load whole vectors from start on a 64-byte boundary (see Alignment)
    float[] qt = w.qt = Workspace.atLeast(w.qt, depth * cap + Alignment.PAD);
    int qOff = Alignment.offset(qt);
    float[] qr = w.qr = Workspace.atLeast(w.qr, FEW_ROWS * e);
    float[] kp = w.kp = Workspace.atLeast(w.kp, TILE_KEYS * e);
    // keys in groups of four, for the blocks of four row vectors (more than 3 * VL rows)
    float[] kg = Math.min(rows, BLOCK_ROWS) > 3 * VL ? (w.kg = Workspace.atLeast(w.kg, TILE_KEYS * depth)) : null;
    float[] vp = w.vp = Workspace.atLeast(w.vp, TILE_KEYS * evPad);
    float[] vs = w.vs = Workspace.atLeast(w.vs, TILE_KEYS * slices * SLICE + Alignment.PAD);
    int vsOff = Alignment.offset(vs);
    float[] st = w.st = Workspace.atLeast(w.st, TILE_KEYS * BLOCK_ROWS);
    float[] o = w.o = Workspace.atLeast(w.o, cap * evPad + Alignment.PAD);
    int oOff = Alignment.offset(o);
    float[] m = w.m = Workspace.atLeast(w.m, cap);
    float[] l = w.l = Workspace.atLeast(w.l, cap);
    float[] alpha = w.alpha = Workspace.atLeast(w.alpha, cap);
    boolean[] keep = p.seed == null ? null : new boolean[TILE_KEYS];
    // what the kernels read before this task writes it: the zero padding of the depth and of the value rows, the
    // output accumulators and the softmax state (rows past the task's own are computed but never read out)
    if (depth > e) {
      for (int blk = 0; blk < cap / BLOCK_ROWS; blk++) {
        int from = qOff + (blk * depth + e) * BLOCK_ROWS;
        java.util.Arrays.fill(qt, from, from + (depth - e) * BLOCK_ROWS, 0f);
      }
      if (kg != null) {
        java.util.Arrays.fill(kg, 0f);
      }
    }
    if (p.ev < evPad) {
      java.util.Arrays.fill(vp, 0f);
    }
    java.util.Arrays.fill(o, oOff, oOff + cap * evPad, 0f);
    java.util.Arrays.fill(m, 0, cap, Float.NEGATIVE_INFINITY);
    java.util.Arrays.fill(l, 0, cap, 0f);

    for (int r = 0; r < rows; r++) {
      Strided.read(p.q.type(), p.q.segment(), p.q.row(b, h, i0 + r), p.q.s3(), e, qt,
          qOff + r / BLOCK_ROWS * depth * BLOCK_ROWS + r % BLOCK_ROWS, BLOCK_ROWS, qScale);
    }
    int blocks = (rows + BLOCK_ROWS - 1) / BLOCK_ROWS;
    int keyEnd = p.keyLimit(i0 + rows - 1);
    for (int j0 = 0; j0 < keyEnd; j0 += TILE_KEYS) {
      int nk = Math.min(TILE_KEYS, keyEnd - j0);
      boolean vBad = packTile(b, kvh, j0, nk, depth, kp, kg, vp, vs, vsOff);
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
              qr[r * e + c] = qt[qOff + blk * depth * BLOCK_ROWS + c * BLOCK_ROWS + r];
            }
          }
          Kernels.rowDots(qr, e, br, kp, e, e, nk, st);
        } else if (rowVectors == 4) {
          Kernels.groupedProduct(qt, qOff + blk * depth * BLOCK_ROWS, kg, depth, nk, st);
        } else { // a last block of at most 48 rows
          Kernels.transposedProduct(qt, qOff + blk * depth * BLOCK_ROWS, rowVectors, kp, e, e, nk, st);
        }
        if (p.hasTensorMask() || p.keyLimit(ib) < j0 + nk) {
          Kernels.mask(p, b, h, ib, br, j0, nk, rowVectors, st);
        }
        softmax(r0, nk, rowVectors, st, m, l, alpha);
        if (keep != null) {
          dropout(b, h, ib, br, j0, nk, keep, st);
        }
        if (vBad) {
          accumulateSkippingZeros(r0, br, nk, st, vp, o, oOff, alpha);
        } else if (br < FEW_ROWS) {
          for (int r = 0; r < br; r++) {
            Kernels.accumulateRow(st, r, BLOCK_ROWS, nk, vp, evPad, o, oOff + (r0 + r) * evPad, evPad, alpha[r0 + r]);
          }
        } else {
          int na = (br + 3) & ~3;
          int nb = Kernels.unrolled(nk);
          // the padding key's probabilities are zero (its slice rows are zero too, see packTile)
          java.util.Arrays.fill(st, nk * BLOCK_ROWS, nb * BLOCK_ROWS, 0f);
          Kernels.accumulateSlices(st, na, nb, vs, vsOff, TILE_KEYS, slices, o, oOff + r0 * evPad, evPad, alpha, r0);
          for (int aq = 0; slices * SLICE < evPad && aq < na; aq += 4) {
            Kernels.narrowAccumulate(st, aq, 1, BLOCK_ROWS, nk, vp, evPad, o, oOff + (r0 + aq) * evPad, evPad,
                slices * SLICE, evPad, alpha, r0 + aq);
          }
        }
      }
    }
    finish(b, h, i0, rows, o, oOff, m, l);
  }

  /**
   * Converts keys and values {@code [j0, j0 + nk)} to float32: the keys row-major ({@code kp}) and, unless {@code kg}
   * is null (no full block), in groups of four of {@code depth} elements ({@code kg}, see
   * {@link Kernels#groupedProduct}; the padding past {@code E} stays zero), the values row-major ({@code vp}) and, for
   * their full column slices, in slices ({@code vs}, see {@link Kernels#accumulateSlices}) followed by zero keys up to
   * a multiple of {@link Kernels#UNROLL}; true when a value is NaN or infinite.
   */
  private boolean packTile(int b, int kvh, int j0, int nk, int depth, float[] kp, float[] kg, float[] vp,
      float[] vs, int vsOff) {
    int e = p.e;
    Strided.readRows(p.k.type(), p.k.segment(), p.k.row(b, kvh, j0), p.k.s2(), p.k.s3(), nk, e, kp, 0, e);
    Strided.readRows(p.v.type(), p.v.segment(), p.v.row(b, kvh, j0), p.v.s2(), p.v.s3(), nk, p.ev, vp, 0, evPad);
    int nk4 = (nk + 3) & ~3;
    java.util.Arrays.fill(kp, nk * e, nk4 * e, 0f);
    // each group of four keys interleaved element by element: a vector of VL / 4 elements of the four keys per
    // gather (a scalar loop took 7% of a task at E = 128), the last E % (VL / 4) elements one by one
    int step = VL / 4;
    for (int g = 0; kg != null && g < nk4; g += 4) {
      int from = g * e;
      int to = g * depth;
      int c = 0;
      for (; c + step <= e; c += step) {
        FloatVector.fromArray(SP, kp, from + c, groupMap, 0).intoArray(kg, to + c * 4);
      }
      for (; c < e; c++) {
        for (int k = 0; k < 4; k++) {
          kg[to + c * 4 + k] = kp[from + k * e + c];
        }
      }
    }
    FloatVector bad = FloatVector.zero(SP);
    for (int x = 0; x < nk * evPad; x += VL) {
      FloatVector val = FloatVector.fromArray(SP, vp, x);
      bad = bad.add(val.sub(val));
    }
    int nb = Kernels.unrolled(nk);
    for (int sl = 0; sl < slices; sl++) {
      java.util.Arrays.fill(vs, vsOff + (sl * TILE_KEYS + nk) * SLICE, vsOff + (sl * TILE_KEYS + nb) * SLICE, 0f);
      for (int jj = 0; jj < nk; jj++) {
        int from = jj * evPad + sl * SLICE;
        int to = vsOff + (sl * TILE_KEYS + jj) * SLICE;
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
   * {@code -inf} and get probabilities 0 (sum 0); a NaN score is not taken by the max and gives probability NaN.
   */
  private static void softmax(int r0, int nk, int rowVectors, float[] st, float[] m, float[] l, float[] alpha) {
    for (int rv = 0; rv < rowVectors; rv++) {
      int ro = r0 + rv * VL;
      int so = rv * VL;
      FloatVector mOld = FloatVector.fromArray(SP, m, ro);
      // the max as compare-blends (NaN scores are passed over: they reach the sum through 2^NaN = NaN), in two
      // chains, even and odd keys, to halve the latency of the dependent steps
      FloatVector even = mOld;
      FloatVector odd = mOld;
      int jj = 0;
      for (; jj + 1 < nk; jj += 2) {
        FloatVector sEven = FloatVector.fromArray(SP, st, so + jj * BLOCK_ROWS);
        FloatVector sOdd = FloatVector.fromArray(SP, st, so + (jj + 1) * BLOCK_ROWS);
        even = even.blend(sEven, even.lt(sEven));
        odd = odd.blend(sOdd, odd.lt(sOdd));
      }
      if (jj < nk) {
        FloatVector sEven = FloatVector.fromArray(SP, st, so + jj * BLOCK_ROWS);
        even = even.blend(sEven, even.lt(sEven));
      }
      FloatVector mx = even.blend(odd, even.lt(odd));
      FloatVector mUse = mx.blend(0f, mx.eq(Float.NEGATIVE_INFINITY));
      FloatVector sum = FloatVector.zero(SP);
      for (jj = 0; jj < nk; jj++) {
        int x = so + jj * BLOCK_ROWS;
        FloatVector pr = Kernels.exp2(FloatVector.fromArray(SP, st, x).sub(mUse));
        pr.intoArray(st, x);
        sum = sum.add(pr);
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
      p.dropout.keepRow(p.seed, b, h, p.hq, ib + r, j0, nk, keep);
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
  private void accumulateSkippingZeros(int r0, int br, int nk, float[] st, float[] vp, float[] o, int oOff,
      float[] alpha) {
    for (int r = 0; r < br; r++) {
      int oo = oOff + (r0 + r) * evPad;
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

  /**
   * Normalises and writes the output rows and their LSE; a row with no key (max {@code -inf}, sum 0) gets zeros and
   * {@code -inf}, a row whose sum is NaN gets NaN.
   */
  private void finish(int b, int h, int i0, int rows, float[] o, int oOff, float[] m, float[] l) {
    for (int r = 0; r < rows; r++) {
      long at = p.out.row(b, h, i0 + r);
      if (m[r] == Float.NEGATIVE_INFINITY && l[r] == 0f) {
        java.util.Arrays.fill(o, oOff + r * evPad, oOff + r * evPad + p.ev, 0f);
        Strided.write(p.out.type(), p.out.segment(), at, p.out.s3(), p.ev, o, oOff + r * evPad, 1f);
        p.writeLse(b, h, i0 + r, Float.NEGATIVE_INFINITY);
      } else {
        Strided.write(p.out.type(), p.out.segment(), at, p.out.s3(), p.ev, o, oOff + r * evPad,
            (float) (p.dropout.keepScale() / l[r]));
        p.writeLse(b, h, i0 + r, (float) (m[r] * (double) LN2 + Math.log(l[r])));
      }
    }
  }

  /**
   * The scratch arrays of a task, kept by each thread for its next tasks, so that a task allocates nothing (measured
   * here: a 512-row task runs 10-15% faster than with fresh arrays, which cost allocation, zeroing and cold caches).
   * Each grows to the largest size its thread has needed and stays held by the thread: {@code O(TASK_ROWS · (E + Ev))}
   * floats. Contents are left over from the previous task: a task sets what it reads before it writes it. A task runs
   * to its end without running another on its thread, so one workspace per thread suffices.
   */
  private static final class Workspace {
    float[] qt;
    float[] qr;
    float[] kp;
    float[] kg;
    float[] vp;
    float[] vs;
    float[] st;
    float[] o;
    float[] m;
    float[] l;
    float[] alpha;

    /** {@code a} when it holds at least {@code n} elements, else a new array of {@code n}. */
    static float[] atLeast(float[] a, int n) {
      return a != null && a.length >= n ? a : new float[n];
    }
  }
}
