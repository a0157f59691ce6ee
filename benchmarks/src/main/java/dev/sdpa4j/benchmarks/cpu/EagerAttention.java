package dev.sdpa4j.benchmarks.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Eager attention on the CPU, the way PyTorch's eager code (and the post's {@code eager_sdpa}) computes it: the
 * scores {@code S = scale·Q·Kᵀ} are materialised as {@code [B, H, L, L]} floats, {@code P = softmax(S)} is a second
 * {@code [B, H, L, L]} buffer, then {@code O = P·V}; the backward materialises {@code dP} and {@code dS} likewise.
 * Memory is therefore {@code 2·B·H·L²} floats beyond the inputs, the post's {@code 2·N² + N·d} per head.
 *
 * <p>Not a strawman: every product is a register-blocked {@code jdk.incubator.vector} kernel (4 rows at a time,
 * FMA over the widest vector the machine has), the softmax uses the vector {@code exp}, and the work is split over
 * batch × heads × row blocks on a fork-join pool of {@code threads} threads. Like PyTorch's eager path it computes
 * the full {@code Q·Kᵀ} and {@code P·V} products when causal, masking the scores in the softmax.
 *
 * <p>Tensors are contiguous float arrays {@code [B, H, L, E]}; Lq = Lk = L, Ev = E. Instances are thread-safe
 * (no mutable state besides the pool).
 */
public final class EagerAttention {
  /** The machine's widest float vectors (constants, so that C2 compiles every vector operation to instructions). */
  private static final VectorSpecies<Float> WIDE = FloatVector.SPECIES_PREFERRED;
  /** Half as wide, for head dims that are not a multiple of {@link #WIDE}'s length (E = 8 with 512-bit vectors). */
  private static final VectorSpecies<Float> NARROW =
      WIDE.length() > 8 ? FloatVector.SPECIES_256 : FloatVector.SPECIES_128;
  private static final int ROW_BLOCK = 64;

  private final Parallel parallel;

  /** An eager implementation running on {@code threads} threads. */
  public EagerAttention(int threads) {
    if (threads < 1) {
      throw new IllegalArgumentException("threads must be >= 1, got " + threads);
    }
    this.parallel = new Parallel(threads);
  }

  public int threads() {
    return parallel.threads();
  }

  /** Bytes of the score buffers the forward materialises: {@code S} and {@code P}, {@code 2·B·H·L²} floats. */
  public static long forwardScoreBytes(int batch, int heads, int seqLen) {
    return 2L * batch * heads * seqLen * seqLen * Float.BYTES;
  }

  /**
   * The forward pass. Writes {@code out}; returns the probabilities {@code P} ({@code [B·H][L·L]}), which a training
   * step keeps for the backward (as autograd does).
   *
   * @throws OutOfMemoryError when the heap cannot hold the score buffers
   */
  public float[][] forward(float[] q, float[] k, float[] v, float[] out, int batch, int heads, int seqLen,
      int headDim, float scale, boolean causal) {
    int bh = batch * heads;
    int l = seqLen;
    int e = headDim;
    checkSizes(q.length, k.length, v.length, out.length, bh, l, e);
    float[][] s = new float[bh][];
    float[][] p = new float[bh][];
    for (int i = 0; i < bh; i++) {
      s[i] = new float[Math.multiplyExact(l, l)];
      p[i] = new float[l * l];
    }
    float[][] kt = transposeAll(k, bh, l, e);
    int blocks = (l + ROW_BLOCK - 1) / ROW_BLOCK;
    // three separate passes over the whole score matrix, as three eager operators would make
    parallel.forEach(bh * blocks, t -> {
      int h = t / blocks;
      int r0 = (t % blocks) * ROW_BLOCK;
      abT(q, h * l * e, kt[h], s[h], l, e, r0, Math.min(l, r0 + ROW_BLOCK), scale);
    });
    parallel.forEach(bh * blocks, t -> {
      int h = t / blocks;
      int r0 = (t % blocks) * ROW_BLOCK;
      softmaxRows(s[h], p[h], l, r0, Math.min(l, r0 + ROW_BLOCK), causal);
    });
    parallel.forEach(bh * blocks, t -> {
      int h = t / blocks;
      int r0 = (t % blocks) * ROW_BLOCK;
      pv(p[h], v, h * l * e, out, h * l * e, l, e, r0, Math.min(l, r0 + ROW_BLOCK));
    });
    return p;
  }

