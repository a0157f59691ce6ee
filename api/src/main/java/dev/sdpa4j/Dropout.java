package dev.sdpa4j;

/**
 * The portable dropout mask every provider reproduces bit for bit, so that results compare exactly across
 * providers and a backward pass regenerates the mask from the seed with no stored bits.
 *
 * <p>For the score element {@code (b, h, i, j)} (batch, query head, query row, key column) of a request with
 * {@code Hq} query heads, dropout probability {@code p}, seed {@code s}, offset {@code o} and
 * {@link DropoutResolution} {@code R} ({@code n = R.elementsPerCall()}, 4 or 16; {@code w = R.bits()}, 32 or 8):
 * <ol>
 *   <li>key {@code (k0, k1)} = low and high 32 bits of {@code s};</li>
 *   <li>counter {@code (c0, c1, c2, c3)} = {@code (j / n, i, b * Hq + h, o)}, unsigned 32-bit words;</li>
 *   <li>{@code r} = {@link Philox4x32} of the counter under the key; the element's random number {@code u} is lane
 *       {@code j mod n} of {@code r} read as {@code n} unsigned {@code w}-bit lanes, word {@code r[0]} first and
 *       each word's low bits first: {@code u = r[j & 3]} for WORD, {@code u = (r[(j >>> 2) & 3] >>> (8 * (j & 3))) &
 *       0xff} for BYTE;</li>
 *   <li>the element is kept iff {@code u >= t}, where {@code t = floor(p * 2^32)} for WORD and
 *       {@code t = min(255, round(p * 256))} for BYTE ({@code p = 0} keeps all);</li>
 *   <li>kept probabilities are multiplied by {@code 2^w / (2^w - t)} for BYTE and by {@code 1 / (1 - p)} for WORD
 *       (the same to within {@code 2^-32}); dropped ones are zero.</li>
 * </ol>
 * Dropout applies to the softmax probabilities after normalisation; the log-sum-exp does not see it.
 */
public final class Dropout {
  private Dropout() {}

  /**
   * The mask of one request: its resolution, the threshold {@code t} a random lane must reach (unsigned) for the
   * element to be kept, and the factor kept values are multiplied by.
   *
   * @param resolution the width of the compared random numbers
   * @param threshold  {@code t}: {@code floor(p * 2^32)} as an unsigned word for WORD, {@code 0..255} for BYTE
   * @param keepScale  the factor kept probabilities are multiplied by
   */
  public record Mask(DropoutResolution resolution, int threshold, double keepScale) {

    /**
     * The mask for probability {@code p} at {@code resolution}.
     *
     * @throws IllegalArgumentException for {@code p} outside {@code [0, 1)}
     */
    public static Mask of(double p, DropoutResolution resolution) {
      if (!(p >= 0 && p < 1)) {
        throw new IllegalArgumentException("dropout probability must be in [0, 1), got " + p);
      }
      return switch (resolution) {
        case WORD -> new Mask(resolution, (int) (long) Math.floor(p * 4294967296.0), 1.0 / (1.0 - p));
        case BYTE -> {
          int t = (int) Math.min(255, Math.round(p * 256));
          yield new Mask(resolution, t, 256.0 / (256 - t));
        }
      };
    }

    /** The probability that an element is dropped: {@code t / 2^w}. */
    public double dropProbability() {
      return Integer.toUnsignedLong(threshold) / Math.pow(2, resolution.bits());
    }

    /** True when element {@code (b, h, i, j)} is kept. */
    public boolean keep(DropoutSeed seed, long b, long h, long heads, long i, long j) {
      boolean[] keep = new boolean[1];
      keepRow(seed, b, h, heads, i, j, 1, keep);
      return keep[0];
    }

    /**
     * Fills {@code keep[j - j0]} for the keys {@code j0 <= j < j0 + count} of row {@code (b, h, i)}, one Philox call
     * per {@link DropoutResolution#elementsPerCall()} keys; the fast path for providers on the CPU.
     */
    public void keepRow(DropoutSeed seed, long b, long h, long heads, long i, long j0, int count, boolean[] keep) {
      int[] r = new int[4];
      int k0 = (int) seed.seed();
      int k1 = (int) (seed.seed() >>> 32);
      int c1 = (int) i;
      int c2 = (int) (b * heads + h);
      int c3 = (int) seed.offset();
      int n = resolution.elementsPerCall();
      boolean bytes = resolution == DropoutResolution.BYTE;
      long end = j0 + count;
      long group = -1;
      for (long j = j0; j < end; j++) {
        if (j / n != group) {
          group = j / n;
          Philox4x32.generate((int) group, c1, c2, c3, k0, k1, r);
        }
        int u = bytes ? (r[(int) ((j >>> 2) & 3)] >>> (8 * (int) (j & 3))) & 0xff : r[(int) (j & 3)];
        keep[(int) (j - j0)] = Integer.compareUnsigned(u, threshold) >= 0;
      }
    }
  }
}
