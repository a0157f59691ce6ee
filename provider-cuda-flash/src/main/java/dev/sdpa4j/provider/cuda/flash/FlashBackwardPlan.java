package dev.sdpa4j.provider.cuda.flash;

import dev.sdpa4j.DType;

/**
 * How one backward call runs ({@code flash_bwd.cu}, and on Hopper {@code flash_bwd_sm90.cu}): the kernels, their
 * grids, shared memory and the fp32 workspace. Pure arithmetic on the problem's sizes, shared by the provider and its
 * tests.
 *
 * @param main          the dK/dV kernel (its name encodes dtype, head-dim specialisation, dropout, deterministic)
 * @param wgmma         whether {@link #main} is a Hopper wgmma kernel of {@code flash_bwd_sm90.cu} (else of
 *                      {@code flash_bwd.cu}; the preprocess, convert and dQ kernels are always there)
 * @param mainThreads   threads per block of the main kernel
 * @param mainGridX     key tiles
 * @param mainGridY     batch x kv heads
 * @param mainSharedBytes dynamic shared memory of the main kernel
 * @param dq            the deterministic dQ kernel, or null when dQ is accumulated with atomics by the main kernel
 * @param dqGridX       query tiles of the dQ kernel (0 without it)
 * @param dqGridY       batch x query heads
 * @param traits        the mma.sync main kernel's tiles (with wgmma: those of the kernel it replaces)
 * @param dqTraits      the dQ kernel's tiles
 * @param dsumBytes     fp32 rowsum(dO o O), one per query row
 * @param dqAccumBytes  fp32 dQ accumulator (0 in deterministic mode)
 */