  /**
   * The backward pass after {@link #forward}: from {@code P}, the output {@code out} and its gradient {@code dOut},
   * writes {@code dq}, {@code dk}, {@code dv}. Materialises {@code dP = dO·Vᵀ} and {@code dS = P ⊙ (dP − rowsum(dO ⊙
   * O))}, {@code B·H·L²} floats, in one more buffer.
   */
  public void backward(float[] q, float[] k, float[] v, float[] out, float[][] p, float[] dOut, float[] dq,
      float[] dk, float[] dv, int batch, int heads, int seqLen, int headDim, float scale) {
    int bh = batch * heads;
    int l = seqLen;
    int e = headDim;
    checkSizes(q.length, k.length, v.length, out.length, bh, l, e);
    checkSizes(dOut.length, dq.length, dk.length, dv.length, bh, l, e);
    float[][] ds = new float[bh][];
    for (int i = 0; i < bh; i++) {
      ds[i] = new float[Math.multiplyExact(l, l)];
    }
    float[][] vt = transposeAll(v, bh, l, e);
    int blocks = (l + ROW_BLOCK - 1) / ROW_BLOCK;
    // dP = dO·Vᵀ, then dS = scale · P ⊙ (dP − D) in place, row block by row block
    parallel.forEach(bh * blocks, t -> {
      int h = t / blocks;
      int r0 = (t % blocks) * ROW_BLOCK;
      int r1 = Math.min(l, r0 + ROW_BLOCK);
      int base = h * l * e;
      abT(dOut, base, vt[h], ds[h], l, e, r0, r1, 1f);
      for (int i = r0; i < r1; i++) {
        float d = dot(dOut, base + i * e, out, base + i * e, e);
        dsRow(p[h], ds[h], i * l, l, d, scale);
      }
    });
    // dQ = dS·K (rows of dS), dV = Pᵀ·dO and dK = dSᵀ·Q (columns of P and dS)
    parallel.forEach(bh * blocks, t -> {
      int h = t / blocks;
      int r0 = (t % blocks) * ROW_BLOCK;
      int r1 = Math.min(l, r0 + ROW_BLOCK);
      int base = h * l * e;
      pv(ds[h], k, base, dq, base, l, e, r0, r1);
      ptx(p[h], dOut, base, dv, base, l, e, r0, r1);
      ptx(ds[h], q, base, dk, base, l, e, r0, r1);
    });
  }

  private static void checkSizes(int a, int b, int c, int d, int bh, int l, int e) {
    long n = (long) bh * l * e;
    if (a != n || b != n || c != n || d != n) {
      throw new IllegalArgumentException("every tensor must hold B·H·L·E = " + n + " floats, got " + a + ", " + b
          + ", " + c + ", " + d);
    }
  }

  private float[][] transposeAll(float[] x, int bh, int l, int e) {
    float[][] t = new float[bh][l * e];
    parallel.forEach(bh, h -> {
      int base = h * l * e;
      float[] th = t[h];
      for (int j = 0; j < l; j++) {
        for (int c = 0; c < e; c++) {
          th[c * l + j] = x[base + j * e + c];
        }
      }
    });
    return t;
  }

