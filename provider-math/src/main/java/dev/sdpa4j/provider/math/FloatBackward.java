package dev.sdpa4j.provider.math;

import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.DType;
import dev.sdpa4j.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The float32 backward kernel (fp32, fp16 and bf16 inputs), FlashAttention-2 style with the {@link Kernels}
 * building blocks: probabilities are recomputed from the forward's LSE ({@code P = 2^(S·log2e − LSE·log2e)}),
 * {@code D = rowsum(dO ∘ O)} uses the forward's output, and the dropout mask is regenerated. To stay deterministic
 * without atomics it runs three passes: row statistics ({@link #prepare}), key tiles (each task owns a tile of dK and
 * dV and sums over every query row of its grouped-query heads), then query blocks (each task owns a block of dQ).
 * Work memory is a few tiles per task, independent of {@code Lq × Lk}.
 */
final class FloatBackward {
  private static final VectorSpecies<Float> SP = Kernels.SP;
  private static final int VL = Kernels.VL;
  private static final int BLOCK_ROWS = Kernels.BLOCK_ROWS;
  static final int TILE_KEYS = 64;

  private final Problem p;
  private final Problem.View dOut;
  private final Problem.View dq;
  private final Problem.View dk;
  private final Problem.View dv;
  private final Tensor lse;
  private final int ePad;
  private final int evPad;
  private final float qScale;
  private final boolean shareable;
  /** Per row: LSE·log2(e), {@code +inf} for a fully masked row (so that its probabilities are 0). */
  private final float[] lse2;
  /** Per row: {@code D = dO · O}. */
  private final float[] delta;

  FloatBackward(BackwardRequest r) {
    this.p = new Problem(r.forward());
    this.dOut = Problem.View.of(r.gradOutput());
    this.dq = Problem.View.of(r.gradQuery());
    this.dk = Problem.View.of(r.gradKey());
    this.dv = Problem.View.of(r.gradValue());
    this.lse = r.forward().lse().orElseThrow();
    this.ePad = Kernels.padded(p.e);
    this.evPad = Kernels.padded(p.ev);
    this.qScale = (float) p.scale * Kernels.LOG2E;
    this.shareable = p.shareable && Problem.shareable(r.gradOutput()) && Problem.shareable(r.gradQuery())
        && Problem.shareable(r.gradKey()) && Problem.shareable(r.gradValue());
    int rows = Math.multiplyExact(p.batch * p.hq, p.lq);
    this.lse2 = new float[rows];
    this.delta = new float[rows];
  }

  /** False when a tensor lives in a thread-confined arena, so that only the calling thread may run the tasks. */
  boolean shareable() {
    return shareable;
  }

  /** Tasks of the row passes ({@link #prepare}, {@link #runQueries}): batch × query heads × row blocks. */
  int rowTasks() {
    return p.batch * p.hq * blocksPerHead();
  }

  private int blocksPerHead() {
    return (p.lq + BLOCK_ROWS - 1) / BLOCK_ROWS;
  }

  /** Tasks of the key pass: batch × key/value heads × key tiles. */
  int keyTasks() {
    return p.batch * p.hkv * ((p.lk + TILE_KEYS - 1) / TILE_KEYS);
  }

  /** First pass, task {@code t}: the LSE in base 2 and {@code D} of one block of rows. */
  void prepare(int t) {
    int blocks = blocksPerHead();
    int bh = t / blocks;
    int b = bh / p.hq;
    int h = bh % p.hq;
    int i0 = (t % blocks) * BLOCK_ROWS;
    int rows = Math.min(BLOCK_ROWS, p.lq - i0);
    float[] o = new float[p.ev];
    float[] g = new float[p.ev];
    for (int r = 0; r < rows; r++) {
      int i = i0 + r;
      int row = (b * p.hq + h) * p.lq + i;
      float l = (float) DType.FLOAT32.read(lse.hostSegment(),
          (b * lse.stride(0) + h * lse.stride(1) + i * lse.stride(2)) * 4);
      lse2[row] = l == Float.NEGATIVE_INFINITY ? Float.POSITIVE_INFINITY : l * Kernels.LOG2E;
      Strided.read(p.out.type(), p.out.segment(), p.out.row(b, h, i), p.out.s3(), p.ev, o, 0, 1, 1f);
      Strided.read(dOut.type(), dOut.segment(), dOut.row(b, h, i), dOut.s3(), p.ev, g, 0, 1, 1f);
      double d = 0;
      for (int c = 0; c < p.ev; c++) {
        d += (double) o[c] * g[c];
      }
      delta[row] = (float) d;
    }
  }

  /** Second pass, task {@code t}: dK and dV of one key tile, summed over the query heads of its group. */
  void runKeys(int t) {
    int tiles = (p.lk + TILE_KEYS - 1) / TILE_KEYS;
    int bk = t / tiles;
    int b = bk / p.hkv;
    int kvh = bk % p.hkv;
    int j0 = (t % tiles) * TILE_KEYS;
    int nk = Math.min(TILE_KEYS, p.lk - j0);
    Block w = new Block();
    float[] gk = new float[TILE_KEYS * ePad];
    float[] gv = new float[TILE_KEYS * evPad];
    float[] qr = new float[BLOCK_ROWS * ePad];
    float[] gr = new float[BLOCK_ROWS * evPad];
    w.packKeys(b, kvh, j0, nk);
    int firstRow = p.causal ? (int) Math.max(0, Math.min(p.lq, j0 - p.shift)) : 0;
    int nk4 = (nk + 3) & ~3;
    for (int g = 0; g < p.group; g++) {
      int h = kvh * p.group + g;
      for (int ib = firstRow; ib < p.lq; ib += BLOCK_ROWS) {
        int br = Math.min(BLOCK_ROWS, p.lq - ib);
        for (int r = 0; r < br; r++) {
          Strided.read(p.q.type(), p.q.segment(), p.q.row(b, h, ib + r), p.q.s3(), p.e, qr, r * ePad, 1, 1f);
          Strided.read(dOut.type(), dOut.segment(), dOut.row(b, h, ib + r), dOut.s3(), p.ev, gr, r * evPad, 1, 1f);
        }
        w.packRows(b, h, ib, br, qr, gr);
        w.gradients(b, h, ib, br, j0, nk, true);
        // dV += Pd^T dO, dK += dS^T Q: rows of the outputs are keys, the sum runs over the block's rows
        Kernels.accumulate(w.pt, 0, BLOCK_ROWS, 1, nk4, br, gr, evPad, gv, 0, evPad, evPad, null, 0);
        Kernels.accumulate(w.dst, 0, BLOCK_ROWS, 1, nk4, br, qr, ePad, gk, 0, ePad, ePad, null, 0);
      }
    }
    for (int jj = 0; jj < nk; jj++) {
      Strided.write(dk.type(), dk.segment(), dk.row(b, kvh, j0 + jj), dk.s3(), p.e, gk, jj * ePad, (float) p.scale);
      Strided.write(dv.type(), dv.segment(), dv.row(b, kvh, j0 + jj), dv.s3(), p.ev, gv, jj * evPad, 1f);
    }
  }

  /** Third pass, task {@code t}: dQ of one block of rows. */
  void runQueries(int t) {
    int blocks = blocksPerHead();
    int bh = t / blocks;
    int b = bh / p.hq;
    int h = bh % p.hq;
    int ib = (t % blocks) * BLOCK_ROWS;
    int br = Math.min(BLOCK_ROWS, p.lq - ib);
    int kvh = p.kvHead(h);
    Block w = new Block();
    float[] gq = new float[BLOCK_ROWS * ePad];
    float[] qr = new float[BLOCK_ROWS * ePad];
    float[] gr = new float[BLOCK_ROWS * evPad];
    for (int r = 0; r < br; r++) {
      Strided.read(p.q.type(), p.q.segment(), p.q.row(b, h, ib + r), p.q.s3(), p.e, qr, r * ePad, 1, 1f);
      Strided.read(dOut.type(), dOut.segment(), dOut.row(b, h, ib + r), dOut.s3(), p.ev, gr, r * evPad, 1, 1f);
    }
    w.packRows(b, h, ib, br, qr, gr);
    int keyEnd = p.keyLimit(ib + br - 1);
    for (int j0 = 0; j0 < keyEnd; j0 += TILE_KEYS) {
      int nk = Math.min(TILE_KEYS, keyEnd - j0);
      w.packKeys(b, kvh, j0, nk);
      w.gradients(b, h, ib, br, j0, nk, false);
      // dQ += dS K: rows of the output are the block's rows, the sum runs over the tile's keys
      Kernels.accumulate(w.dst, 0, 1, BLOCK_ROWS, (br + 3) & ~3, nk, w.kp, ePad, gq, 0, ePad, ePad, null, 0);
    }
    for (int r = 0; r < br; r++) {
      Strided.write(dq.type(), dq.segment(), dq.row(b, h, ib + r), dq.s3(), p.e, gq, r * ePad, (float) p.scale);
    }
  }

  /** One task's tiles: a key/value tile, a block of rows (transposed), and the probability and gradient tiles. */
  private final class Block {
    final float[] kp = new float[TILE_KEYS * ePad];
    final float[] vp = new float[TILE_KEYS * evPad];
    final float[] qt = new float[p.e * BLOCK_ROWS];
    final float[] gt = new float[p.ev * BLOCK_ROWS];
    final float[] rowLse = new float[BLOCK_ROWS];
    final float[] rowDelta = new float[BLOCK_ROWS];
    /** P^T, then (dropout) P^T times the keep factor. */
    final float[] pt = new float[TILE_KEYS * BLOCK_ROWS];
    /** dP^T, then dS^T. */
    final float[] dst = new float[TILE_KEYS * BLOCK_ROWS];
    final float[] factor = p.seed == null ? null : new float[TILE_KEYS * BLOCK_ROWS];
    final boolean[] keep = p.seed == null ? null : new boolean[TILE_KEYS];

    void packKeys(int b, int kvh, int j0, int nk) {
      Strided.readRows(p.k.type(), p.k.segment(), p.k.row(b, kvh, j0), p.k.s2(), p.k.s3(), nk, p.e, kp, 0, ePad);
      Strided.readRows(p.v.type(), p.v.segment(), p.v.row(b, kvh, j0), p.v.s2(), p.v.s3(), nk, p.ev, vp, 0, evPad);
    }

    /** Transposes the block's query rows (scaled to the base-2 domain) and dO rows; loads the row statistics. */
    void packRows(int b, int h, int ib, int br, float[] qr, float[] gr) {
      int base = (b * p.hq + h) * p.lq + ib;
      for (int r = 0; r < BLOCK_ROWS; r++) {
        boolean real = r < br;
        for (int c = 0; c < p.e; c++) {
          qt[c * BLOCK_ROWS + r] = real ? qr[r * ePad + c] * qScale : 0f;
        }
        for (int c = 0; c < p.ev; c++) {
          gt[c * BLOCK_ROWS + r] = real ? gr[r * evPad + c] : 0f;
        }
        rowLse[r] = real ? lse2[base + r] : Float.POSITIVE_INFINITY;
        rowDelta[r] = real ? delta[base + r] : 0f;
      }
    }

    /**
     * For rows {@code [ib, ib + br)} and keys {@code [j0, j0 + nk)}: {@code pt} = P^T (times the dropout factor
     * when {@code dropped}), {@code dst} = dS^T = P ∘ (dP ∘ factor − D).
     */
    void gradients(int b, int h, int ib, int br, int j0, int nk, boolean dropped) {
      int rowVectors = (br + VL - 1) / VL;
      Kernels.transposedProduct(qt, 0, rowVectors, kp, ePad, p.e, nk, pt);
      if (p.hasTensorMask() || p.keyLimit(ib) < j0 + nk) {
        Kernels.mask(p, b, h, ib, br, j0, nk, rowVectors, pt);
      }
      Kernels.transposedProduct(gt, 0, rowVectors, vp, evPad, p.ev, nk, dst);
      if (factor != null) {
        float scale = (float) p.dropout.keepScale();
        for (int r = 0; r < br; r++) {
          p.dropout.keepRow(p.seed, b, h, p.hq, ib + r, j0, nk, keep);
          for (int jj = 0; jj < nk; jj++) {
            factor[jj * BLOCK_ROWS + r] = keep[jj] ? scale : 0f;
          }
        }
      }
      for (int rv = 0; rv < rowVectors; rv++) {
        int ro = rv * VL;
        FloatVector l = FloatVector.fromArray(SP, rowLse, ro);
        FloatVector d = FloatVector.fromArray(SP, rowDelta, ro);
        for (int jj = 0; jj < nk; jj++) {
          int x = jj * BLOCK_ROWS + ro;
          FloatVector pr = Kernels.exp2(FloatVector.fromArray(SP, pt, x).sub(l));
          FloatVector dp = FloatVector.fromArray(SP, dst, x);
          if (factor != null) {
            FloatVector f = FloatVector.fromArray(SP, factor, x);
            dp = dp.mul(f);
            if (dropped) {
              pr.mul(f).intoArray(pt, x);
            } else {
              pr.intoArray(pt, x);
            }
          } else {
            pr.intoArray(pt, x);
          }
          pr.mul(dp.sub(d)).intoArray(dst, x);
        }
      }
    }
  }
}
