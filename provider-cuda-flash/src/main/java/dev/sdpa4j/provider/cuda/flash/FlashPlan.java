package dev.sdpa4j.provider.cuda.flash;

/**
 * How one forward call runs: the kernel family and tile traits, the grid, and the number of key splits. Pure
 * arithmetic on the problem's sizes, shared by the provider and its tests.
 *
 * @param traits  the tile shape of the kernel that runs
 * @param split   whether the split-KV kernels (and the combine kernel) run
 * @param splits  key splits (1 without split-KV)
 * @param gridX   query blocks
 * @param gridY   batch x heads
 */
record FlashPlan(Traits traits, boolean split, int splits, int gridX, int gridY) {

  /**
   * Tile shape of one kernel specialisation; {@code flash_fwd.cu} declares the same table.
   *
   * @param headDim padded head dim of the specialisation (E up to it run with predicated loads)
   * @param blockM  query rows per block
   * @param blockN  keys per tile
   * @param warps   warps per block
   */
  record Traits(int headDim, int blockM, int blockN, int warps) {
    int threads() {
      return warps * 32;
    }

    /** Q, K and V tiles in shared memory, 16-bit elements. */
    int sharedBytes() {
      return (blockM + 2 * blockN) * headDim * 2;
    }
  }

  static final Traits[] MAIN = {new Traits(32, 128, 128, 4), new Traits(64, 128, 128, 4), new Traits(96, 128, 64, 4),
      new Traits(128, 128, 64, 4), new Traits(192, 128, 64, 8), new Traits(256, 64, 64, 4)};
  static final Traits[] SPLIT = {new Traits(32, 16, 128, 1), new Traits(64, 16, 128, 1), new Traits(96, 16, 64, 1),
      new Traits(128, 16, 64, 1), new Traits(192, 16, 64, 1), new Traits(256, 16, 64, 1)};

  /** Queries per row block at or below which the decode (split-KV) kernels run. */
  static final int DECODE_MAX_QUERIES = 16;
  static final int MAX_SPLITS = 128;

  /** Index of the specialisation for head dim {@code e} (8..256, a multiple of 8). */
  static int headDimClass(long e) {
    for (int i = 0; i < MAIN.length; i++) {
      if (e <= MAIN[i].headDim()) {
        return i;
      }
    }
    throw new IllegalArgumentException("head dim " + e + " > 256");
  }

  /**
   * Chooses kernels and grid for {@code batchHeads} (B x heads after any packing), {@code lq} queries and
   * {@code lk} keys of head dim {@code e} on a device with {@code sms} multiprocessors. With {@code dropout} the main
   * kernels always run (the split-KV kernels have no dropout: the mask's counter needs the real query row and head).
   *
   * <p>The split heuristic counts two resident blocks per SM for both kernel families. (Counting the one-warp decode
   * blocks at their real occupancy, up to 6 per SM, gave 2-3x more splits and was slower on H100: 32.7 µs instead of
   * 22.6 µs for B=1, H=16, Lk=4096; see KERNEL_NOTES.md.)
   */
  static FlashPlan of(long batchHeads, long lq, long lk, long e, int sms, boolean dropout) {
    int c = headDimClass(e);
    Traits main = MAIN[c];
    Traits split = SPLIT[c];
    int slots = 2 * sms;
    int splits = 1;
    boolean useSplit = !dropout && lq <= DECODE_MAX_QUERIES;
    if (!useSplit && !dropout) {
      useSplit = numSplits(batchHeads * ceilDiv(lq, main.blockM()), ceilDiv(lk, main.blockN()), slots) > 1;
    }
    if (useSplit) {
      splits = numSplits(batchHeads * ceilDiv(lq, split.blockM()), ceilDiv(lk, split.blockN()), slots);
    }
    Traits t = useSplit ? split : main;
    return new FlashPlan(t, useSplit, splits, Math.toIntExact(ceilDiv(lq, t.blockM())), Math.toIntExact(batchHeads));
  }

  /**
   * FlashAttention-2's split heuristic: no split when the blocks already fill most of the device; else the
   * smallest split count whose wave efficiency is within 85% of the best.
   */
  static int numSplits(long blocks, long keyBlocks, int slots) {
    if (blocks >= 0.8 * slots) {
      return 1;
    }
    int max = (int) Math.min(Math.min(MAX_SPLITS, slots), keyBlocks);
    double[] eff = new double[max + 1];
    double best = 0;
    for (int s = 1; s <= max; s++) {
      if (!eligible(s, keyBlocks)) {
        continue;
      }
      double waves = (double) blocks * s / slots;
      eff[s] = waves / Math.ceil(waves);
      best = Math.max(best, eff[s]);
    }
    for (int s = 1; s <= max; s++) {
      if (eligible(s, keyBlocks) && eff[s] >= 0.85 * best) {
        return s;
      }
    }
    return 1;
  }

  private static boolean eligible(int s, long keyBlocks) {
    return s == 1 || ceilDiv(keyBlocks, s) != ceilDiv(keyBlocks, s - 1);
  }

  static long ceilDiv(long a, long b) {
    return (a + b - 1) / b;
  }
}
