package dev.sdpa4j.provider.math;

import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.DType;
import java.util.Arrays;

/**
 * The backward pass for {@link DType#FLOAT64} inputs, FlashAttention-2 style in float64 with scalar loops:
 * the LSE is recomputed in float64 (the forward's is float32), probabilities are {@code P = exp(S - LSE)},
 * {@code D = rowsum(dO ∘ O)} uses the forward's output, and the dropout mask is regenerated. To stay deterministic
 * without atomics it runs three passes: the LSE per query tile, key tiles (each task owns a tile of dK and dV and
 * sums over every query row of its grouped-query heads), then query tiles (each task owns a tile of dQ). Memory
 * does not grow with {@code Lq × Lk}.
 */
final class DoubleBackward {
  static final int TILE = 64;

  private final Problem p;
  private final Problem.View dOut;
  private final Problem.View dq;
  private final Problem.View dk;
  private final Problem.View dv;
  private final double[] lse;
  private final double[] delta;
  private final boolean shareable;

  DoubleBackward(BackwardRequest r) {
    this.p = new Problem(r.forward());
    this.dOut = Problem.View.of(r.gradOutput());
    this.dq = Problem.View.of(r.gradQuery());
    this.dk = Problem.View.of(r.gradKey());
    this.dv = Problem.View.of(r.gradValue());
    this.shareable = p.shareable && Problem.shareable(r.gradOutput()) && Problem.shareable(r.gradQuery())
        && Problem.shareable(r.gradKey()) && Problem.shareable(r.gradValue());
    int rowsTotal = p.batch * p.hq * p.lq;
    this.lse = new double[rowsTotal];
    this.delta = new double[rowsTotal];
  }

  /** False when a tensor lives in a thread-confined arena, so that only the calling thread may run the tasks. */
  boolean shareable() {
    return shareable;
  }

  /**
   * First pass, task {@code t} of {@link #queryTasks()}: the LSE of one query tile recomputed in float64 from the
   * inputs, and {@code D = dO · O}.
   */
  void prepare(int t) {
    int tiles = (p.lq + TILE - 1) / TILE;
    int bh = t / tiles;
    int b = bh / p.hq;
    int h = bh % p.hq;
    int i0 = (t % tiles) * TILE;
    int rows = Math.min(TILE, p.lq - i0);
    int kvh = p.kvHead(h);
    double[] q = new double[p.e];
    double[] kd = new double[p.e];
    double[] o = new double[p.ev];
    double[] g = new double[p.ev];
    for (int r = 0; r < rows; r++) {
      int i = i0 + r;
      Strided.read(p.out.type(), p.out.segment(), p.out.row(b, h, i), p.out.s3(), p.ev, o, 0);
      Strided.read(dOut.type(), dOut.segment(), dOut.row(b, h, i), dOut.s3(), p.ev, g, 0);
      double d = 0;
      for (int c = 0; c < p.ev; c++) {
        d += o[c] * g[c];
      }
      delta[(b * p.hq + h) * p.lq + i] = d;
      Strided.read(p.q.type(), p.q.segment(), p.q.row(b, h, i), p.q.s3(), p.e, q, 0);
      double max = Double.NEGATIVE_INFINITY;
      double sum = 0;
      int lim = p.keyLimit(i);
      for (int j = 0; j < lim; j++) {
        double bias = p.hasTensorMask() ? p.bias(b, h, i, j) : 0;
        if (bias == Double.NEGATIVE_INFINITY) {
          continue;
        }
        Strided.read(p.k.type(), p.k.segment(), p.k.row(b, kvh, j), p.k.s3(), p.e, kd, 0);
        double dot = 0;
        for (int c = 0; c < p.e; c++) {
          dot += q[c] * kd[c];
        }
        double s = dot * p.scale + bias;
        if (s > max) {
          sum = sum * Math.exp(max - s) + 1;
          max = s;
        } else {
          sum += Math.exp(s - max);
        }
        if (Double.isNaN(s)) {
          max = Double.NaN;
        }
      }
      lse[(b * p.hq + h) * p.lq + i] = max == Double.NEGATIVE_INFINITY ? max : max + Math.log(sum);
    }
  }

  /** Tasks of the first pass: batch × key/value heads × key tiles. */
  int keyTasks() {
    return p.batch * p.hkv * ((p.lk + TILE - 1) / TILE);
  }

  /** Tasks of the second pass: batch × query heads × query tiles. */
  int queryTasks() {
    return p.batch * p.hq * ((p.lq + TILE - 1) / TILE);
  }