  /**
   * {@code C[i, :] = scale · A[i, :]·Bᵀ} for rows {@code [r0, r1)}, with {@code bt} = Bᵀ as {@code [E, L]} and
   * {@code C} as {@code [L, L]}: 4 rows × 2 vectors of columns per step, FMA over E.
   */
  static void abT(float[] a, int aBase, float[] bt, float[] c, int l, int e, int r0, int r1, float scale) {
    int vl = WIDE.length();
    int jVec = l - l % (2 * vl);
    int i = r0;
    for (; i + 4 <= r1; i += 4) {
      int a0 = aBase + i * e;
      int a1 = a0 + e;
      int a2 = a1 + e;
      int a3 = a2 + e;
      for (int j = 0; j < jVec; j += 2 * vl) {
        FloatVector c00 = FloatVector.zero(WIDE);
        FloatVector c01 = FloatVector.zero(WIDE);
        FloatVector c10 = FloatVector.zero(WIDE);
        FloatVector c11 = FloatVector.zero(WIDE);
        FloatVector c20 = FloatVector.zero(WIDE);
        FloatVector c21 = FloatVector.zero(WIDE);
        FloatVector c30 = FloatVector.zero(WIDE);
        FloatVector c31 = FloatVector.zero(WIDE);
        for (int x = 0; x < e; x++) {
          FloatVector b0 = FloatVector.fromArray(WIDE, bt, x * l + j);
          FloatVector b1 = FloatVector.fromArray(WIDE, bt, x * l + j + vl);
          FloatVector q0 = FloatVector.broadcast(WIDE, a[a0 + x]);
          FloatVector q1 = FloatVector.broadcast(WIDE, a[a1 + x]);
          FloatVector q2 = FloatVector.broadcast(WIDE, a[a2 + x]);
          FloatVector q3 = FloatVector.broadcast(WIDE, a[a3 + x]);
          c00 = q0.fma(b0, c00);
          c01 = q0.fma(b1, c01);
          c10 = q1.fma(b0, c10);
          c11 = q1.fma(b1, c11);
          c20 = q2.fma(b0, c20);
          c21 = q2.fma(b1, c21);
          c30 = q3.fma(b0, c30);
          c31 = q3.fma(b1, c31);
        }
        int o = i * l + j;
        c00.mul(scale).intoArray(c, o);
        c01.mul(scale).intoArray(c, o + vl);
        c10.mul(scale).intoArray(c, o + l);
        c11.mul(scale).intoArray(c, o + l + vl);
        c20.mul(scale).intoArray(c, o + 2 * l);
        c21.mul(scale).intoArray(c, o + 2 * l + vl);
        c30.mul(scale).intoArray(c, o + 3 * l);
        c31.mul(scale).intoArray(c, o + 3 * l + vl);
      }
      for (int r = 0; r < 4; r++) {
        for (int j = jVec; j < l; j++) {
          c[(i + r) * l + j] = scale * dotStrided(a, aBase + (i + r) * e, bt, j, l, e);
        }
      }
    }
    for (; i < r1; i++) {
      for (int j = 0; j < l; j++) {
        c[i * l + j] = scale * dotStrided(a, aBase + i * e, bt, j, l, e);
      }
    }
  }

  private static float dotStrided(float[] a, int aOff, float[] bt, int j, int l, int e) {
    float s = 0;
    for (int x = 0; x < e; x++) {
      s += a[aOff + x] * bt[x * l + j];
    }
    return s;
  }

