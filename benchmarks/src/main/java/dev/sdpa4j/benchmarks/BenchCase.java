package dev.sdpa4j.benchmarks;

/**
 * One benchmarked problem: self-attention with {@code Lq = Lk = seqLen}, {@code E = Ev = headDim}, fp32 unless
 * stated, on the CPU or a device.
 *
 * @param batch   B
 * @param heads   H (query and key/value heads alike)
 * @param seqLen  L (query and key length)
 * @param headDim E (query, key and value head dim)
 * @param causal  causal masking (top-left), which halves the counted FLOPs
 * @param dtype   element type: {@code fp32}, {@code fp16} or {@code bf16}
 * @param pass    forward, or forward + backward
 */
public record BenchCase(int batch, int heads, int seqLen, int headDim, boolean causal, String dtype, Pass pass) {

  public BenchCase {
    if (batch < 1 || heads < 1 || seqLen < 1 || headDim < 1) {
      throw new IllegalArgumentException("every size must be >= 1: B=" + batch + " H=" + heads + " L=" + seqLen
          + " E=" + headDim);
    }
    if (!dtype.equals("fp32") && !dtype.equals("fp16") && !dtype.equals("bf16")) {
      throw new IllegalArgumentException("dtype must be fp32, fp16 or bf16, got " + dtype);
    }
  }

  /**
   * The FLOPs counted for this case: {@code 4·B·H·Lq·Lk·E} for the forward, halved when causal, times
   * {@link Pass#flopFactor()}.
   */
  public double flops() {
    double fwd = 4.0 * batch * heads * (double) seqLen * seqLen * headDim;
    return (causal ? fwd / 2 : fwd) * pass.flopFactor();
  }

  /** Bytes of one element. */
  public int elementBytes() {
    return dtype.equals("fp32") ? 4 : 2;
  }

  /** Bytes of one {@code [B, H, L, E]} tensor. */
  public long tensorBytes() {
    return (long) batch * heads * seqLen * headDim * elementBytes();
  }

  /** The same case with another pass. */
  public BenchCase withPass(Pass p) {
    return new BenchCase(batch, heads, seqLen, headDim, causal, dtype, p);
  }

  /** One line for logs: {@code B=1 H=8 L=1024 E=64 causal fp32 fwd}. */
  public String describe() {
    return "B=" + batch + " H=" + heads + " L=" + seqLen + " E=" + headDim + (causal ? " causal" : "") + " " + dtype
        + " " + pass.label();
  }
}
