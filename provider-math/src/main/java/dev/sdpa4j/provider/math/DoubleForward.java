package dev.sdpa4j.provider.math;

import java.util.Arrays;

/**
 * The float64 forward kernel for {@link dev.sdpa4j.DType#FLOAT64} inputs: the same tiling and online softmax as
 * {@link FloatForward} in double precision, with scalar loops. A task owns {@link #TASK_ROWS} query rows of one
 * (batch, head) and walks tiles of {@link #TILE_KEYS} keys; memory does not grow with the key length.
 */
final class DoubleForward {
  static final int TASK_ROWS = 32;
  static final int TILE_KEYS = 64;

  private final Problem p;

  DoubleForward(Problem p) {
    this.p = p;
  }

  int tasks() {
    return p.batch * p.hq * tilesPerHead();
  }

  private int tilesPerHead() {
    return (p.lq + TASK_ROWS - 1) / TASK_ROWS;
  }

  void run(int t) {
    int tiles = tilesPerHead();
    int bh = t / tiles;
    int b = bh / p.hq;
    int h = bh % p.hq;
    int i0 = (t % tiles) * TASK_ROWS;
    int rows = Math.min(TASK_ROWS, p.lq - i0);
    int kvh = p.kvHead(h);
    int e = p.e;
    int ev = p.ev;
    double[] q = new double[rows * e];
    double[] o = new double[rows * ev];
    double[] m = new double[rows];
    double[] l = new double[rows];
    double[] kd = new double[TILE_KEYS * e];
    double[] vd = new double[TILE_KEYS * ev];
    double[] s = new double[TILE_KEYS];
    boolean[] keep = new boolean[TILE_KEYS];
    Arrays.fill(m, Double.NEGATIVE_INFINITY);
    Arrays.fill(keep, true);
    for (int r = 0; r < rows; r++) {
      Strided.read(p.q.type(), p.q.segment(), p.q.row(b, h, i0 + r), p.q.s3(), e, q, r * e);
    }
    int keyEnd = p.keyLimit(i0 + rows - 1);
    for (int j0 = 0; j0 < keyEnd; j0 += TILE_KEYS) {
      int nk = Math.min(TILE_KEYS, keyEnd - j0);
      for (int jj = 0; jj < nk; jj++) {
        Strided.read(p.k.type(), p.k.segment(), p.k.row(b, kvh, j0 + jj), p.k.s3(), e, kd, jj * e);
        Strided.read(p.v.type(), p.v.segment(), p.v.row(b, kvh, j0 + jj), p.v.s3(), ev, vd, jj * ev);
      }
      for (int r = 0; r < rows; r++) {
        int i = i0 + r;
        int lim = Math.min(p.keyLimit(i) - j0, nk);
        if (lim <= 0) {
          continue;
        }
        double mx = m[r];
        for (int jj = 0; jj < lim; jj++) {
          double bias = p.hasTensorMask() ? p.bias(b, h, i, j0 + jj) : 0;
          if (bias == Double.NEGATIVE_INFINITY) {
            s[jj] = Double.NEGATIVE_INFINITY;
            continue;
          }
          double dot = 0;
          for (int c = 0; c < e; c++) {
            dot += q[r * e + c] * kd[jj * e + c];
          }
          s[jj] = dot * p.scale + bias;
          mx = Math.max(mx, s[jj]);
        }
        if (mx == Double.NEGATIVE_INFINITY) {
          continue;
        }
        double alpha = Math.exp(m[r] - mx);
        l[r] *= alpha;
        for (int c = 0; c < ev; c++) {
          o[r * ev + c] *= alpha;
        }
        if (p.seed != null) {
          p.dropout.keepRow(p.seed, b, h, p.hq, i, j0, lim, keep);
        }
        for (int jj = 0; jj < lim; jj++) {
          double pr = Math.exp(s[jj] - mx);
          l[r] += pr;
          if (pr != 0 && keep[jj]) {
            for (int c = 0; c < ev; c++) {
              o[r * ev + c] += pr * vd[jj * ev + c];
            }
          }
        }
        m[r] = mx;
      }
    }
    for (int r = 0; r < rows; r++) {
      long at = p.out.row(b, h, i0 + r);
      if (m[r] == Double.NEGATIVE_INFINITY) {
        Strided.write(p.out.type(), p.out.segment(), at, p.out.s3(), ev, o, r * ev, 0.0);
        p.writeLse(b, h, i0 + r, Float.NEGATIVE_INFINITY);
      } else {
        Strided.write(p.out.type(), p.out.segment(), at, p.out.s3(), ev, o, r * ev, p.dropout.keepScale() / l[r]);
        p.writeLse(b, h, i0 + r, (float) (m[r] + Math.log(l[r])));
      }
    }
  }
}
