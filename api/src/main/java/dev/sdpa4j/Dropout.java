package dev.sdpa4j;

/**
 * The portable dropout mask every provider reproduces bit for bit, so that results compare exactly across
 * providers and a backward pass regenerates the mask from the seed with no stored bits.
 *
 * <p>For the score element {@code (b, h, i, j)} (batch, query head, query row, key column) of a request with
 * {@code Hq} query heads, dropout probability {@code p}, seed {@code s} and offset {@code o}:
 * <ol>
 *   <li>key {@code (k0, k1)} = low and high 32 bits of {@code s};</li>
 *   <li>counter {@code (c0, c1, c2, c3)} = {@code (j >>> 2, i, b * Hq + h, o)}, unsigned 32-bit words;</li>
 *   <li>{@code r} = {@link Philox4x32} of the counter under the key; {@code u = r[j & 3]};</li>
 *   <li>the element is kept iff {@code u >= floor(p * 2^32)}, compared unsigned ({@code p = 0} keeps all);</li>
 *   <li>kept probabilities are multiplied by {@code 1 / (1 - p)}, dropped ones are zero.</li>
 * </ol>
 * Dropout applies to the softmax probabilities after normalisation; the log-sum-exp does not see it.
 */
public final class Dropout {
  private Dropout() {}

  /** {@code floor(p * 2^32)} as an unsigned 32-bit word, for {@code p} in {@code [0, 1)}. */
  public static int threshold(double p) {
    if (!(p >= 0 && p < 1)) {
      throw new IllegalArgumentException("dropout probability must be in [0, 1), got " + p);
    }
    return (int) (long) Math.floor(p * 4294967296.0);
  }

  /** The factor kept probabilities are multiplied by: {@code 1 / (1 - p)}. */
  public static double keepScale(double p) {
    return 1.0 / (1.0 - p);
  }

  /** True when element {@code (b, h, i, j)} is kept. */
  public static boolean keep(DropoutSeed seed, int threshold, long b, long h, long heads, long i, long j) {
    int[] r = new int[4];
    Philox4x32.generate((int) (j >>> 2), (int) i, (int) (b * heads + h), (int) seed.offset(),
        (int) seed.seed(), (int) (seed.seed() >>> 32), r);
    return Integer.compareUnsigned(r[(int) (j & 3)], threshold) >= 0;
  }

  /**
   * Fills {@code keep[j - j0]} for the keys {@code j0 <= j < j0 + count} of row {@code (b, h, i)}, four keys per
   * Philox call; the fast path for providers on the CPU.
   */
  public static void keepRow(DropoutSeed seed, int threshold, long b, long h, long heads, long i, long j0, int count,
      boolean[] keep) {
    int[] r = new int[4];
    int k0 = (int) seed.seed();
    int k1 = (int) (seed.seed() >>> 32);
    int c1 = (int) i;
    int c2 = (int) (b * heads + h);
    int c3 = (int) seed.offset();
    long end = j0 + count;
    long group = -1;
    for (long j = j0; j < end; j++) {
      if ((j >>> 2) != group) {
        group = j >>> 2;
        Philox4x32.generate((int) group, c1, c2, c3, k0, k1, r);
      }
      keep[(int) (j - j0)] = Integer.compareUnsigned(r[(int) (j & 3)], threshold) >= 0;
    }
  }
}