  /**
   * {@code P[i, :] = softmax(S[i, :])} for rows {@code [r0, r1)}; causal keeps keys {@code j <= i} and writes 0
   * beyond.
   */
  static void softmaxRows(float[] s, float[] p, int l, int r0, int r1, boolean causal) {
    int vl = WIDE.length();
    for (int i = r0; i < r1; i++) {
      int row = i * l;
      int n = causal ? i + 1 : l;
      int nVec = n - n % vl;
      FloatVector mv = FloatVector.broadcast(WIDE, Float.NEGATIVE_INFINITY);
      for (int j = 0; j < nVec; j += vl) {
        mv = mv.max(FloatVector.fromArray(WIDE, s, row + j));
      }
      float max = mv.reduceLanes(VectorOperators.MAX);
      for (int j = nVec; j < n; j++) {
        max = Math.max(max, s[row + j]);
      }
      FloatVector sum = FloatVector.zero(WIDE);
      for (int j = 0; j < nVec; j += vl) {
        FloatVector x = FloatVector.fromArray(WIDE, s, row + j).sub(max).lanewise(VectorOperators.EXP);
        x.intoArray(p, row + j);
        sum = sum.add(x);
      }
      float total = sum.reduceLanes(VectorOperators.ADD);
      for (int j = nVec; j < n; j++) {
        float x = (float) Math.exp(s[row + j] - max);
        p[row + j] = x;
        total += x;
      }
      float inv = 1f / total;
      for (int j = 0; j < nVec; j += vl) {
        FloatVector.fromArray(WIDE, p, row + j).mul(inv).intoArray(p, row + j);
      }
      for (int j = nVec; j < n; j++) {
        p[row + j] *= inv;
      }
      for (int j = n; j < l; j++) {
        p[row + j] = 0f;
      }
    }
  }

  /** {@code dS[i, j] = scale · P[i, j] · (dP[i, j] − d)} in place over {@code dP}, one row. */
  private static void dsRow(float[] p, float[] dp, int row, int l, float d, float scale) {
    int vl = WIDE.length();
    int nVec = l - l % vl;
    for (int j = 0; j < nVec; j += vl) {
      FloatVector pv = FloatVector.fromArray(WIDE, p, row + j);
      FloatVector.fromArray(WIDE, dp, row + j).sub(d).mul(pv).mul(scale).intoArray(dp, row + j);
    }
    for (int j = nVec; j < l; j++) {
      dp[row + j] = scale * p[row + j] * (dp[row + j] - d);
    }
  }