record FlashBackwardPlan(String main, boolean wgmma, int mainThreads, int mainGridX, int mainGridY,
    int mainSharedBytes, String dq, int dqGridX, int dqGridY, Traits traits, DqTraits dqTraits, long dsumBytes,
    long dqAccumBytes) {

  /**
   * Tiles of the main kernel; {@code flash_bwd.cu} declares the same table (its traits also carry two choices internal
   * to the kernel that do not change the launch: the dQ warp tiling and whether K, V fragments stay in registers).
   *
   * @param headDim  padded head dim of the specialisation (smaller E run the {@code _pad} kernel)
   * @param blockM   queries per tile
   * @param blockN   keys per block
   * @param dSplit   warps sharing one 16-key group (each holds headDim / dSplit columns of dK and dV)
   * @param exact    whether an unpredicated kernel exists for E == headDim
   */
  record Traits(int headDim, int blockM, int blockN, int dSplit, boolean exact) {
    int threads() {
      return blockN / 16 * dSplit * 32;
    }

    /**
     * K, V, two Q, two dO and two dS^T buffers (16-bit; dS^T of one query tile is read by the next tile's dQ product
     * while the tile after writes the other buffer), two LSE and D buffers (fp32), and with dropout two buffers of kept
     * bits (one byte per four keys, at either dropout resolution).
     */
    int sharedBytes(boolean dropout) {
      return (2 * blockN * headDim + 4 * blockM * headDim + 2 * blockN * blockM) * 2 + 4 * blockM * 4
          + (dropout ? 2 * blockM * blockN / 4 : 0);
    }
  }

  /**
   * Tiles of the Hopper main kernels ({@code flash_bwd_sm90.cu}, {@code Sm90Traits} there): one consumer warpgroup
   * (128 threads) per 64 keys of the block; exact head dims only, fast mode only (deterministic mode keeps the
   * mma.sync kernels and {@code flash_bwd_dq_*}).
   *
   * @param headDim the head dim (exact)
   * @param blockM  queries per tile (the N of the S^T / dP^T products, the M of dQ)
   * @param blockN  keys per block
   */
  record Sm90Traits(int headDim, int blockM, int blockN) {
    int threads() {
      return blockN / 64 * 128;
    }

    /**
     * K, V, two Q, two dO and one dS^T buffer (16-bit), two LSE and D buffers (fp32), and with dropout two buffers of
     * kept bits (one byte per four keys, at either dropout resolution).
     */
    int sharedBytes(boolean dropout) {
      return (2 * blockN * headDim + 4 * blockM * headDim + blockN * blockM) * 2 + 4 * blockM * 4
          + (dropout ? 2 * blockM * blockN / 4 : 0);
    }
  }

  /**
   * Tiles of the deterministic dQ kernel.
   *
   * @param headDim padded head dim
   * @param blockM  queries per block (16 per warp)
   * @param blockN  keys per tile
   */
  record DqTraits(int headDim, int blockM, int blockN) {
    int threads() {
      return blockM / 16 * 32;
    }

    int sharedBytes() {
      return (2 * blockM + 2 * blockN) * headDim * 2;
    }
  }

  static final Traits[] MAIN = {new Traits(32, 64, 128, 1, false), new Traits(64, 64, 128, 1, true),
      new Traits(128, 64, 128, 1, true), new Traits(256, 32, 64, 2, false)};
  /**
   * Tiles of the {@code _drop} kernels (same head-dim classes as {@link #MAIN}): head dims 64 and 128 run 32-query
   * tiles, which halve the S^T/dP^T registers next to the kept bits (KERNEL_NOTES.md, training v5).
   */
  static final Traits[] MAIN_DROPOUT = {MAIN[0], new Traits(64, 32, 128, 1, true), new Traits(128, 32, 128, 1, true),
      MAIN[3]};
  static final DqTraits[] DQ = {new DqTraits(32, 64, 64), new DqTraits(64, 64, 64), new DqTraits(128, 64, 64),
      new DqTraits(256, 64, 32)};
  /** The Hopper wgmma main kernels: head dims 64 and 128 (KERNEL_NOTES.md, training v7). */
  static final Sm90Traits[] SM90 = {new Sm90Traits(64, 64, 128), new Sm90Traits(128, 64, 128)};
  /** Threads of the preprocess and convert kernels (one warp per query row). */
  static final int ROW_THREADS = 128;

  /** Index of the specialisation for head dim {@code e} (8..256, a multiple of 8). */
  static int headDimClass(long e) {
    for (int i = 0; i < MAIN.length; i++) {
      if (e <= MAIN[i].headDim()) {
        return i;
      }
    }
    throw new IllegalArgumentException("head dim " + e + " > 256");
  }

  /** The most shared memory the backward kernels of head dim {@code e} need per block (with or without dropout). */
  static int sharedBytes(long e) {
    int c = headDimClass(e);
    int most = Math.max(Math.max(MAIN[c].sharedBytes(false), MAIN_DROPOUT[c].sharedBytes(true)), DQ[c].sharedBytes());
    Sm90Traits h = sm90(e);
    return h == null ? most : Math.max(most, h.sharedBytes(true));
  }

  /** The Hopper tiles for head dim {@code e}, or null when no wgmma kernel exists for it. */
  static Sm90Traits sm90(long e) {
    for (Sm90Traits h : SM90) {
      if (h.headDim() == e) {
        return h;
      }
    }
    return null;
  }

  /** {@link #of(DType, long, long, long, long, long, long, boolean, boolean, boolean)} with the mma.sync kernels. */
  static FlashBackwardPlan of(DType dtype, long batch, long heads, long kvHeads, long lq, long lk, long e,
      boolean dropout, boolean deterministic) {
    return of(dtype, batch, heads, kvHeads, lq, lk, e, dropout, deterministic, false);
  }

  /**
   * Plans a backward call of {@code batch} x {@code heads} query heads over {@code kvHeads} kv heads, {@code lq}
   * queries, {@code lk} keys, head dim {@code e}. With {@code hopper} (a compute capability 9.0 device with the sm_90a
   * code of {@code flash_bwd_sm90.cu} loaded) the main kernel is the wgmma one where it exists: head dim exactly 64 or
   * 128, not deterministic.
   */
  static FlashBackwardPlan of(DType dtype, long batch, long heads, long kvHeads, long lq, long lk, long e,
      boolean dropout, boolean deterministic, boolean hopper) {
    int c = headDimClass(e);
    Traits t = dropout ? MAIN_DROPOUT[c] : MAIN[c];
    DqTraits qt = DQ[c];
    String dt = dtype == DType.BFLOAT16 ? "bf16" : "f16";
    String main = "flash_bwd_" + dt + "_d" + t.headDim() + (t.exact() && e == t.headDim() ? "" : "_pad")
        + (dropout ? "_drop" : "") + (deterministic ? "_det" : "");
    String dq = deterministic ? "flash_bwd_dq_" + dt + "_d" + qt.headDim() + (dropout ? "_drop" : "") : null;
    long rows = batch * heads * lq;
    Sm90Traits h = hopper && !deterministic ? sm90(e) : null;
    if (h != null) {
      return new FlashBackwardPlan("flash_bwd_sm90_" + dt + "_d" + h.headDim() + (dropout ? "_drop" : ""), true,
          h.threads(), Math.toIntExact(FlashPlan.ceilDiv(lk, h.blockN())), Math.toIntExact(batch * kvHeads),
          h.sharedBytes(dropout), null, 0, Math.toIntExact(batch * heads), t, qt, rows * 4, rows * e * 4);
    }
    return new FlashBackwardPlan(main, false, t.threads(), Math.toIntExact(FlashPlan.ceilDiv(lk, t.blockN())),
        Math.toIntExact(batch * kvHeads), t.sharedBytes(dropout), dq,
        deterministic ? Math.toIntExact(FlashPlan.ceilDiv(lq, qt.blockM())) : 0, Math.toIntExact(batch * heads), t, qt,
        rows * 4, deterministic ? 0 : rows * e * 4);
  }

  /** Blocks of the one-warp-per-row kernels (preprocess, convert) for {@code rows} query rows. */
  static int rowBlocks(long rows) {
    return Math.toIntExact(FlashPlan.ceilDiv(rows, ROW_THREADS / 32));
  }
}
