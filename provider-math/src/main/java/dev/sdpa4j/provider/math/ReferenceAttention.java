package dev.sdpa4j.provider.math;

import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.AttentionShape;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.CausalMode;
import dev.sdpa4j.DType;
import dev.sdpa4j.Dropout;
import dev.sdpa4j.DropoutSeed;
import dev.sdpa4j.MaskKind;
import dev.sdpa4j.Tensor;
import java.lang.foreign.MemorySegment;

/**
 * The reference every provider is judged against: plain eager attention that materialises each score row, computed
 * in float64 from the inputs' values. It reads the request's input tensors (host memory) and ignores the contents of
 * its output and LSE tensors; it writes nothing.
 *
 * <p>For query row {@code (b, h, i)} and key {@code j} (key/value head {@code h / (Hq / Hkv)}):
 * <ul>
 *   <li>key {@code j} takes part unless causality forbids it, a boolean mask is false there, or an additive mask is
 *       infinite there ({@code -inf} and {@code +inf} both mask);</li>
 *   <li>{@code s_j = scale · (q_i · k_j)} plus the additive mask's value; {@code LSE = log Σ exp(s_j)} and
 *       {@code p_j = exp(s_j − LSE)} over the keys that take part, {@code p_j = 0} for the others;</li>
 *   <li>dropout ({@link Dropout}, at the request's resolution) gives {@code p'_j = p_j} times the mask's keep scale
 *       ({@code 1 / (1 − p)} at WORD resolution) where kept and 0 where dropped;</li>
 *   <li>{@code o_i = Σ p'_j v_j} over the keys with {@code p'_j != 0}, so a NaN or infinity in a value row reaches
 *       only the outputs that use it;</li>
 *   <li>a row in which no key takes part gives output zeros, LSE {@code -inf} and zero gradients.</li>
 * </ul>
 *
 * <p>{@code precision} {@link DType#FLOAT64} is the exact reference. {@link DType#FLOAT32}, {@link DType#FLOAT16} and
 * {@link DType#BFLOAT16} run the same algorithm the way an eager framework does in that type: each intermediate
 * (score, masked score, probability, dropped probability, each product's result, each gradient) is rounded to it
 * with {@link DType#round} (products accumulate exactly, then round once). The LSE is then rounded to float32.
 * These emulate PyTorch's math backend, to derive tolerances for low-precision providers.
 */
public final class ReferenceAttention {
  private ReferenceAttention() {}

  /**
   * A forward result.
   *
   * @param output contiguous {@code [B, Hq, Lq, Ev]}
   * @param lse    contiguous {@code [B, Hq, Lq]}, natural log; {@code -inf} for a fully masked row
   */
  public record Forward(double[] output, double[] lse) {}

  /**
   * Gradients of a backward call, each contiguous in the shape of its input.
   *
   * @param query dQ {@code [B, Hq, Lq, E]}
   * @param key   dK {@code [B, Hkv, Lk, E]}, summed over each grouped-query group
   * @param value dV {@code [B, Hkv, Lk, Ev]}, summed over each grouped-query group
   */
  public record Gradients(double[] query, double[] key, double[] value) {}

  /** The forward pass of {@code r} at {@code precision}. */
  public static Forward forward(AttentionRequest r, DType precision) {
    Problem pr = new Problem(r, precision);
    double[] out = new double[Math.multiplyExact(pr.rows, pr.ev)];
    double[] lse = new double[pr.rows];
    for (int b = 0; b < pr.batch; b++) {
      for (int h = 0; h < pr.hq; h++) {
        for (int i = 0; i < pr.lq; i++) {
          int row = (b * pr.hq + h) * pr.lq + i;
          Row p = pr.row(b, h, i);
          lse[row] = p.lse;
          if (p.fullyMasked) {
            continue;
          }
          int vBase = pr.kvRowBase(b, h) * pr.ev;
          for (int c = 0; c < pr.ev; c++) {
            double acc = 0;
            for (int j = 0; j < pr.lk; j++) {
              if (p.dropped[j] != 0) {
                acc += p.dropped[j] * pr.v[vBase + j * pr.ev + c];
              }
            }
            out[row * pr.ev + c] = pr.round(acc);
          }
        }
      }
    }
    return new Forward(out, lse);
  }

