package dev.sdpa4j;

/**
 * How finely the portable dropout mask ({@link Dropout}) resolves the dropout probability {@code p}: how many random
 * bits each element compares, and so how many elements one Philox call serves. Chosen per call with
 * {@link AttentionOptions.Builder#dropoutResolution}; a provider declares the resolutions it reproduces in its
 * {@link dev.sdpa4j.spi.Capabilities}.
 */
public enum DropoutResolution {
  /**
   * 32-bit compares, four elements per Philox call: an element is dropped with probability
   * {@code floor(p * 2^32) / 2^32}, that is {@code p} to within {@code 2^-32}. The default.
   */
  WORD(32, 4),
  /**
   * 8-bit compares, sixteen elements per Philox call: FlashAttention-2's resolution (PyTorch's flash backend), a
   * quarter of {@link #WORD}'s random-number work. The probability rounds to the nearest multiple of 1/256:
   * {@code t = min(255, round(p * 256))}, an element is dropped with probability {@code t / 256}, and kept values are
   * scaled by {@code 256 / (256 - t)}, so that the expected output is unchanged. A {@code p > 0} that rounds to
   * {@code t = 0} is refused.
   */
  BYTE(8, 16);

  private final int bits;
  private final int elementsPerCall;

  DropoutResolution(int bits, int elementsPerCall) {
    this.bits = bits;
    this.elementsPerCall = elementsPerCall;
  }

  /** The width of the random number each element compares: 32 or 8. */
  public int bits() {
    return bits;
  }

  /** How many consecutive keys of one query row one Philox call serves: 4 or 16. */
  public int elementsPerCall() {
    return elementsPerCall;
  }
}
