package dev.sdpa4j.benchmarks;

import java.util.Locale;

/**
 * One benchmarked problem: {@code B} batches of {@code H} heads, {@code Lq} queries against {@code Lk} keys
 * ({@code Lq = Lk} for self-attention; {@code Lq = 1} for a decode step), {@code E = Ev = headDim}, fp32 unless
 * stated, on the CPU or a device.
 *
 * @param batch   B
 * @param heads   H (query and key/value heads alike)
 * @param seqLen  Lq, the query length (and the key length of self-attention)
 * @param kvLen   Lk, the key/value length
 * @param headDim E (query, key and value head dim)
 * @param causal  causal masking (top-left), which halves the counted FLOPs
 * @param dtype   element type: {@code fp32}, {@code fp16} or {@code bf16}
 * @param pass    forward, or forward + backward
 * @param dropout dropout probability applied to the attention weights (0 for none)
 */
public record BenchCase(int batch, int heads, int seqLen, int kvLen, int headDim, boolean causal, String dtype,
                        Pass pass, double dropout) {

  public BenchCase {
    if (batch < 1 || heads < 1 || seqLen < 1 || kvLen < 1 || headDim < 1) {
      throw new IllegalArgumentException("every size must be >= 1: B=" + batch + " H=" + heads + " Lq=" + seqLen
          + " Lk=" + kvLen + " E=" + headDim);
    }
    if (!dtype.equals("fp32") && !dtype.equals("fp16") && !dtype.equals("bf16")) {
      throw new IllegalArgumentException("dtype must be fp32, fp16 or bf16, got " + dtype);
    }
    if (!(dropout >= 0 && dropout < 1)) {
      throw new IllegalArgumentException("dropout must be in [0, 1), got " + dropout);
    }
  }

  /** Self-attention ({@code Lq = Lk = seqLen}) without dropout. */
  public BenchCase(int batch, int heads, int seqLen, int headDim, boolean causal, String dtype, Pass pass) {
    this(batch, heads, seqLen, seqLen, headDim, causal, dtype, pass, 0);
  }

  /**
   * The FLOPs counted for this case: {@code 4·B·H·Lq·Lk·E} for the forward, halved when causal, times
   * {@link Pass#flopFactor()}. Dropout adds none.
   */
  public double flops() {
    double fwd = 4.0 * batch * heads * (double) seqLen * kvLen * headDim;
    return (causal ? fwd / 2 : fwd) * pass.flopFactor();
  }

  /** Bytes of one element. */
  public int elementBytes() {
    return dtype.equals("fp32") ? 4 : 2;
  }

  /** Bytes of one {@code [B, H, Lq, E]} tensor (query, output, their gradients). */
  public long tensorBytes() {
    return (long) batch * heads * seqLen * headDim * elementBytes();
  }

  /** Bytes of one {@code [B, H, Lk, E]} tensor (key, value, their gradients). */
  public long kvTensorBytes() {
    return (long) batch * heads * kvLen * headDim * elementBytes();
  }

  /** Bytes of one {@code [B, H, Lq, Lk]} matrix of scores in this case's dtype. */
  public long scoreBytes() {
    return (long) batch * heads * seqLen * (long) kvLen * elementBytes();
  }

  /** Whether queries and keys have the same length. */
  public boolean selfAttention() {
    return seqLen == kvLen;
  }

  /** The same case with another pass. */
  public BenchCase withPass(Pass p) {
    return new BenchCase(batch, heads, seqLen, kvLen, headDim, causal, dtype, p, dropout);
  }

  /** The same case with other lengths. */
  public BenchCase withLengths(int lq, int lk) {
    return new BenchCase(batch, heads, lq, lk, headDim, causal, dtype, pass, dropout);
  }

  /** The same case without dropout (what the output check compares). */
  public BenchCase withoutDropout() {
    return new BenchCase(batch, heads, seqLen, kvLen, headDim, causal, dtype, pass, 0);
  }

  /** One line for logs: {@code B=1 H=8 L=1024 E=64 causal fp32 fwd}, {@code B=8 H=16 Lq=1 Lk=4096 E=128 fp16 fwd}. */
  public String describe() {
    return "B=" + batch + " H=" + heads + (selfAttention() ? " L=" + seqLen : " Lq=" + seqLen + " Lk=" + kvLen)
        + " E=" + headDim + (causal ? " causal" : "") + " " + dtype + " " + pass.label()
        + (dropout > 0 ? String.format(Locale.ROOT, " dropout %.2g", dropout) : "");
  }
}