  private static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
    float s = 0;
    int x = 0;
    if (n >= NARROW.length()) {
      FloatVector acc = FloatVector.zero(NARROW);
      for (; x + NARROW.length() <= n; x += NARROW.length()) {
        acc = FloatVector.fromArray(NARROW, a, aOff + x).fma(FloatVector.fromArray(NARROW, b, bOff + x), acc);
      }
      s = acc.reduceLanes(VectorOperators.ADD);
    }
    for (; x < n; x++) {
      s += a[aOff + x] * b[bOff + x];
    }
    return s;
  }

  /**
   * {@code O[i, :] = P[i, :]·X} for rows {@code [r0, r1)} ({@code P [L, L]}, {@code X [L, E]}): 4 rows per step,
   * FMA over E in the widest species that fits E.
   */
  static void pv(float[] p, float[] x, int xBase, float[] o, int oBase, int l, int e, int r0, int r1) {
    if (e % WIDE.length() == 0) {
      pvWide(p, x, xBase, o, oBase, l, e, r0, r1);
    } else if (e % NARROW.length() == 0) {
      pvNarrow(p, x, xBase, o, oBase, l, e, r0, r1);
    } else {
      for (int r = r0; r < r1; r++) {
        pvScalarTail(p, x, xBase, o, oBase, l, e, r, 0);
      }
    }
  }

  /** {@link #pv} with the widest vectors (E a multiple of their length); the species is a constant for C2. */
  private static void pvWide(float[] p, float[] x, int xBase, float[] o, int oBase, int l, int e, int r0, int r1) {
    int vl = WIDE.length();
    int eVec = e - e % vl;
    int i = r0;
    for (; i + 4 <= r1; i += 4) {
      int p0 = i * l;
      for (int c = 0; c < eVec; c += vl) {
        FloatVector acc0 = FloatVector.zero(WIDE);
        FloatVector acc1 = FloatVector.zero(WIDE);
        FloatVector acc2 = FloatVector.zero(WIDE);
        FloatVector acc3 = FloatVector.zero(WIDE);
        for (int j = 0; j < l; j++) {
          FloatVector xv = FloatVector.fromArray(WIDE, x, xBase + j * e + c);
          acc0 = xv.fma(FloatVector.broadcast(WIDE, p[p0 + j]), acc0);
          acc1 = xv.fma(FloatVector.broadcast(WIDE, p[p0 + l + j]), acc1);
          acc2 = xv.fma(FloatVector.broadcast(WIDE, p[p0 + 2 * l + j]), acc2);
          acc3 = xv.fma(FloatVector.broadcast(WIDE, p[p0 + 3 * l + j]), acc3);
        }
        int oo = oBase + i * e + c;
        acc0.intoArray(o, oo);
        acc1.intoArray(o, oo + e);
        acc2.intoArray(o, oo + 2 * e);
        acc3.intoArray(o, oo + 3 * e);
      }
      for (int r = 0; r < 4; r++) {
        pvScalarTail(p, x, xBase, o, oBase, l, e, i + r, eVec);
      }
    }
    for (; i < r1; i++) {
      pvScalarTail(p, x, xBase, o, oBase, l, e, i, 0);
    }
  }

  /** {@link #pv} with half-width vectors, for head dims such as 8. */
  private static void pvNarrow(float[] p, float[] x, int xBase, float[] o, int oBase, int l, int e, int r0, int r1) {
    int vl = NARROW.length();
    int eVec = e - e % vl;
    int i = r0;
    for (; i + 4 <= r1; i += 4) {
      int p0 = i * l;
      for (int c = 0; c < eVec; c += vl) {
        FloatVector acc0 = FloatVector.zero(NARROW);
        FloatVector acc1 = FloatVector.zero(NARROW);
        FloatVector acc2 = FloatVector.zero(NARROW);
        FloatVector acc3 = FloatVector.zero(NARROW);
        for (int j = 0; j < l; j++) {
          FloatVector xv = FloatVector.fromArray(NARROW, x, xBase + j * e + c);
          acc0 = xv.fma(FloatVector.broadcast(NARROW, p[p0 + j]), acc0);
          acc1 = xv.fma(FloatVector.broadcast(NARROW, p[p0 + l + j]), acc1);
          acc2 = xv.fma(FloatVector.broadcast(NARROW, p[p0 + 2 * l + j]), acc2);
          acc3 = xv.fma(FloatVector.broadcast(NARROW, p[p0 + 3 * l + j]), acc3);
        }
        int oo = oBase + i * e + c;
        acc0.intoArray(o, oo);
        acc1.intoArray(o, oo + e);
        acc2.intoArray(o, oo + 2 * e);
        acc3.intoArray(o, oo + 3 * e);
      }
      for (int r = 0; r < 4; r++) {
        pvScalarTail(p, x, xBase, o, oBase, l, e, i + r, eVec);
      }
    }
    for (; i < r1; i++) {
      pvScalarTail(p, x, xBase, o, oBase, l, e, i, 0);
    }
  }

  private static void pvScalarTail(float[] p, float[] x, int xBase, float[] o, int oBase, int l, int e, int i,
      int from) {
    for (int c = from; c < e; c++) {
      float s = 0;
      for (int j = 0; j < l; j++) {
        s += p[i * l + j] * x[xBase + j * e + c];
      }
      o[oBase + i * e + c] = s;
    }
  }

  /**
   * {@code O[j, :] = Σ_i P[i, j]·X[i, :]} (that is {@code Pᵀ·X}) for output rows {@code j} in {@code [r0, r1)}: 4
   * output rows per step.
   */
  static void ptx(float[] p, float[] x, int xBase, float[] o, int oBase, int l, int e, int r0, int r1) {
    if (e % WIDE.length() == 0) {
      ptxWide(p, x, xBase, o, oBase, l, e, r0, r1);
    } else if (e % NARROW.length() == 0) {
      ptxNarrow(p, x, xBase, o, oBase, l, e, r0, r1);
    } else {
      for (int r = r0; r < r1; r++) {
        ptxScalarTail(p, x, xBase, o, oBase, l, e, r, 0);
      }
    }
  }

  /** {@link #ptx} with the widest vectors (E a multiple of their length); the species is a constant for C2. */
  private static void ptxWide(float[] p, float[] x, int xBase, float[] o, int oBase, int l, int e, int r0, int r1) {
    int vl = WIDE.length();
    int eVec = e - e % vl;
    int j = r0;
    for (; j + 4 <= r1; j += 4) {
      for (int c = 0; c < eVec; c += vl) {
        FloatVector acc0 = FloatVector.zero(WIDE);
        FloatVector acc1 = FloatVector.zero(WIDE);
        FloatVector acc2 = FloatVector.zero(WIDE);
        FloatVector acc3 = FloatVector.zero(WIDE);
        for (int i = 0; i < l; i++) {
          FloatVector xv = FloatVector.fromArray(WIDE, x, xBase + i * e + c);
          int pi = i * l + j;
          acc0 = xv.fma(FloatVector.broadcast(WIDE, p[pi]), acc0);
          acc1 = xv.fma(FloatVector.broadcast(WIDE, p[pi + 1]), acc1);
          acc2 = xv.fma(FloatVector.broadcast(WIDE, p[pi + 2]), acc2);
          acc3 = xv.fma(FloatVector.broadcast(WIDE, p[pi + 3]), acc3);
        }
        int oo = oBase + j * e + c;
        acc0.intoArray(o, oo);
        acc1.intoArray(o, oo + e);
        acc2.intoArray(o, oo + 2 * e);
        acc3.intoArray(o, oo + 3 * e);
      }
      for (int r = 0; r < 4; r++) {
        ptxScalarTail(p, x, xBase, o, oBase, l, e, j + r, eVec);
      }
    }
    for (; j < r1; j++) {
      ptxScalarTail(p, x, xBase, o, oBase, l, e, j, 0);
    }
  }

  /** {@link #ptx} with half-width vectors, for head dims such as 8. */
  private static void ptxNarrow(float[] p, float[] x, int xBase, float[] o, int oBase, int l, int e, int r0, int r1) {
    int vl = NARROW.length();
    int eVec = e - e % vl;
    int j = r0;
    for (; j + 4 <= r1; j += 4) {
      for (int c = 0; c < eVec; c += vl) {
        FloatVector acc0 = FloatVector.zero(NARROW);
        FloatVector acc1 = FloatVector.zero(NARROW);
        FloatVector acc2 = FloatVector.zero(NARROW);
        FloatVector acc3 = FloatVector.zero(NARROW);
        for (int i = 0; i < l; i++) {
          FloatVector xv = FloatVector.fromArray(NARROW, x, xBase + i * e + c);
          int pi = i * l + j;
          acc0 = xv.fma(FloatVector.broadcast(NARROW, p[pi]), acc0);
          acc1 = xv.fma(FloatVector.broadcast(NARROW, p[pi + 1]), acc1);
          acc2 = xv.fma(FloatVector.broadcast(NARROW, p[pi + 2]), acc2);
          acc3 = xv.fma(FloatVector.broadcast(NARROW, p[pi + 3]), acc3);
        }
        int oo = oBase + j * e + c;
        acc0.intoArray(o, oo);
        acc1.intoArray(o, oo + e);
        acc2.intoArray(o, oo + 2 * e);
        acc3.intoArray(o, oo + 3 * e);
      }
      for (int r = 0; r < 4; r++) {
        ptxScalarTail(p, x, xBase, o, oBase, l, e, j + r, eVec);
      }
    }
    for (; j < r1; j++) {
      ptxScalarTail(p, x, xBase, o, oBase, l, e, j, 0);
    }
  }

  private static void ptxScalarTail(float[] p, float[] x, int xBase, float[] o, int oBase, int l, int e, int j,
      int from) {
    for (int c = from; c < e; c++) {
      float s = 0;
      for (int i = 0; i < l; i++) {
        s += p[i * l + j] * x[xBase + i * e + c];
      }
      o[oBase + j * e + c] = s;
    }
  }
}
