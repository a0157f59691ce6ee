package dev.sdpa4j;

/**
 * The sizes of an attention problem.
 *
 * @param batch          B
 * @param queryHeads     Hq
 * @param kvHeads        Hkv; {@code Hq % Hkv == 0}, query head {@code h} reads key/value head {@code h / (Hq / Hkv)}
 * @param queryLength    Lq
 * @param keyLength      Lk
 * @param headDim        E, the query and key head dimension
 * @param valueHeadDim   Ev, the value and output head dimension
 */
public record AttentionShape(long batch, long queryHeads, long kvHeads, long queryLength, long keyLength, long headDim,
                             long valueHeadDim) {

  /** {@code Hq / Hkv}: query heads per key/value head. */
  public long groupSize() {
    return queryHeads / kvHeads;
  }

  /** The key/value head that query head {@code h} reads. */
  public long kvHeadOf(long queryHead) {
    return queryHead / groupSize();
  }

  /** Multiply-adds of the two matrix products, times two: {@code 2·B·Hq·Lq·Lk·(E + Ev)}, without masking. */
  public double forwardFlops() {
    return 2.0 * batch * queryHeads * queryLength * keyLength * (headDim + valueHeadDim);
  }

  @Override
  public String toString() {
    return "B=" + batch + " Hq=" + queryHeads + " Hkv=" + kvHeads + " Lq=" + queryLength + " Lk=" + keyLength
        + " E=" + headDim + " Ev=" + valueHeadDim;
  }
}