  /**
   * The backward pass of {@code r} at {@code precision}: recomputes the forward's probabilities from the inputs (the
   * forward's output and LSE tensors are not read) and regenerates its dropout mask.
   */
  public static Gradients backward(BackwardRequest r, DType precision) {
    Problem pr = new Problem(r.forward(), precision);
    double[] dOut = HostTensors.read4(r.gradOutput());
    double[] dq = new double[pr.q.length];
    double[] dk = new double[pr.k.length];
    double[] dv = new double[pr.v.length];
    double[] dp = new double[pr.lk];
    double[] ds = new double[pr.lk];
    for (int b = 0; b < pr.batch; b++) {
      for (int h = 0; h < pr.hq; h++) {
        int kvRow = pr.kvRowBase(b, h);
        for (int i = 0; i < pr.lq; i++) {
          Row p = pr.row(b, h, i);
          if (p.fullyMasked) {
            continue;
          }
          int row = (b * pr.hq + h) * pr.lq + i;
          int oBase = row * pr.ev;
          // dP_j = (dO_i · v_j) * dropout factor; D = Σ p_j dP_j (= dO_i · O_i)
          double d = 0;
          for (int j = 0; j < pr.lk; j++) {
            dp[j] = 0;
            if (p.dropped[j] != 0) {
              double dot = 0;
              int vBase = (kvRow + j) * pr.ev;
              for (int c = 0; c < pr.ev; c++) {
                dot += dOut[oBase + c] * pr.v[vBase + c];
              }
              dp[j] = pr.round(pr.round(dot) * p.factor[j]);
              d += p.probs[j] * dp[j];
            }
          }
          d = pr.round(d);
          for (int j = 0; j < pr.lk; j++) {
            ds[j] = p.probs[j] == 0 ? 0 : pr.round(p.probs[j] * pr.round(dp[j] - d));
          }
          int qBase = row * pr.e;
          for (int c = 0; c < pr.e; c++) {
            double acc = 0;
            for (int j = 0; j < pr.lk; j++) {
              if (ds[j] != 0) {
                acc += ds[j] * pr.k[(kvRow + j) * pr.e + c];
              }
            }
            dq[qBase + c] = pr.round(pr.round(acc) * pr.scale);
          }
          for (int j = 0; j < pr.lk; j++) {
            int kBase = (kvRow + j) * pr.e;
            if (ds[j] != 0) {
              for (int c = 0; c < pr.e; c++) {
                dk[kBase + c] += pr.scale * ds[j] * pr.q[qBase + c];
              }
            }
            int vBase = (kvRow + j) * pr.ev;
            if (p.dropped[j] != 0) {
              for (int c = 0; c < pr.ev; c++) {
                dv[vBase + c] += p.dropped[j] * dOut[oBase + c];
              }
            }
          }
        }
      }
    }
    for (int x = 0; x < dk.length; x++) {
      dk[x] = pr.round(dk[x]);
    }
    for (int x = 0; x < dv.length; x++) {
      dv[x] = pr.round(dv[x]);
    }
    return new Gradients(dq, dk, dv);
  }

  /**
   * One query row's softmax.
   *
   * @param probs       normalised probabilities, 0 where a key does not take part
   * @param factor      dropout factor per key: the keep scale kept, 0 dropped (1 everywhere without dropout)
   * @param dropped     {@code probs * factor}, rounded: what multiplies the value rows
   * @param lse         log-sum-exp of the scores; {@code -inf} when fully masked
   * @param fullyMasked true when no key takes part
   */
  private record Row(double[] probs, double[] factor, double[] dropped, double lse, boolean fullyMasked) {}

  /** A request's inputs read into float64 arrays, and the row computation shared by forward and backward. */
  private static final class Problem {
    final DType precision;
    final int batch;
    final int hq;
    final int group;
    final int hkv;
    final int lq;
    final int lk;
    final int e;
    final int ev;
    final int rows;
    final double scale;
    final double[] q;
    final double[] k;
    final double[] v;
    final CausalMode causal;
    final MaskKind maskKind;
    final Tensor mask;
    final MemorySegment maskSegment;
    final DropoutSeed seed;
    /** The request's dropout mask; its keep scale is 1 without dropout. */
    final Dropout.Mask dropout;

