package dev.sdpa4j;

/**
 * Philox4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as easy as 1, 2, 3", SC'11), the
 * counter-based generator of Random123 and cuRAND: multipliers {@code 0xD2511F53}, {@code 0xCD9E8D57}, Weyl key
 * increments {@code 0x9E3779B9}, {@code 0xBB67AE85}, ten rounds. All words are unsigned 32-bit values held in
 * {@code int}s.
 */
public final class Philox4x32 {
  static final int M0 = 0xD2511F53;
  static final int M1 = 0xCD9E8D57;
  static final int W0 = 0x9E3779B9;
  static final int W1 = 0xBB67AE85;

  private Philox4x32() {}

  /**
   * Encrypts the counter {@code (c0, c1, c2, c3)} under the key {@code (k0, k1)} and writes the four output words
   * to {@code out[0..3]}.
   */
  public static void generate(int c0, int c1, int c2, int c3, int k0, int k1, int[] out) {
    for (int round = 0; round < 10; round++) {
      long p0 = (M0 & 0xFFFF_FFFFL) * (c0 & 0xFFFF_FFFFL);
      long p1 = (M1 & 0xFFFF_FFFFL) * (c2 & 0xFFFF_FFFFL);
      int hi0 = (int) (p0 >>> 32);
      int lo0 = (int) p0;
      int hi1 = (int) (p1 >>> 32);
      int lo1 = (int) p1;
      int n0 = hi1 ^ c1 ^ k0;
      int n2 = hi0 ^ c3 ^ k1;
      c0 = n0;
      c1 = lo1;
      c2 = n2;
      c3 = lo0;
      k0 += W0;
      k1 += W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
  }
}