  /** First pass, task {@code t}: dK and dV of one key tile. */
  void runKeys(int t) {
    int tiles = (p.lk + TILE - 1) / TILE;
    int bk = t / tiles;
    int b = bk / p.hkv;
    int kvh = bk % p.hkv;
    int j0 = (t % tiles) * TILE;
    int nk = Math.min(TILE, p.lk - j0);
    int e = p.e;
    int ev = p.ev;
    double[] kd = new double[nk * e];
    double[] vd = new double[nk * ev];
    double[] gk = new double[nk * e];
    double[] gv = new double[nk * ev];
    double[] q = new double[e];
    double[] go = new double[ev];
    boolean[] keep = new boolean[nk];
    Arrays.fill(keep, true);
    packKeys(b, kvh, j0, nk, kd, vd);
    long firstRow = p.causal ? Math.max(0, j0 - p.shift) : 0;
    for (int g = 0; g < p.group; g++) {
      int h = kvh * p.group + g;
      for (long il = firstRow; il < p.lq; il++) {
        int i = (int) il;
        int row = (b * p.hq + h) * p.lq + i;
        int lim = Math.min(p.keyLimit(i) - j0, nk);
        if (lse[row] == Double.NEGATIVE_INFINITY || lim <= 0) {
          continue;
        }
        Strided.read(p.q.type(), p.q.segment(), p.q.row(b, h, i), p.q.s3(), e, q, 0);
        Strided.read(dOut.type(), dOut.segment(), dOut.row(b, h, i), dOut.s3(), ev, go, 0);
        if (p.seed != null) {
          p.dropout.keepRow(p.seed, b, h, p.hq, i, j0, lim, keep);
        }
        for (int jj = 0; jj < lim; jj++) {
          double pr = probability(b, h, i, j0 + jj, row, q, kd, jj * e);
          if (pr == 0) {
            continue;
          }
          double factor = keep[jj] ? p.dropout.keepScale() : 0;
          double dp = 0;
          if (factor != 0) {
            double pd = pr * factor;
            double dot = 0;
            for (int c = 0; c < ev; c++) {
              gv[jj * ev + c] += pd * go[c];
              dot += go[c] * vd[jj * ev + c];
            }
            dp = dot * factor;
          }
          double ds = pr * (dp - delta[row]) * p.scale;
          for (int c = 0; c < e; c++) {
            gk[jj * e + c] += ds * q[c];
          }
        }
      }
    }
    for (int jj = 0; jj < nk; jj++) {
      Strided.write(dk.type(), dk.segment(), dk.row(b, kvh, j0 + jj), dk.s3(), e, gk, jj * e, 1.0);
      Strided.write(dv.type(), dv.segment(), dv.row(b, kvh, j0 + jj), dv.s3(), ev, gv, jj * ev, 1.0);
    }
  }

  /** Second pass, task {@code t}: dQ of one query tile. */
  void runQueries(int t) {
    int tiles = (p.lq + TILE - 1) / TILE;
    int bh = t / tiles;
    int b = bh / p.hq;
    int h = bh % p.hq;
    int i0 = (t % tiles) * TILE;
    int rows = Math.min(TILE, p.lq - i0);
    int kvh = p.kvHead(h);
    int e = p.e;
    int ev = p.ev;
    double[] q = new double[rows * e];
    double[] go = new double[rows * ev];
    double[] gq = new double[rows * e];
    double[] kd = new double[TILE * e];
    double[] vd = new double[TILE * ev];
    boolean[] keep = new boolean[TILE];
    Arrays.fill(keep, true);
    for (int r = 0; r < rows; r++) {
      Strided.read(p.q.type(), p.q.segment(), p.q.row(b, h, i0 + r), p.q.s3(), e, q, r * e);
      Strided.read(dOut.type(), dOut.segment(), dOut.row(b, h, i0 + r), dOut.s3(), ev, go, r * ev);
    }
    int keyEnd = p.keyLimit(i0 + rows - 1);
    for (int j0 = 0; j0 < keyEnd; j0 += TILE) {
      int nk = Math.min(TILE, keyEnd - j0);
      packKeys(b, kvh, j0, nk, kd, vd);
      for (int r = 0; r < rows; r++) {
        int i = i0 + r;
        int row = (b * p.hq + h) * p.lq + i;
        int lim = Math.min(p.keyLimit(i) - j0, nk);
        if (lse[row] == Double.NEGATIVE_INFINITY || lim <= 0) {
          continue;
        }
        if (p.seed != null) {
          p.dropout.keepRow(p.seed, b, h, p.hq, i, j0, lim, keep);
        }
        for (int jj = 0; jj < lim; jj++) {
          double pr = probability(b, h, i, j0 + jj, row, q, kd, jj * e, r * e);
          if (pr == 0) {
            continue;
          }
          double dp = 0;
          if (keep[jj]) {
            double dot = 0;
            for (int c = 0; c < ev; c++) {
              dot += go[r * ev + c] * vd[jj * ev + c];
            }
            dp = dot * p.dropout.keepScale();
          }
          double ds = pr * (dp - delta[row]) * p.scale;
          for (int c = 0; c < e; c++) {
            gq[r * e + c] += ds * kd[jj * e + c];
          }
        }
      }
    }
    for (int r = 0; r < rows; r++) {
      Strided.write(dq.type(), dq.segment(), dq.row(b, h, i0 + r), dq.s3(), e, gq, r * e, 1.0);
    }
  }

  private void packKeys(int b, int kvh, int j0, int nk, double[] kd, double[] vd) {
    for (int jj = 0; jj < nk; jj++) {
      Strided.read(p.k.type(), p.k.segment(), p.k.row(b, kvh, j0 + jj), p.k.s3(), p.e, kd, jj * p.e);
      Strided.read(p.v.type(), p.v.segment(), p.v.row(b, kvh, j0 + jj), p.v.s3(), p.ev, vd, jj * p.ev);
    }
  }

  private double probability(int b, int h, int i, int j, int row, double[] q, double[] kd, int kOff) {
    return probability(b, h, i, j, row, q, kd, kOff, 0);
  }

  /** {@code exp(S_ij - LSE_i)}, 0 where the mask hides key j; causality is handled by the callers' limits. */
  private double probability(int b, int h, int i, int j, int row, double[] q, double[] kd, int kOff, int qOff) {
    double bias = p.hasTensorMask() ? p.bias(b, h, i, j) : 0;
    if (bias == Double.NEGATIVE_INFINITY) {
      return 0;
    }
    double dot = 0;
    for (int c = 0; c < p.e; c++) {
      dot += q[qOff + c] * kd[kOff + c];
    }
    return Math.exp(dot * p.scale + bias - lse[row]);
  }
}