    Problem(AttentionRequest r, DType precision) {
      if (precision == null || !precision.isFloatingPoint()) {
        throw new IllegalArgumentException("precision must be fp64, fp32, fp16 or bf16, got " + precision);
      }
      this.precision = precision;
      AttentionShape s = r.shape();
      this.batch = Math.toIntExact(s.batch());
      this.hq = Math.toIntExact(s.queryHeads());
      this.hkv = Math.toIntExact(s.kvHeads());
      this.group = hq / hkv;
      this.lq = Math.toIntExact(s.queryLength());
      this.lk = Math.toIntExact(s.keyLength());
      this.e = Math.toIntExact(s.headDim());
      this.ev = Math.toIntExact(s.valueHeadDim());
      this.rows = Math.multiplyExact(Math.multiplyExact(batch, hq), lq);
      this.scale = r.scale();
      this.q = HostTensors.read4(r.query());
      this.k = HostTensors.read4(r.key());
      this.v = HostTensors.read4(r.value());
      this.causal = r.causal();
      this.maskKind = r.maskKind();
      this.mask = r.mask().orElse(null);
      this.maskSegment = mask == null ? null : mask.hostSegment();
      this.seed = r.dropoutSeed().orElse(null);
      this.dropout = r.dropoutMask();
    }

    double round(double x) {
      return precision.round(x);
    }

    /** Index of row 0 of the key/value head that query head {@code h} of batch {@code b} reads. */
    int kvRowBase(int b, int h) {
      return (b * hkv + h / group) * lk;
    }

    Row row(int b, int h, int i) {
      double[] scores = new double[lk];
      boolean[] takes = new boolean[lk];
      int qBase = ((b * hq + h) * lq + i) * e;
      int kvRow = kvRowBase(b, h);
      double max = Double.NEGATIVE_INFINITY;
      boolean any = false;
      for (int j = 0; j < lk; j++) {
        if (!causal.allows(i, j, lq, lk)) {
          continue;
        }
        double added = 0;
        if (maskKind == MaskKind.BOOLEAN && HostTensors.get4(mask, maskSegment, b, h, i, j) == 0) {
          continue;
        }
        if (maskKind == MaskKind.ADDITIVE) {
          added = HostTensors.get4(mask, maskSegment, b, h, i, j);
          if (Double.isInfinite(added)) {
            continue;
          }
        }
        double dot = 0;
        int kBase = (kvRow + j) * e;
        for (int c = 0; c < e; c++) {
          dot += q[qBase + c] * k[kBase + c];
        }
        double sc = round(round(dot) * scale);
        if (maskKind == MaskKind.ADDITIVE) {
          sc = round(sc + added);
        }
        scores[j] = sc;
        takes[j] = true;
        any = true;
        max = Math.max(max, sc);
      }
      double[] probs = new double[lk];
      double[] factor = new double[lk];
      double[] dropped = new double[lk];
      if (!any) {
        return new Row(probs, factor, dropped, Double.NEGATIVE_INFINITY, true);
      }
      double sum = 0;
      for (int j = 0; j < lk; j++) {
        if (takes[j]) {
          sum += Math.exp(scores[j] - max);
        }
      }
      double lse = max + Math.log(sum);
      if (precision != DType.FLOAT64) {
        lse = DType.FLOAT32.round(lse);
      }
      boolean[] keep = new boolean[lk];
      if (seed != null) {
        dropout.keepRow(seed, b, h, hq, i, 0, lk, keep);
      } else {
        java.util.Arrays.fill(keep, true);
      }
      for (int j = 0; j < lk; j++) {
        factor[j] = keep[j] ? dropout.keepScale() : 0;
        if (takes[j]) {
          probs[j] = round(Math.exp(scores[j] - max) / sum);
          dropped[j] = round(probs[j] * factor[j]);
        }
      }
      return new Row(probs, factor, dropped, lse, false);
    }
  }
}
