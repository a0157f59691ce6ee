package dev.sdpa4j;

/**
 * The state that fixes a dropout mask: the Philox key ({@code seed}) and the fourth counter word
 * ({@code offset}, unsigned 32-bit). The same seed and offset give the same mask on every provider; see
 * {@link Dropout}.
 *
 * @param seed   64-bit Philox key: low word k0, high word k1
 * @param offset counter word c3, in {@code [0, 2^32)}
 */
public record DropoutSeed(long seed, long offset) {
  public DropoutSeed {
    if (offset < 0 || offset > 0xFFFF_FFFFL) {
      throw new AttentionArgumentException("dropoutSeed.offset", "expected an unsigned 32-bit value in [0, 2^32), got " + offset);
    }
  }
}
