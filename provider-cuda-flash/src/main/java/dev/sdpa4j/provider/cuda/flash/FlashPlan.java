package dev.sdpa4j.provider.cuda.flash;

import dev.sdpa4j.DType;
import dev.sdpa4j.cuda.CudaDevice;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * How one forward call runs: the kernel family and its tile shape, the grid, and the number of key splits. Pure
 * arithmetic on the problem's sizes, shared by the provider and its tests ({@code bench/flashlib.py} mirrors it).
 *
 * @param headDim     padded head dim of the specialisation that runs
 * @param split       whether the decode kernel ({@code flash_decode_*}: split-KV, the splits merged in the same launch)
 *                    runs instead of the main kernel
 * @param splits      key splits (1 for the main kernel; the decode kernel may also run with 1); for a work-stealing
 *                    launch, the workspace slots per unit
 * @param cluster     whether the splits of one (query block, batch, head) merge inside one thread-block cluster
 *                    through distributed shared memory (the {@code _cl} decode kernels: compute capability 9.0 and
 *                    later, 2 to {@link #MAX_CLUSTER} splits), which needs no workspace, no counters and no memset
 *                    (KERNEL_NOTES.md, v7)
 * @param stealBlocks blocks of a work-stealing decode launch (the {@code _ws} kernels, a one-dimensional grid; 0 for
 *                    the others): each block starts on one (query block, batch, head) unit, as its owner or, where
 *                    there are more blocks than units, as a helper; it takes the unit's key tiles one at a time from a
 *                    counter, then the next unstarted unit, then helps the unit with the most tiles left, so that
 *                    blocks on SMs that read memory faster do more (KERNEL_NOTES.md, v10, v11); the partials of a
 *                    unit's blocks merge through {@code splits} workspace slots
 * @param gridX       query blocks
 * @param gridY       batch x heads
 * @param threads     threads per block
 * @param sharedBytes dynamic shared memory per block
 * @param traitsName  the decode traits' name in the kernel's ({@link DecodeTraits#name()}); empty for the main kernel
 * @param pacePicos   0, or for a paced decode grid the picoseconds between a warp's key tiles (the kernel's
 *                    {@code decode_pace_ps}): the grid's blocks together then read K and V at a set fraction of the
 *                    device's DRAM bandwidth, each its fair share, so that no block runs ahead of the others
 * @param stagger     whether each block of a decode launch that does not steal starts at a hashed key tile of its
 *                    split and wraps (the kernel's {@code decode_stagger}), so that streams whose starts lie a
 *                    multiple of the memory's stack interleave apart do not read the same stacks in step
 */
record FlashPlan(int headDim, boolean split, int splits, boolean cluster, int stealBlocks, int gridX, int gridY,
    int threads, int sharedBytes, String traitsName, long pacePicos, boolean stagger) {

  /**
   * What FlashPlan knows of the device's memory: its peak DRAM bandwidth and L2 size ({@link #UNKNOWN}: never pace),
   * and the spacing of the key streams that read in step from the same memory stacks.
   *
   * @param bandwidth      peak DRAM bandwidth in bytes per second
   * @param l2Bytes        L2 cache size in bytes
   * @param stackAlignment 0, or the bytes whose multiples place the streams of a decode grid (one per head, or per
   *                       split) on the same memory stacks at the same time: the odd part of the HBM stack count
   *                       times {@link #STACK_GRANULE} (an H100 SXM, five stacks: 327,680)
   */
  record Dram(long bandwidth, long l2Bytes, long stackAlignment) {
    static final Dram UNKNOWN = new Dram(0, 0, 0);

    /** The memory of {@code device}: its bandwidth, L2 and the stacks of its bus (1024 bits per HBM stack). */
    static Dram of(CudaDevice device) {
      int stacks = device.memoryBusBits() / 1024;
      int odd = stacks >> Integer.numberOfTrailingZeros(Math.max(1, stacks));
      return new Dram(device.memoryBandwidth(), device.l2CacheBytes(), odd > 1 ? odd * STACK_GRANULE : 0);
    }

    /** Whether streams {@code spacingBytes} apart read in step from the same stacks (never for unknown stacks). */
    boolean stackAligned(long spacingBytes) {
      return stackAlignment > 0 && spacingBytes % stackAlignment == 0;
    }
  }

  /**
   * The layout of K and V in bytes: the stride between heads (kv heads) and between keys.
   *
   * @param kHeadBytes bytes between two heads of K
   * @param kRowBytes  bytes between two keys of K
   * @param vHeadBytes bytes between two heads of V
   * @param vRowBytes  bytes between two keys of V
   */
  record KvLayout(long kHeadBytes, long kRowBytes, long vHeadBytes, long vRowBytes) {
    /** Contiguous [B, H, Lk, E] K and V of two-byte elements. */
    static KvLayout contiguous(long lk, long e) {
      return new KvLayout(lk * e * 2, e * 2, lk * e * 2, e * 2);
    }

    /**
     * Whether some streams of a decode grid of {@code splits} splits of {@code splitKeys} keys per head start a
     * multiple of {@code dram}'s stack alignment apart ({@link Dram#stackAligned}): K's or V's heads, or with more than
     * one split, the splits of a head.
     */
    boolean stackAligned(Dram dram, int splits, long splitKeys) {
      return dram.stackAligned(kHeadBytes) || dram.stackAligned(vHeadBytes)
          || splits > 1 && (dram.stackAligned(splitKeys * kRowBytes) || dram.stackAligned(splitKeys * vRowBytes));
    }
  }

  /**
   * Tile shape of one main-kernel specialisation; {@code flash_fwd.cu} declares the same table.
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

  /**
   * Tile shape of one decode-kernel specialisation ({@code DecodeTraits} in {@code flash_fwd.cu}): a block owns
   * {@link #DECODE_ROWS} query rows, and each warp streams its own key tiles through a ring of {@code stages} K and V
   * tiles.
   *
   * @param headDim padded head dim of the specialisation
   * @param blockN  keys per warp tile
   * @param warps   warps per block
   * @param stages  depth of each warp's cp.async ring
   */
  record DecodeTraits(int headDim, int blockN, int warps, int stages) {
    int threads() {
      return warps * 32;
    }

    /** Each warp's ring of K and V tiles, 16-bit elements. */
    int sharedBytes() {
      return warps * stages * 2 * blockN * headDim * 2;
    }

    /** The traits' part of the kernel's name, {@code n<blockN>w<warps>s<stages>}, as in {@code flash_fwd.cu}. */
    String name() {
      return "n" + blockN + "w" + warps + "s" + stages;
    }
  }

  static final Traits[] MAIN = {new Traits(32, 128, 128, 4), new Traits(64, 128, 128, 4), new Traits(96, 128, 64, 4),
      new Traits(128, 128, 64, 4), new Traits(192, 128, 64, 8), new Traits(256, 64, 64, 4)};

  /**
   * Tile shape of one Hopper main-kernel specialisation ({@code Sm90Traits} in {@code flash_fwd_sm90.cu}: wgmma with
   * two consumer warpgroups of 64 query rows, K and V through a ring of {@code stages} shared-memory stages). It
   * serves the head dims of its class ({@link #headDimClass}: its own, and those below it through its {@code _pad}
   * kernel, whose loads zero-fill the columns past the head dim), from {@code minKeys} keys on without dropout and
   * from {@code minKeysDropout} with it (below, the mma.sync kernel measured faster).
   *
   * @param headDim        head dim of the specialisation, one of {@link #MAIN}'s classes
   * @param blockN         keys per tile
   * @param stages         K and V stages in shared memory
   * @param minKeys        fewest keys for which it replaces the mma.sync main kernel without dropout
   * @param minKeysDropout the same with dropout (its {@code _drop} kernel, either mask resolution)
   */
  record HopperTraits(int headDim, int blockN, int stages, long minKeys, long minKeysDropout) {
    /** Query rows per block: two warpgroups of 64. */
    static final int BLOCK_M = 128;
    /** Threads per block: two warpgroups. */
    static final int THREADS = 256;

    /** Q tile and the K and V stages, 16-bit elements. */
    int sharedBytes() {
      return (BLOCK_M + 2 * stages * blockN) * headDim * 2;
    }

    /** Query blocks for {@code lq} queries. */
    int gridX(long lq) {
      return Math.toIntExact(ceilDiv(lq, BLOCK_M));
    }

    /**
     * The kernel's name in {@code flash_fwd_sm90.cu} for head dim {@code e} of this class: {@code _pad} below the
     * specialisation's head dim, {@code _drop} with dropout.
     */
    String kernel(DType dtype, long e, boolean dropout) {
      return "flash_fwd_sm90_" + (dtype == DType.BFLOAT16 ? "bf16" : "f16") + "_d" + headDim
          + (e == headDim ? "" : "_pad") + (dropout ? "_drop" : "");
    }
  }

  /**
   * The Hopper main kernels, one per head-dim class but 32's; {@code flash_fwd_sm90.cu} declares the same table. Head
   * dim 64's class keeps the mma.sync kernel below 8192 keys without dropout: on an H100 it was 12-15% faster at L =
   * 1k and level at 4k (KERNEL_NOTES.md, sm90 v1). With dropout the wgmma kernels were faster at every head dim and
   * length measured (L = 512-16k, both mask resolutions; KERNEL_NOTES.md, sm90 v2). Head dims 96 and 192 and the
   * padded head dims: KERNEL_NOTES.md, v22.
   */
  static final HopperTraits[] HOPPER = {new HopperTraits(64, 128, 2, 8192, 0), new HopperTraits(96, 128, 2, 0, 0),
      new HopperTraits(128, 128, 2, 0, 0), new HopperTraits(192, 64, 2, 0, 0), new HopperTraits(256, 64, 2, 0, 0)};
  /**
   * Decode traits per head-dim class for devices that allow their shared memory per block (sm_80, sm_90: D=128 takes
   * 32-key warp tiles in a 2-stage ring, 128 KB, 0.5-1% faster than the compact 96 KB ring on an H100). Head dims 64
   * and 256 take the same geometry, 8 KB warp tiles of K (64 and 16 keys) for four warps in a 2-stage ring, one block
   * per SM: on an H100 (KERNEL_NOTES.md, v14; fp16, µs, these / the 96 KB traits before / the best of PyTorch's
   * backends) H=32, E=64, B=8 at Lk=4k 89.9 / 92.0 / 90.6, B=2 at 64k 346.0 / 351.0 / 352.4; H=8, E=256, B=16 at 4k
   * 178.8 / 185.2 / 183.2, B=32 at 16k 1387.7 / 1398.5 / 1402.2.
   */
  static final DecodeTraits[] DECODE = {new DecodeTraits(32, 64, 4, 3), new DecodeTraits(64, 64, 4, 2),
      new DecodeTraits(96, 16, 4, 4), new DecodeTraits(128, 32, 4, 2), new DecodeTraits(192, 16, 4, 2),
      new DecodeTraits(256, 16, 4, 2)};
  /**
   * Decode traits of head dim 128 for a one-split grid just over one wave of the {@link #DECODE} blocks, at most
   * {@link #NARROW_MAX_WAVES} (on devices with clusters): 2 warps in 64 KB, three resident per SM, so that the grid
   * runs as one wave without a split to merge. On an H100 (KERNEL_NOTES.md, v11; H=16, fp16, µs): B=9 at Lk=4k 102.2
   * against 115.9 with the 4-warp blocks (cuDNN 108.5), B=10 113.8 against 126.6 (cuDNN 123.6, PyTorch flash 121.3).
   */
  static final DecodeTraits NARROW = new DecodeTraits(128, 32, 2, 2);
  /** Waves of {@link #DECODE} blocks up to which a one-split decode grid of head dim 128 takes {@link #NARROW}. */
  static final double NARROW_MAX_WAVES = 1.25;
  /**
   * Decode traits of head dim 128 for a grid of {@link #SHORT_TILES_MIN_WAVES} to {@link #SHORT_TILES_MAX_WAVES} of a
   * wave with at most {@link #SHORT_TILES_MAX_KEYS} keys (on devices with clusters), which runs one split on them:
   * 16-key warp tiles in a 2-stage ring, 64 KB. On an H100 (KERNEL_NOTES.md, v11; H=16, µs, fp16): B=6 at Lk=4k 70.6
   * against 74.2 with the 32-key tiles (cuDNN 70.5), B=7 80.2 against 83.0 (cuDNN 80.7), B=7 at 8k 154.3 against
   * 157.5 stealing (cuDNN 154.8).
   */
  static final DecodeTraits SHORT_TILES = new DecodeTraits(128, 16, 4, 2);
  /** Waves of decode blocks from which a grid of head dim 128 takes {@link #SHORT_TILES}. */
  static final double SHORT_TILES_MIN_WAVES = 0.7;
  /** Waves of decode blocks below which a grid of head dim 128 takes {@link #SHORT_TILES}. */
  static final double SHORT_TILES_MAX_WAVES = 0.9;
  /** Most keys for which a grid of head dim 128 takes {@link #SHORT_TILES}. */
  static final long SHORT_TILES_MAX_KEYS = 8192;
  /**
   * Decode traits of head dim 128 for a paced one-split grid of {@link #PACE_NARROW_MAX_WAVES} to
   * {@link #SLIM_BLOCKS_PER_SM} waves: 2 warps of 16-key tiles in a 2-stage ring, 32 KB, four resident per SM (its
   * 173 registers a thread allow eight warps per SM), so that the grid runs as one wave. On an H100 (KERNEL_NOTES.md,
   * v13; H=16, fp16, µs, paced on these / paced on {@link #NARROW} / unpaced rules / the best of PyTorch's backends):
   * B=20 at Lk=4k 220.8 / 229.1 / 225.3 / 236.0, B=28 at 4k 303.2 / - / 314.0 / 312.9, B=20 at 8k 435.0 / 445.3 /
   * 451.9 / 468.4.
   */
  static final DecodeTraits SLIM = new DecodeTraits(128, 16, 2, 2);
  /**
   * Decode traits of head dim 64 for a paced one-split grid of one to {@link #PACE_NARROW_MAX_WAVES} waves: {@link
   * #DECODE}'s 64-key warp tiles with 2 warps, 64 KB, three resident per SM, as {@link #NARROW} halves head dim 128's
   * block. On an H100 (KERNEL_NOTES.md, v15; H=32, fp16, µs, paced on these / the unpaced rules / the best of
   * PyTorch's backends): B=8 at Lk=4k 90.5 / 91.5 / 91.0, at 16k 347.0 / 353.8 / 348.5.
   */
  static final DecodeTraits NARROW_64 = new DecodeTraits(64, 64, 2, 2);
  /** Decode traits within 96 KB per block, for the others (sm_86, sm_89: 99 KB). */
  static final DecodeTraits[] DECODE_COMPACT = {new DecodeTraits(32, 64, 4, 3), new DecodeTraits(64, 32, 4, 3),
      new DecodeTraits(96, 16, 4, 4), new DecodeTraits(128, 16, 4, 3), new DecodeTraits(192, 16, 4, 2),
      new DecodeTraits(256, 16, 2, 3)};

  /** Query rows per decode block; queries per row block at or below which the decode kernels run. */
  static final int DECODE_ROWS = 16;
  /** The decode kernel's merge holds at most this many splits' weights in shared memory. */
  static final int MAX_SPLITS = 128;
  /**
   * The most splits that merge through distributed shared memory in one thread-block cluster (the {@code _cl} decode
   * kernels, compute capability 9.0 and later): the portable cluster size.
   */
  static final int MAX_CLUSTER = 8;
  /** FlashAttention-2's wave-efficiency margin for the main kernel's split decision. */
  static final double MAIN_EFFICIENCY = 0.85;
  /** The decode kernel's: the fewest splits whose wave efficiency is within 5% of the best. */
  static final double DECODE_EFFICIENCY = 0.95;
  /**
   * Keys per split from which a small decode grid merges its splits in clusters (half a wave of splits) rather than
   * through the workspace (one wave): on an H100, B=1, H=16 (KERNEL_NOTES.md, v8), 8 workspace splits took 10.3 /
   * 49.1 / 177.9 µs at Lk = 4k / 16k / 64k and 4 cluster splits 12.9 / 49.5 / 176.1.
   */
  static final long CLUSTER_SPLIT_KEYS = 8192;
  /**
   * Blocks, in waves of one block per SM, from which a decode grid that needs no split for parallelism still splits
   * its keys (in clusters) so that its last wave is short: on an H100, B=64, H=16 (7.8 waves) ran 0.4-2% faster with 2
   * to 8 cluster splits, while B=8 (one wave) ran 1-4% slower with any split.
   */
  static final int TAIL_WAVES = 4;
  /** Keys per split for such a tail split (at most {@link #MAX_CLUSTER} splits). */
  static final long TAIL_SPLIT_KEYS = 2048;
  /**
   * Most keys per tail split that merge in a cluster; longer ones merge through the workspace: a cluster's blocks
   * leave together, so a block that finishes early holds its SM until the slowest of its cluster is done, which the
   * next wave's blocks pay for in proportion to the split's length (H100, B=64, Lk=64k: 8 workspace splits 10975 µs,
   * 8 cluster splits 11037).
   */
  static final long TAIL_CLUSTER_KEYS = 4096;
  /**
   * Head dims whose decode grids of {@link #TAIL_WAVES} waves or more keep one split at up to {@link #UNSPLIT_MAX_KEYS}
   * keys: splits of 2048 keys cost more in ring starts and merges than the short last wave saves (H100, KERNEL_NOTES.md
   * v17, fp16, Lk=4k, µs, one split / two cluster splits / cuDNN: H=32, E=64, B=17 186.9 / 193.2 / 200.2, B=24 260.2
   * / 264.9 / 264.2, B=64 684.6 / 687.4 / 696.7; H=16, E=128, B=34 369.2 / 372.5 / 372.5, B=56 602.1 / 606.1 / 617.2,
   * B=64 691.9 / 690.0 / 698.0). Head dims 32, 96 and 192, two blocks per SM, keep the tail splits (H=16, E=96, B=34:
   * 321.1 / 305.5 / 301.7).
   */
  static final Set<Integer> TAIL_UNSPLIT_HEAD_DIMS = Set.of(64, 128);
  /** Workspace slots per unit of a work-stealing decode launch: its owner's and up to seven helpers' partials. */
  static final int STEAL_SLOTS = 8;
  /**
   * Fewest keys for which a decode grid of one split per unit steals work: below, its fixed cost (a tile counter
   * per unit, the helpers' partials, the counters' reset) outweighs the balance (H100, B=8 and 16, Lk=4k: 2-3% slower
   * than one split).
   */
  static final long STEAL_MIN_KEYS = 8192;
  /**
   * Fewest keys for which head dim 64's one-split decode grids steal work: its 256-key block steps make 8192 keys a
   * short stream, which one split runs faster (H100, KERNEL_NOTES.md v17, H=32, fp16, Lk=8k, medians over 2-3
   * placements, ratio to cuDNN, one split / stealing: B=9 1.033 / 0.953, B=10 1.013 / 0.982, B=13 1.053 / 0.986,
   * B=15 1.022 / 1.002, B=16 0.995 / 0.996; at 16k stealing and one split are close, B=9 1.024 / 1.033, B=14 1.011 /
   * 0.993).
   */
  static final long STEAL_MIN_KEYS_HEAD_DIM_64 = 16_384;
  /**
   * The head dim whose one-split decode grids with a part-filled last wave split their keys in two ({@link
   * #midTail}): 64, one 128 KB block per SM, where those grids ran 0.985-0.998 of cuDNN (KERNEL_NOTES.md v18).
   */
  static final int MID_TAIL_HEAD_DIM = 64;
  /** Fewest waves of one block per SM of a {@link #midTail} grid (fewer are paced or split for parallelism). */
  static final double MID_TAIL_MIN_WAVES = 2;
  /**
   * Least and most fill of the last wave, as a fraction of the SMs, of a {@link #midTail} grid: on an H100 grids
   * whose last wave held 0.15-0.18 or 0.64-0.91 of the SMs ran faster with one split.
   */
  static final double MID_TAIL_MIN_FILL = 0.3;
  /** See {@link #MID_TAIL_MIN_FILL}. */
  static final double MID_TAIL_MAX_FILL = 0.5;
  /** Key splits of a {@link #midTail} grid, merged in a cluster. */
  static final int MID_TAIL_SPLITS = 2;
  /**
   * Keys from which even a grid that fills one wave steals (H100, B=8, H=16, Lk=64k: 0.3-1.0% faster), and from which
   * a grid of {@link #TAIL_WAVES} waves or more steals rather than splitting its tail where determinism is not asked
   * for (H100, H=16, E=128, fp16, µs, stealing / tail splits / cuDNN: B=33 at 64k 5636.8 / 5666.2 / 5640.2, at 32k
   * 2821.4 / 2835.0 / 2823.3, B=64 at 64k 10895.9 / 10962.8 / 11112.0; at 16k the tail splits stay ahead, B=33
   * 1413.0 / 1418.4; KERNEL_NOTES.md, v14).
   */
  static final long STEAL_LONG_KEYS = 32768;
  /**
   * Keys from which a decode grid below a wave, which would split its keys, steals instead on every resident block
   * ({@link #residentBlocks}), the blocks beyond the units starting as helpers (H100, H=16, Lk=64k, µs: B=2 348.7
   * against 353.2 with 2 cluster splits, B=3 524.9 against 540.0, B=5 858.6 against 866.7 with 8 workspace splits;
   * KERNEL_NOTES.md, v11), if the grid has at least one unit for every {@link #STEAL_SLOTS} SMs (B=1 keeps its cluster
   * splits).
   */
  static final long STEAL_HELPER_KEYS = 65536;
  /**
   * Most keys for which a decode grid of at least {@link #UNSPLIT_MIN_WAVES} of a wave runs one split: shorter splits
   * lose more to their ring start and merge than the idle SMs cost (H100, H=16, Lk=4k, µs: B=3 38.1 against 40.9 with
   * splits, B=4 47.4 / 49.1, B=5 59.1 / 64.4; KERNEL_NOTES.md, v11).
   */
  static final long UNSPLIT_MAX_KEYS = 4096;
  /** Waves of decode blocks from which a grid of at most {@link #UNSPLIT_MAX_KEYS} keys runs one split. */
  static final double UNSPLIT_MIN_WAVES = 1.0 / 3;
  /**
   * The grids of more than {@link #UNSPLIT_MAX_KEYS} keys (and fewer than {@link #TAIL_WAVES} waves) that take {@link
   * #pairedSplits} rather than the usual rules (which steal), per {@link #PAIRED_HEAD_DIMS} head dim: those of more
   * than {@code minWaves} and at most {@code maxWaves} waves of units (units over SMs).
   */
  record PairedLong(double minWaves, double maxWaves) {
    boolean takes(long blocks, int sms) {
      return blocks > minWaves * sms && blocks <= maxWaves * sms;
    }
  }

  /**
   * {@link PairedLong} per paired head dim. Stealing claims a unit's key tiles one at a time, and head dim 96's 3 KB
   * tiles make those claims cost more than they balance: its grids below {@link #TAIL_WAVES} waves split instead at
   * any key count. Head dim 192's stealing grids lose only from half a wave to a wave of units (H100, KERNEL_NOTES.md
   * v20; fp16, two placements, ratio to the best of cuDNN and PyTorch flash, stealing / paired splits: E=96, H=32, B=1
   * at 65536 keys 0.820 / 0.986, B=2 0.924 / 0.987, B=4 0.732 / 0.973, B=6 at 16384 0.926 / 0.975, B=16 0.985 / 0.991;
   * E=192, H=16, B=6 at 16384 0.948 / 1.016, B=8 at 65536 0.944 / 0.987; below half a wave and beyond a wave head dim
   * 192 steals as well or better: B=4 at 65536 1.011 / 0.991, B=24 at 16384 1.231 / 1.213; over v19's rules, up to
   * 1.34x at head dim 96 and 1.20x at 192, and at most 1.5% slower, at B=7 of head dim 96 with 8192 / 32768 keys).
   */
  static final Map<Integer, PairedLong> PAIRED_LONG = Map.of(96, new PairedLong(0, TAIL_WAVES), 192,
      new PairedLong(0.5, 1));
  /**
   * Head dims whose decode blocks pair up on an SM (96 KB traits, two resident per SM on an H100) and whose grids of at
   * most {@link #UNSPLIT_MAX_KEYS} keys and fewer than {@link #TAIL_WAVES} waves take {@link #pairedSplits} instead of
   * one split (grids of more keep the tail splits; longer keys: {@link #PAIRED_LONG}), through the workspace, the same
   * whether deterministic or not: alone on an SM such a block reads too little to keep up with an SM of two, so that
   * the SMs left with one block, or a second wave, hold the grid back (H100, KERNEL_NOTES.md v19; fp16, Lk=4096, ratio
   * to the best of cuDNN and PyTorch flash over two placements, one split / paired splits: E=96, H=32, B=2 0.572 /
   * 1.028, B=6 0.947 / 0.980, B=9 0.885 / 1.091, B=12 0.922 / 0.996; E=192, H=16, B=4 0.621 / 1.057, B=9 0.868 / 0.966,
   * B=12 0.929 / 1.006, B=24 1.107 / 1.191). Head dim 32's blocks, of the same size, read enough alone (H=64, B=2-6:
   * one split 1.018-1.289, the best plan). The head dims of {@link #PAIRED_LONG}.
   */
  static final Set<Integer> PAIRED_HEAD_DIMS = PAIRED_LONG.keySet();
  /** Split counts {@link #pairedSplits} takes from, merged through the workspace. */
  static final int[] PAIRED_SPLITS = {1, 2, 4, 8};
  /** Least efficiency over the resident blocks of a grid of more than a wave that {@link #pairedSplits} accepts. */
  static final double PAIRED_MIN_EFFICIENCY = 0.9;
  /** One split's wave efficiency below which a grid of at most one wave steals from {@link #STEAL_MIN_KEYS} keys. */
  static final double STEAL_WAVE_EFFICIENCY = 0.9;
  /**
   * The head dims whose decode grids are paced: those whose {@link #DECODE} traits fill an SM with one 128 KB block
   * (measured on an H100: 128 in KERNEL_NOTES.md v12 and v13; 64 and 256 in v15, fp16, µs, paced / the unpaced rules /
   * the best of PyTorch's backends: H=32, E=64, B=2 at Lk=64k 345.2 / 349.0 / 344.7, B=4 at 16k 174.4 / 176.4 / 182.8;
   * H=8, E=256, B=2 at 64k 348.1 / 352.4 / 365.7, B=4 at 16k 176.8 / 180.2 / 185.5, B=16 at 4k 176.2 / 179.0 / 183.8).
   */
  static final Set<Integer> PACE_HEAD_DIMS = Set.of(64, 128, 256);
  /**
   * Fewest keys per split of a paced grid: a paced grid splits its keys as far as one wave of blocks allows, but not
   * below this (H100, B=4, Lk=4k: two paced splits of 2048 keys 49.5 µs against 47.3 for one).
   */
  static final long PACE_MIN_SPLIT_KEYS = 4096;
  /**
   * Fraction of the peak DRAM bandwidth ({@link Dram#bandwidth}) at which a paced grid reads, for splits of fewer than
   * {@link #PACE_LONG_SPLIT_KEYS} keys: the H100's sustained read rate, measured at 0.934 of its 3.35 TB/s peak; 3%
   * slower pacing costs 3%, 3% faster pacing lets the fast blocks run ahead again (KERNEL_NOTES.md, v12).
   */
  static final double PACE_FRACTION = 0.934;
  /** The same for splits of at least {@link #PACE_LONG_SPLIT_KEYS} keys, which start and end less often. */
  static final double PACE_FRACTION_LONG = 0.941;
  /** Keys per split from which a paced grid reads at {@link #PACE_FRACTION_LONG}. */
  static final long PACE_LONG_SPLIT_KEYS = 32768;
  /**
   * K and V must take at least this many times the L2 for a grid to be paced: a grid whose K and V come partly from
   * the L2 reads faster than DRAM (H100, B=1, Lk=4k, 34 MB: 14.0 µs paced against 10.9).
   */
  static final int PACE_MIN_L2_MULTIPLE = 2;
  /**
   * Fewest waves (blocks per SM) of a paced grid: below, each block would need more than one SM reads alone (H100,
   * B=3, Lk=16k, 48 blocks: 142.2 µs paced against 139.2).
   */
  static final double PACE_MIN_WAVES = 0.5;
  /** Least bandwidth (bytes per second) that paces: a device that reports less is not paced. */
  static final long PACE_MIN_BANDWIDTH = 100_000_000_000L;
  /**
   * The power of two in {@link Dram#stackAlignment}: the streams of a paced grid whose spacing is a multiple of the
   * odd part of the stack count times this read in step from the same stacks (H100 SXM, five stacks, H=16, E=128,
   * B=20, Lk=4096, fp16, ratio to cuDNN over two placements, paced on the {@link #SLIM} blocks / one split unpaced:
   * heads 5120 keys apart, 5 x 2^18 bytes, 0.987 / 1.110; 4480 keys, 35 x 2^15, 1.061 / 1.049; 4160 keys, 65 x 2^14,
   * 1.070 / 1.052; 4100 keys, 1025 x 2^10, 1.060 / 1.048; KERNEL_NOTES.md v18).
   */
  static final long STACK_GRANULE = 1L << 16;
  /**
   * Head dims whose grids of stack-aligned heads that would steal split their keys in clusters instead
   * ({@link #stackAlignedSplits}; measured at these only).
   */
  static final Set<Integer> STACK_ALIGNED_SPLIT_HEAD_DIMS = Set.of(64, 128);
  /**
   * Key splits, merged in a cluster, that replace stealing in a grid of one to two waves at those head dims whose heads
   * are stack-aligned, with more than {@link #UNSPLIT_MAX_KEYS} keys (H100, KERNEL_NOTES.md v18, fp16, ratio to the
   * best of cuDNN and PyTorch flash over two placements, stealing / three cluster splits: H=16, E=128, B=9 (1.09
   * waves) at Lk=10240 0.929 / 1.010; v19, over three placements, both staggered: B=9 at 25600 1.043 / 1.040).
   */
  static final int STACK_ALIGNED_SHORT_SPLITS = 3;
  /**
   * Key splits, merged in a cluster, that replace stealing in a grid of two to {@link #TAIL_WAVES} waves at those head
   * dims whose heads are stack-aligned (H100, KERNEL_NOTES.md v18, H=16, E=128, fp16, ratio to cuDNN over two
   * placements, stealing / two cluster splits: B=20 at Lk=10240, 12800, 15360 1.078, 1.096, 1.103 / 1.122, 1.138,
   * 1.128; B=28 1.027, 1.002, 1.015 / 1.051, 1.018, 1.024).
   */
  static final int STACK_ALIGNED_SPLITS = 2;
  /**
   * Waves (of one block per SM) up to which a paced grid of more than a wave runs on the {@link #NARROW} blocks, one
   * split, three per SM; above, on the {@link #SLIM} ones (H100, H=16, fp16, Lk=4k, µs, narrow / slim: B=16 174.4 /
   * 176.2, B=18 198.4 / 198.0, B=20 229.1 / 220.8).
   */
  static final double PACE_NARROW_MAX_WAVES = 2;
  /**
   * Most bytes of K and V of a paced grid of more than a wave: with more, its hundreds of blocks each streaming their
   * own head lost to the unpaced rules' work stealing or varied with where the buffers lay (H100, H=16, µs, paced /
   * unpaced: B=28 at Lk=16k, 3.8 GB, 1242.0 / 1205.8 and 1260.2 / 1202.5; B=12 at 32k, 3.2 GB, 1037.9 / 1027.3 and
   * 1061.3 / 1028.2; B=32 at 8k, 2.1 GB, 704.1 / 696.0; B=28 at 8k, 1.9 GB, fp16 621.9 / 617.5 and 638.1 / 618.3 in
   * two runs, bf16 607.5 / 616.2 and 605.9 / 616.4), with less it won (B=10 at 16k, 1.3 GB, 434.4 / 439.9; B=20 at
   * 8k, 1.3 GB, 436.7 / 452.5; KERNEL_NOTES.md, v13). Head dim 256's paced grids on its compact blocks go further
   * ({@link #PACE_WIDE_MAX_BYTES_COMPACT_256}).
   */
  static final long PACE_WIDE_MAX_BYTES = 1_500_000_000L;
  /**
   * Most bytes of K and V of a paced grid of more than a wave on head dim 256's compact blocks: its 136-264 blocks,
   * two per SM, keep pace with more than the hundreds of head dim 128's narrow and slim blocks (H100, KERNEL_NOTES.md
   * v17, H=8, fp16, µs, paced / work stealing / PyTorch flash: B=20 at Lk=16k, 2.7 GB, 863.7 / 881.3 / 876.3; B=22 at
   * 16k, 2.95 GB, 949.5 / 962.2 / 958.6; B=24 at 8k, 1.6 GB, 525.9 / 530.4 / 526.1; at 3.2-3.8 GB a tie, B=24 and 28
   * at 16k 1038.8 / 1040.7 / 1044.4 and 1206.8 / 1204.2 / 1214.5; at 32k stealing ahead, B=24 2101.1 / 2054.9 /
   * 2081.7).
   */
  static final long PACE_WIDE_MAX_BYTES_COMPACT_256 = 3_000_000_000L;
  /**
   * The slower paces of head dim 256's compact grids just over a wave, which put a second block on a few SMs only,
   * slower the fewer: up to 1.05 waves at 0.91 of the peak, up to 1.1 at 0.92 (H100, KERNEL_NOTES.md v17, H=8, µs,
   * medians over five placements, at 0.91 / at 0.92 / PyTorch flash: B=17 (1.03 waves) fp16 at Lk=4k 194.7 / 197.9 /
   * 200.4, 8k 382.5 / 388.2 / 386.5, 16k 754.8 / 760.2 / 756.7, bf16 at 8k 384.7 / 391.2 / 387.4; B=18 (1.09 waves)
   * fp16 at 8k, four placements, 403.6 / 399.6 / 406.3, and 409.2 at {@link #PACE_FRACTION} in another run), while
   * B=20, 1.21 waves, reads faster at {@link #PACE_FRACTION} (16k 863.7, 877.3 at 0.92), as head dim 128's narrow
   * blocks do just over a wave (B=9, H=16, 16k 392.1, 396.3 at 0.92).
   */
  static final List<SlowerPace> NEAR_WAVE_256 = List.of(new SlowerPace(1.05, Long.MAX_VALUE, 0.91),
      new SlowerPace(1.1, Long.MAX_VALUE, 0.92));
  /**
   * The slower pace of head dim 64's {@link #NARROW_64} grids of at most {@link #UNSPLIT_MAX_KEYS} keys: 0.92 of the
   * peak (H100, KERNEL_NOTES.md v17, H=32, µs, at 0.92 / at {@link #PACE_FRACTION} / cuDNN: fp16 B=6 at Lk=4k 68.8 /
   * 69.8 / 69.4, B=7 79.7 / 81.1 / 80.3; bf16 B=6 68.6 / 69.4 / 69.0, B=7 79.3 / 80.8 / 79.6), while 8k and 16k keys
   * read faster at {@link #PACE_FRACTION} (B=5 at 8k 111.3, 112.2 at 0.92; B=8 at 16k 346.1, 351.1).
   */
  static final List<SlowerPace> SHORT_NARROW_64 = List.of(
      new SlowerPace(PACE_NARROW_MAX_WAVES, UNSPLIT_MAX_KEYS, 0.92));
  /** Blocks of {@link #NARROW} resident per SM when a paced grid runs on them (64 KB each). */
  static final int NARROW_BLOCKS_PER_SM = 3;
  /** Blocks of {@link #SLIM} resident per SM when a paced grid runs on them (32 KB each). */
  static final int SLIM_BLOCKS_PER_SM = 4;
  /** Blocks of head dim 256's {@link #DECODE_COMPACT} traits resident per SM when a paced grid runs on them (96 KB). */
  static final int COMPACT_256_BLOCKS_PER_SM = 2;
  /**
   * The head dim whose decode grids of many units run on the main kernel (see {@link #mainDecode}): FA2's layout, two
   * 96 KB blocks of 64 query rows per SM, each streaming 64-key K and V tiles, reads short key sequences at a steadier
   * rate than one 128 KB decode block per SM when the grid takes several of the decode kernel's waves. On an H100
   * (KERNEL_NOTES.md, v16; H=8, fp16, µs, main kernel / the decode rules / the best of PyTorch's backends): B=56 at
   * Lk=4k 612.3 / 630.1 / 612.5, B=53 at 4k 581.8 / 624.7 / 578.3, B=64 at 4k 689.4 / 693.2 / 692.5, B=64 at 2k 349.4
   * / 352.6 / 349.1, B=28 at 8k 608.7 / 614.6 / 608.9, B=32 at 8k 689.2 / 695.9 / 691.8; the decode rules stay ahead
   * where the main grid's last wave is short (B=52 at 4k, 0.79 of its second wave: 577.3 / 566.1 / 572.9; B=48, 0.73:
   * 560.8 / 525.9 / 551.5; B=24 at 4k, 0.73 of one wave: 276.2 / 273.3 / 271.9) and from 16k keys (B=56: 2413.9 /
   * 2406.8 / 2428.5).
   */
  static final int MAIN_DECODE_HEAD_DIM = 256;
  /** Most keys for which a decode grid runs on the main kernel. */
  static final long MAIN_DECODE_MAX_KEYS = 8192;
  /** Fewest blocks in the main grid's last wave, as a fraction of a wave, for a decode grid to run on it. */
  static final double MAIN_DECODE_WAVE_EFFICIENCY = 0.8;
  /** Most waves of main blocks (two per SM at head dim 256) of a decode grid that runs on them: as far as measured. */
  static final double MAIN_DECODE_MAX_WAVES = 2;

  /**
   * Decode traits on which a paced one-split grid of more than a wave runs (see {@link #paced}), so that its blocks
   * are all resident at once.
   *
   * @param traits      the traits, of one head dim
   * @param blocksPerSm blocks resident per SM, as their shared memory allows
   * @param maxWaves    waves of one block per SM (batch x heads / SMs) up to which they serve
   * @param maxBytes    most bytes of K and V of a grid they serve
   * @param slower      the grids they serve that read at a lower fraction of the peak than {@link #PACE_FRACTION}: the
   *                    first entry that serves a grid gives its fraction
   */
  record PacedWide(DecodeTraits traits, int blocksPerSm, double maxWaves, long maxBytes, List<SlowerPace> slower) {}

  /**
   * Paced grids of more than a wave that read at {@code fraction} of the peak DRAM bandwidth instead of
   * {@link #PACE_FRACTION}: those of at most {@code maxWaves} waves (batch x heads / SMs) and {@code maxKeys} keys.
   */
  record SlowerPace(double maxWaves, long maxKeys, double fraction) {
    boolean serves(long batchHeads, long lk, int sms) {
      return batchHeads <= maxWaves * sms && lk <= maxKeys;
    }
  }

  /**
   * The traits of paced grids of more than a wave, in order of preference: head dim 64 {@link #NARROW_64}, head dim
   * 128 {@link #NARROW} then {@link #SLIM}, head dim 256 its {@link #DECODE_COMPACT} traits (two per SM; on an H100,
   * KERNEL_NOTES.md, v15, H=8, fp16, B=32 at Lk=4k: 350.5 µs paced against 354.1 unpaced, PyTorch flash 350.3).
   */
  static final PacedWide[] PACED_WIDE = {
      new PacedWide(NARROW_64, NARROW_BLOCKS_PER_SM, PACE_NARROW_MAX_WAVES, PACE_WIDE_MAX_BYTES, SHORT_NARROW_64),
      new PacedWide(NARROW, NARROW_BLOCKS_PER_SM, PACE_NARROW_MAX_WAVES, PACE_WIDE_MAX_BYTES, List.of()),
      new PacedWide(SLIM, SLIM_BLOCKS_PER_SM, SLIM_BLOCKS_PER_SM, PACE_WIDE_MAX_BYTES, List.of()),
      new PacedWide(DECODE_COMPACT[5], COMPACT_256_BLOCKS_PER_SM, PACE_NARROW_MAX_WAVES,
          PACE_WIDE_MAX_BYTES_COMPACT_256, NEAR_WAVE_256)};

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
   * Chooses kernel and grid for {@code batchHeads} (B x heads after any packing), {@code lq} queries and {@code lk}
   * keys of head dim {@code e} on a device with {@code sms} multiprocessors and {@code maxSharedPerBlock} bytes of
   * shared memory per block (the opt-in maximum). With {@code dropout} the main kernel always runs (the decode kernel
   * has no dropout: the mask's counter needs the real query row and head).
   *
   * <p>The decode kernel runs for {@code lq <= 16}, and for longer queries when the main kernel's grid would leave
   * the device idle (FA2's rule, two main blocks per SM). Its split count aims at one wave of one block per SM: a
   * block already keeps {@code warps x stages} K/V tiles in flight, and every extra split costs a partial write and a
   * share of the merge (on an H100, B=8, H=16, Lk=4k: one split 90 µs, two 96 µs; KERNEL_NOTES.md, v6). This is
   * the rule of devices without thread-block clusters; see the overload.
   */
  static FlashPlan of(long batchHeads, long lq, long lk, long e, int sms, int maxSharedPerBlock, boolean dropout) {
    return of(batchHeads, lq, lk, e, sms, maxSharedPerBlock, dropout, false);
  }

  /**
   * As {@link #of(long, long, long, long, int, int, boolean)}, for a device that runs thread-block clusters
   * ({@code clusters}: compute capability 9.0 and later, the {@code _cl} kernels loaded). A small grid keeps the
   * one-wave split count and merges through the workspace, unless each of half a wave of splits would get at least
   * {@link #CLUSTER_SPLIT_KEYS} keys: then those splits merge in a cluster (no workspace). A grid of at least
   * {@link #TAIL_WAVES} waves splits its keys into up to {@link #MAX_CLUSTER} splits of at least
   * {@link #TAIL_SPLIT_KEYS} keys, so that its last wave is short, merged in a cluster up to {@link #TAIL_CLUSTER_KEYS}
   * keys per split, else through the workspace (except at the {@link #TAIL_UNSPLIT_HEAD_DIMS} up to
   * {@link #UNSPLIT_MAX_KEYS} keys, which keep one split). Measured on an H100 (KERNEL_NOTES.md, v8; fp16, H=16, E=128,
   * cuDNN in the same process): B=1 at Lk = 4k / 16k / 64k: 8 workspace splits 11.1 / 49.7 µs, 4 cluster splits
   * 178.8 µs (cuDNN 12.3 / 51.5 / 180.8); B=8: one split (any split 1-40% slower); B=64: 2 / 8 cluster splits 690.3 /
   * 2726.8 µs at 4k / 16k, 8 workspace splits 10969.6 µs at 64k, against 692.6 / 2779.6 / 11127.2 with one split (cuDNN
   * 703.0 / 2789.8 / 11131.3). Only traits of one block per SM ({@link #residentBlocks}) merge half a wave of splits in
   * clusters: 96 KB blocks, two per SM on an H100, ran slower in such clusters than with workspace splits
   * (KERNEL_NOTES.md, v14; the 96 KB traits head dims 64 and 256 had before, fp16, µs: H=32, E=64, B=1 at Lk=16k 2
   * cluster splits 49.8, 4 workspace splits 48.9; H=8, E=256, B=2 at 64k 4 cluster splits 546.0, 8 workspace splits
   * 359.9; B=4 at 16k 2 cluster splits 273.0, 4 workspace splits 181.7).
   */
  static FlashPlan of(long batchHeads, long lq, long lk, long e, int sms, int maxSharedPerBlock, boolean dropout,
      boolean clusters) {
    return of(batchHeads, lq, lk, e, sms, maxSharedPerBlock, dropout, clusters, true);
  }

  /**
   * As {@link #of(long, long, long, long, int, int, boolean, boolean)}, where the caller may take results whose last
   * bits vary from call to call ({@code deterministic} false): on a device with clusters (measured on an H100 only), a
   * decode grid of one split per unit, between 0.8 and {@link #TAIL_WAVES} waves, with at least {@link #STEAL_MIN_KEYS}
   * ({@link #STEAL_MIN_KEYS_HEAD_DIM_64} at head dim 64)
   * keys, steals work (see {@link #stealBlocks}) unless it is one wave of at least {@link #STEAL_WAVE_EFFICIENCY}
   * below {@link #STEAL_LONG_KEYS} keys. Measured on an H100 (KERNEL_NOTES.md, v10; fp16, H=16, E=128, µs, stealing /
   * one split / cuDNN): B=7 at Lk=16k 307.4 / 313.3 / 303.3 and 64k 1191.5 / 1242.0 / 1193.5; B=8 at 64k 1365.2 /
   * 1373.1 / 1368.9; B=9 at 16k 401.9 / 444.5 / 421.8; B=12 at 16k 522.3 / 532.6 / 549.0; B=32 at 16k 1373.3 / 1390.9
   * / 1384.7; while B=8 at 16k stays with one split (351.3 / 347.6 / 348.1). A grid below a wave that would split
   * its keys steals from {@link #STEAL_HELPER_KEYS} keys, its blocks beyond the units starting as helpers, and a grid
   * of {@link #TAIL_WAVES} waves or more from {@link #STEAL_LONG_KEYS} keys. A stealing grid has as many blocks as are
   * resident at once ({@link #residentBlocks}), at most one per unit: on an H100 one per SM of the 128 KB traits, two
   * of the 96 KB ones (KERNEL_NOTES.md, v14; the 96 KB traits head dims 64 and 256 had before, fp16, µs, two per SM /
   * one per SM / the best of PyTorch's backends: H=32, E=64, B=8 at Lk=16k 350.3 / 363.6 / 346.2, B=64 at 64k 10962.3
   * / 11213.9 / 11097.2; H=8, E=256, B=16 at 64k 2738.0 / 3922.2 / 2760.0).
   *
   * <p>On devices with clusters, whether deterministic or not, a grid of at least {@link #UNSPLIT_MIN_WAVES} of a wave
   * with at most {@link #UNSPLIT_MAX_KEYS} keys runs one split (at {@link #PAIRED_HEAD_DIMS}: {@link #pairedSplits},
   * which {@link #PAIRED_LONG} extends to longer keys);
   * at head dim 128 a grid of {@link #SHORT_TILES_MIN_WAVES} to {@link #SHORT_TILES_MAX_WAVES} of a wave with at most
   * {@link #SHORT_TILES_MAX_KEYS} keys runs one split of the {@link #SHORT_TILES} blocks, and a one-split grid just over
   * a wave (at most {@link #NARROW_MAX_WAVES}) runs the {@link #NARROW} blocks, three per SM. A one-split grid of head
   * dim 64 whose last wave is part-filled splits its keys in two, merged in a cluster ({@link #midTail}).
   */
  static FlashPlan of(long batchHeads, long lq, long lk, long e, int sms, int maxSharedPerBlock, boolean dropout,
      boolean clusters, boolean deterministic) {
    return of(batchHeads, lq, lk, e, sms, maxSharedPerBlock, dropout, clusters, deterministic, Dram.UNKNOWN);
  }

  /**
   * As {@link #of(long, long, long, long, int, int, boolean, boolean, boolean)}, on a device whose memory is
   * {@code dram}: on a device with clusters (measured on an H100 only), a decode grid of head dim 64, 128 or 256 with
   * one row block per (batch, head) whose blocks are all resident at once is paced (see {@link #paced}), whether
   * deterministic or not, before every other decode rule but one: on such a device (whatever {@code dram}), a decode
   * grid that {@link #mainDecode} takes runs on the main kernel.
   */
  static FlashPlan of(long batchHeads, long lq, long lk, long e, int sms, int maxSharedPerBlock, boolean dropout,
      boolean clusters, boolean deterministic, Dram dram) {
    return of(batchHeads, lq, lk, e, sms, maxSharedPerBlock, dropout, clusters, deterministic, dram,
        KvLayout.contiguous(lk, e));
  }

  /**
   * As {@link #of(long, long, long, long, int, int, boolean, boolean, boolean, Dram)}, for K and V laid out as
   * {@code kv}: on a device with clusters (measured on an H100 only), a decode launch that does not steal and whose
   * streams are {@link KvLayout#stackAligned} starts staggered ({@link #stagger}); at head dims
   * {@link #STACK_ALIGNED_SPLIT_HEAD_DIMS} a grid of one row block per head whose heads are stack-aligned and that
   * would steal takes {@link #stackAlignedSplits} instead.
   *
   * <p>Without the stagger such grids read in step from the same stacks and lose 1-15% (paced grids most, as pacing
   * keeps their blocks in step); staggered, every plan keeps its usual shape. Measured on an H100 (KERNEL_NOTES.md
   * v19; fp16, medians over three placements, ratio to the best of cuDNN and PyTorch flash, staggered / not): H=16,
   * E=128 at Lk=5120, B=2 1.007 / 0.995, B=4 1.018 / 0.992, B=6 1.072 / 0.993, B=9 1.045 / 0.885, B=12 1.066 / 0.971,
   * B=20 1.140 / 0.962, B=28 1.115 / 0.963; B=4 at 2560 1.066 / 0.971; B=9 at 10240 and 15360 1.024 and 1.019 / 0.910
   * and 0.937; H=32, E=64, B=5 at 5120 1.129 / 1.004, B=8 1.150 / 1.027, B=2 at 10240 and 40960 1.058 and 1.017 /
   * 0.991 and 0.974; H=8, E=256, B=20 at 5120 1.043 / 0.903. At power-of-two strides the same stagger costs 1-2%
   * (H=16, E=128, B=8 at 16384 0.987 against 1.002 in step), so only stack-aligned streams take it.
   */
  static FlashPlan of(long batchHeads, long lq, long lk, long e, int sms, int maxSharedPerBlock, boolean dropout,
      boolean clusters, boolean deterministic, Dram dram, KvLayout kv) {
    int c = headDimClass(e);
    Traits main = MAIN[c];
    boolean useSplit = !dropout && lq <= DECODE_ROWS;
    if (!useSplit && !dropout) {
      useSplit = numSplits(batchHeads * ceilDiv(lq, main.blockM()), ceilDiv(lk, main.blockN()), 2 * sms,
          MAIN_EFFICIENCY) > 1;
    }
    if (!useSplit) {
      return mainPlan(main, batchHeads, lq);
    }
    DecodeTraits d = DECODE[c].sharedBytes() <= maxSharedPerBlock ? DECODE[c] : DECODE_COMPACT[c];
    long rowBlocks = ceilDiv(lq, DECODE_ROWS);
    long blocks = batchHeads * rowBlocks;
    if (clusters && d == DECODE[c] && mainDecode(main, batchHeads, lq, lk, sms, maxSharedPerBlock)) {
      return mainPlan(main, batchHeads, lq);
    }
    if (clusters && d == DECODE[c]) {
      Optional<FlashPlan> paced = paced(d, batchHeads, rowBlocks, lk, e, sms, maxSharedPerBlock, dram, kv);
      if (paced.isPresent()) {
        return paced.get();
      }
    }
    long keyBlocks = ceilDiv(lk, (long) d.blockN() * d.warps());
    int resident = residentBlocks(d.sharedBytes(), sms, maxSharedPerBlock);
    int splits = numSplits(blocks, keyBlocks, sms, DECODE_EFFICIENCY);
    boolean cluster = false;
    int stealBlocks = 0;
    // heads whose streams meet on the same memory stacks (KvLayout.stackAligned), at the head dims where that matters
    boolean alignedHeads = STACK_ALIGNED_SPLIT_HEAD_DIMS.contains(d.headDim()) && kv.stackAligned(dram, 1, lk);
    if (clusters && PAIRED_HEAD_DIMS.contains(d.headDim()) && resident >= 2 * sms
        && blocks < (long) TAIL_WAVES * sms
        && (lk <= UNSPLIT_MAX_KEYS || PAIRED_LONG.get(d.headDim()).takes(blocks, sms))) {
      int paired = pairedSplits(blocks, keyBlocks, sms, resident);
      return decode(d, paired, false, 0, rowBlocks, batchHeads, stagger(d, blocks, paired, lk, sms, dram, kv));
    }
    if (clusters && splits > 1 && lk <= UNSPLIT_MAX_KEYS && blocks >= UNSPLIT_MIN_WAVES * sms) {
      splits = 1;
    }
    if (clusters && d.headDim() == SHORT_TILES.headDim() && lk <= SHORT_TILES_MAX_KEYS
        && blocks >= SHORT_TILES_MIN_WAVES * sms && blocks < SHORT_TILES_MAX_WAVES * sms) {
      return decode(SHORT_TILES, 1, false, 0, rowBlocks, batchHeads,
          stagger(SHORT_TILES, blocks, 1, lk, sms, dram, kv));
    }
    if (clusters && splits > 1 && !deterministic && lk >= STEAL_HELPER_KEYS && blocks * STEAL_SLOTS >= sms) {
      splits = STEAL_SLOTS;
      stealBlocks = resident;
    } else if (clusters && splits > 1) {
      int half = numSplits(blocks, keyBlocks, Math.max(1, sms / 2), DECODE_EFFICIENCY);
      if (resident == sms && half >= 2 && half <= MAX_CLUSTER && lk >= CLUSTER_SPLIT_KEYS * half) {
        splits = half;
        cluster = true;
      }
    } else if (clusters && blocks >= (long) TAIL_WAVES * sms && (deterministic || lk < STEAL_LONG_KEYS)
        && !(lk <= UNSPLIT_MAX_KEYS && TAIL_UNSPLIT_HEAD_DIMS.contains(d.headDim()))) {
      int tail = (int) Math.min(Math.min(MAX_CLUSTER, lk / TAIL_SPLIT_KEYS), keyBlocks);
      if (tail >= 2) {
        splits = tail;
        cluster = ceilDiv(lk, tail) <= TAIL_CLUSTER_KEYS;
      }
    } else if (clusters && !deterministic && lk >= (d.headDim() == 64 ? STEAL_MIN_KEYS_HEAD_DIM_64 : STEAL_MIN_KEYS)) {
      double waves = (double) blocks / sms;
      boolean fullWave = blocks <= sms && waves / Math.ceil(waves) >= STEAL_WAVE_EFFICIENCY;
      if (!fullWave || lk >= STEAL_LONG_KEYS) {
        splits = STEAL_SLOTS;
        stealBlocks = (int) Math.min(blocks, resident);
      }
    }
    int aligned = clusters && d == DECODE[c] && rowBlocks == 1
        ? stackAlignedSplits(alignedHeads, blocks, lk, resident, stealBlocks > 0) : 0;
    if (aligned > 0) {
      splits = aligned;
      cluster = true;
      stealBlocks = 0;
    } else if (clusters && d == DECODE[c] && splits == 1 && stealBlocks == 0
        && midTail(d.headDim(), blocks, lk, resident)) {
      splits = MID_TAIL_SPLITS;
      cluster = true;
    }
    if (clusters && splits == 1 && d.headDim() == NARROW.headDim() && blocks > sms
        && blocks <= NARROW_MAX_WAVES * sms && NARROW_BLOCKS_PER_SM * NARROW.sharedBytes() <= maxSharedPerBlock) {
      d = NARROW;
    }
    return decode(d, splits, cluster, stealBlocks, rowBlocks, batchHeads,
        clusters && stealBlocks == 0 && stagger(d, blocks, splits, lk, sms, dram, kv));
  }

  /**
   * Whether a decode launch of {@code blocks} units on traits {@code d} that does not steal starts each block at a
   * hashed key tile of its split (the kernel's {@code decode_stagger}): where its streams, {@code splits} splits of
   * {@code lk} keys per head, are {@link KvLayout#stackAligned} on {@code dram}, in a grid of fewer than
   * {@link #TAIL_WAVES} waves of units. Grids of more start their blocks wave after wave, out of step already, and the
   * stagger costs them 1-2.5% (H100, KERNEL_NOTES.md v19, fp16, ratio to the best of cuDNN and PyTorch flash over three
   * placements, staggered / not: H=32, E=64, B=20 at Lk=5120 and 10240 1.139 and 1.120 / 1.155 and 1.145, B=28 at 10240
   * 1.109 / 1.128; H=16, E=128, B=40 at 5120 and 10240 1.020 and 1.046 / 1.032 and 1.059).
   */
  static boolean stagger(DecodeTraits d, long blocks, int splits, long lk, int sms, Dram dram, KvLayout kv) {
    return blocks < (long) TAIL_WAVES * sms
        && kv.stackAligned(dram, splits, ceilDiv(ceilDiv(lk, d.blockN()), splits) * d.blockN());
  }

  /**
   * The key splits of a grid of {@code blocks} units of {@link #PAIRED_HEAD_DIMS}' blocks, {@code resident} of them at
   * once on {@code sms} SMs: up to a wave of units FA2's rule ({@link #numSplits} over the SMs) where its blocks fit
   * one per SM; otherwise the fewest of {@link #PAIRED_SPLITS} whose blocks fill the resident ones to {@link
   * #PAIRED_MIN_EFFICIENCY} of their last wave, else the best filled (at most one per key block). FA2's count for 96
   * units, four splits, would put 384 blocks on an H100's 132 SMs, and leave half its second round of resident blocks
   * empty; eight splits fill them (v20; H=16, E=192, B=6, fp16, ratio to the best of cuDNN and PyTorch flash: 4096 keys
   * 1.016 against 1.003, 8192 1.024 against 0.978).
   */
  static int pairedSplits(long blocks, long keyBlocks, int sms, int resident) {
    if (blocks <= sms) {
      int perSm = numSplits(blocks, keyBlocks, sms, DECODE_EFFICIENCY);
      if (blocks * perSm <= sms) {
        return perSm;
      }
    }
    int best = 1;
    double bestEfficiency = 0;
    for (int s : PAIRED_SPLITS) {
      if (s > keyBlocks) {
        break;
      }
      double waves = (double) blocks * s / resident;
      double efficiency = waves / Math.ceil(waves);
      if (efficiency >= PAIRED_MIN_EFFICIENCY) {
        return s;
      }
      if (efficiency > bestEfficiency) {
        best = s;
        bestEfficiency = efficiency;
      }
    }
    return best;
  }

  /**
   * Whether a one-split decode grid of {@code blocks} on traits of {@code headDim}, {@code resident} of them at once,
   * splits its {@code lk} keys in {@link #MID_TAIL_SPLITS} merged in a cluster (on a device with clusters): head dim
   * {@link #MID_TAIL_HEAD_DIM}, more than {@link #UNSPLIT_MAX_KEYS} and fewer than {@link #STEAL_MIN_KEYS_HEAD_DIM_64}
   * keys, {@link #MID_TAIL_MIN_WAVES} to {@link #TAIL_WAVES} waves, the last one {@link #MID_TAIL_MIN_FILL} to {@link
   * #MID_TAIL_MAX_FILL} full (two splits make its blocks half as long and its last wave fuller: B=14, H=32 runs 896
   * blocks, 6.79 waves). Measured on an H100 (KERNEL_NOTES.md v18; fp16 unless named, medians over 2-3 placements,
   * ratio to cuDNN, one split / two cluster splits): H=32, B=14 (448 blocks, 3.39 waves) at Lk=6k 1.003 / 1.012, 7k
   * 0.998 / 1.005, 8k 0.997 / 1.017 (bf16 0.998 / 1.017), 12k 0.992 / 1.021, 14k 0.997 / 1.024; B=10 (2.42 waves) at 8k
   * 1.007 / 1.011, 12k 1.010 / 1.017 (bf16 1.006 / 1.013), 14k 1.008 / 1.022; H=40, B=11 at 8k 0.985 / 1.017; H=16,
   * B=28 at 8k 0.996 / 1.015. At 4096 keys one split stays ahead (B=14 1.003 / 0.995), as it does for last waves 0.15
   * full (B=13 at 8k 1.043 / 1.014) or 0.91 (B=12 at 7k 1.005 / 0.980).
   */
  static boolean midTail(int headDim, long blocks, long lk, int resident) {
    if (headDim != MID_TAIL_HEAD_DIM || lk <= UNSPLIT_MAX_KEYS || lk >= STEAL_MIN_KEYS_HEAD_DIM_64) {
      return false;
    }
    double waves = (double) blocks / resident;
    double fill = waves - Math.floor(waves);
    return waves >= MID_TAIL_MIN_WAVES && waves < TAIL_WAVES && fill >= MID_TAIL_MIN_FILL && fill <= MID_TAIL_MAX_FILL;
  }

  /**
   * The cluster splits of a grid that would steal ({@code stealing}) whose heads are stack-aligned ({@code
   * alignedHeads}: {@link KvLayout#stackAligned} with one split, at head dims {@link #STACK_ALIGNED_SPLIT_HEAD_DIMS})
   * with more than {@link #UNSPLIT_MAX_KEYS} and fewer than {@link #STEAL_LONG_KEYS} keys, or 0 for the usual plan:
   * {@link #STACK_ALIGNED_SHORT_SPLITS} for one to two waves of {@code resident} blocks, {@link #STACK_ALIGNED_SPLITS}
   * for two to {@link #TAIL_WAVES} waves. From {@link #STEAL_LONG_KEYS} keys stealing stays ahead at head dim 128
   * (H100, H=16, Lk=40960, ratio to the best of cuDNN and PyTorch flash, three cluster splits / stealing: B=9 0.982 /
   * 0.996, B=12 1.040 / 1.053, B=16 1.002 / 1.019).
   */
  static int stackAlignedSplits(boolean alignedHeads, long blocks, long lk, int resident, boolean stealing) {
    if (!alignedHeads || !stealing || lk <= UNSPLIT_MAX_KEYS || lk >= STEAL_LONG_KEYS) {
      return 0;
    }
    if (blocks > resident && blocks <= 2L * resident) {
      return STACK_ALIGNED_SHORT_SPLITS;
    }
    return blocks > 2L * resident && blocks < (long) TAIL_WAVES * resident ? STACK_ALIGNED_SPLITS : 0;
  }

  /** A main-kernel plan on traits {@code main}: {@code batchHeads} x the query blocks of {@code lq} queries. */
  private static FlashPlan mainPlan(Traits main, long batchHeads, long lq) {
    return new FlashPlan(main.headDim(), false, 1, false, 0, Math.toIntExact(ceilDiv(lq, main.blockM())),
        Math.toIntExact(batchHeads), main.threads(), main.sharedBytes(), "", 0, false);
  }

  /**
   * Whether a decode call (on a device with clusters whose shared memory takes {@link #DECODE}'s traits) runs on the
   * main kernel {@code main} instead: its head dim is {@link #MAIN_DECODE_HEAD_DIM}, it has at most
   * {@link #MAIN_DECODE_MAX_KEYS} keys, and its main grid (query blocks x {@code batchHeads}) takes at most
   * {@link #MAIN_DECODE_MAX_WAVES} waves of the main blocks resident at once, its last wave at least
   * {@link #MAIN_DECODE_WAVE_EFFICIENCY} full. Such a call never takes the Hopper kernel ({@link #hopper}).
   */
  static boolean mainDecode(Traits main, long batchHeads, long lq, long lk, int sms, int maxSharedPerBlock) {
    if (main.headDim() != MAIN_DECODE_HEAD_DIM || lk > MAIN_DECODE_MAX_KEYS) {
      return false;
    }
    double waves = (double) (batchHeads * ceilDiv(lq, main.blockM()))
        / residentBlocks(main.sharedBytes(), sms, maxSharedPerBlock);
    return waves <= MAIN_DECODE_MAX_WAVES && waves / Math.ceil(waves) >= MAIN_DECODE_WAVE_EFFICIENCY;
  }

  /**
   * Blocks of {@code sharedBytes} each resident per device at once, as their shared memory allows ({@code
   * maxSharedPerBlock}, the opt-in maximum, stands for the SM's): on an H100 one of the 128 KB decode traits (head
   * dims 64, 128, 256) per SM, two of the 96 KB ones (32, 96, 192) and of head dim 256's 96 KB main blocks.
   */
  static int residentBlocks(int sharedBytes, int sms, int maxSharedPerBlock) {
    return sms * Math.max(1, maxSharedPerBlock / sharedBytes);
  }

  /** A decode-kernel plan on traits {@code d}: {@code rowBlocks} x {@code batchHeads} units. */
  private static FlashPlan decode(DecodeTraits d, int splits, boolean cluster, int stealBlocks, long rowBlocks,
      long batchHeads, boolean stagger) {
    return new FlashPlan(d.headDim(), true, splits, cluster, stealBlocks, Math.toIntExact(rowBlocks),
        Math.toIntExact(batchHeads), d.threads(), d.sharedBytes(), d.name(), 0, stagger);
  }

  /**
   * The paced plan of a decode grid, if it takes one: a head dim of {@link #PACE_HEAD_DIMS}, one row block per (batch,
   * head), K and V at least {@link #PACE_MIN_L2_MULTIPLE} times the L2, every block resident at once. A grid of at most
   * one wave runs on traits {@code d}, one block per SM, and splits its keys as far as one wave allows while each split
   * keeps {@link #PACE_MIN_SPLIT_KEYS} keys, merging through the workspace, if that gives at least
   * {@link #PACE_MIN_WAVES} of a wave; a larger one runs one split on the first of {@link #PACED_WIDE} of its head dim
   * that serves its waves, where they fit the SM's shared memory and its K and V take at most the entry's
   * {@code maxBytes} (head dim 128: the {@link #NARROW} blocks up to {@link #PACE_NARROW_MAX_WAVES} waves, the
   * {@link #SLIM} ones up to {@link #SLIM_BLOCKS_PER_SM}). Each warp then loads one key tile per {@link #pacePicos}, so
   * that the grid reads K and V at {@link #PACE_FRACTION} (or {@link #PACE_FRACTION_LONG}, or the fraction of the
   * entry's first {@link SlowerPace} that serves the grid) of the peak bandwidth, every block at the same rate. On an
   * H100 (KERNEL_NOTES.md, v12, v13; H=16, fp16, µs, paced / unpaced plans / the best of PyTorch's backends): B=6 at
   * Lk=16k 261.0 / 266.4 / 263.1, B=5 at 8k 111.4 / 116.8 / 113.4, B=3 at 32k 263.0 / 275.1 / 271.5, B=8 at 4k 89.5 /
   * 90.2 / 90.6, B=9 at 8k (narrow) 197.2 / 206.8 / 206.9. A paced grid whose streams are stack-aligned starts
   * staggered ({@link #stagger}): pacing keeps its blocks in step, so that without the stagger they would read the same
   * memory stacks at the same time.
   */
  private static Optional<FlashPlan> paced(DecodeTraits d, long batchHeads, long rowBlocks, long lk, long e, int sms,
      int maxSharedPerBlock, Dram dram, KvLayout kv) {
    if (!PACE_HEAD_DIMS.contains(d.headDim()) || rowBlocks != 1 || dram.bandwidth() < PACE_MIN_BANDWIDTH
        || batchHeads * lk * e * 4 < PACE_MIN_L2_MULTIPLE * dram.l2Bytes()) {
      return Optional.empty();
    }
    DecodeTraits traits = d;
    int splits = 1;
    List<SlowerPace> slower = List.of();
    if (batchHeads <= sms) {
      splits = (int) Math.max(1, Math.min(sms / batchHeads, lk / PACE_MIN_SPLIT_KEYS));
      if (batchHeads * splits < PACE_MIN_WAVES * sms) {
        return Optional.empty();
      }
    } else {
      PacedWide wide = pacedWide(d.headDim(), batchHeads, sms);
      if (wide == null || batchHeads * lk * e * 4 > wide.maxBytes()
          || wide.blocksPerSm() * wide.traits().sharedBytes() > maxSharedPerBlock) {
        return Optional.empty();
      }
      traits = wide.traits();
      slower = wide.slower();
    }
    double usual = ceilDiv(lk, splits) >= PACE_LONG_SPLIT_KEYS ? PACE_FRACTION_LONG : PACE_FRACTION;
    double fraction = slower.stream().filter(p -> p.serves(batchHeads, lk, sms)).mapToDouble(SlowerPace::fraction)
        .findFirst().orElse(usual);
    long warpTileBytes = 2L * traits.blockN() * e * 2;  // K and V
    long pace = Math.round(warpTileBytes * traits.warps() * batchHeads * splits * 1e12 / (fraction * dram.bandwidth()));
    return Optional.of(new FlashPlan(traits.headDim(), true, splits, false, 0, 1, Math.toIntExact(batchHeads),
        traits.threads(), traits.sharedBytes(), traits.name(), pace,
        stagger(traits, batchHeads, splits, lk, sms, dram, kv)));
  }

  /** The first of {@link #PACED_WIDE} of head dim {@code headDim} that serves {@code batchHeads} blocks; or null. */
  private static PacedWide pacedWide(int headDim, long batchHeads, int sms) {
    for (PacedWide w : PACED_WIDE) {
      if (w.traits().headDim() == headDim && batchHeads <= w.maxWaves() * sms) {
        return w;
      }
    }
    return null;
  }

  /** Whether this is a paced decode launch ({@link #pacePicos} > 0). */
  boolean paced() {
    return pacePicos > 0;
  }

  /**
   * The kernel's name in {@code flash_fwd.cu}: the {@code _cl} decode kernels for a {@link #cluster} launch, the
   * {@code _ws} ones for a work-stealing launch, the {@code _pad} kernels for head dims below the specialisation's.
   */
  String kernel(DType dtype, long e, boolean dropout) {
    String dt = dtype == DType.BFLOAT16 ? "bf16" : "f16";
    return (split ? "flash_decode_" + dt + "_d" + headDim + "_" + traitsName + (cluster ? "_cl" : steal() ? "_ws" : "")
        : "flash_fwd_" + dt + "_d" + headDim) + (e == headDim ? "" : "_pad") + (dropout ? "_drop" : "");
  }

  /**
   * The Hopper kernel that replaces this plan's mma.sync main kernel, if any: on a device of compute capability 9.0
   * whose {@code flash_fwd_sm90.cu} module loaded as sm_90a code ({@code hopperModule}; its other builds are empty), for
   * the main kernel (no split), for a head dim {@code e} whose class ({@link #headDim}) one of {@link #HOPPER} serves
   * and at least its {@code minKeys} keys ({@code lk}), or {@code minKeysDropout} with dropout; never for a decode call
   * without dropout
   * ({@code lq} at most {@link #DECODE_ROWS}: {@link #mainDecode}'s grids), whose 128-row wgmma blocks, one per SM,
   * ran slower than the mma.sync kernel's (H100, H=8, E=256, fp16, µs: B=56 at Lk=4k 658.6 against 615.5, B=64 701.4
   * against 691.3; KERNEL_NOTES.md, v16).
   */
  Optional<HopperTraits> hopper(boolean hopperModule, long e, long lq, long lk, boolean dropout) {
    if (!hopperModule || split || !dropout && lq <= DECODE_ROWS) {
      return Optional.empty();
    }
    for (HopperTraits t : HOPPER) {
      if (t.headDim() == headDim && e <= headDim && lk >= (dropout ? t.minKeysDropout() : t.minKeys())) {
        return Optional.of(t);
      }
    }
    return Optional.empty();
  }

  /** Whether this is a work-stealing decode launch ({@link #stealBlocks} blocks). */
  boolean steal() {
    return stealBlocks > 0;
  }

  /**
   * Whether the call needs the split workspace (fp32 partial outputs, then the partial LSEs; the merge counters):
   * several splits (or slots, when stealing), no cluster.
   */
  boolean workspace() {
    return splits > 1 && !cluster;
  }

  /**
   * Counters (32-bit words, the kernel's {@code lse_accum}): zero before the launch, left at zero by it (see
   * {@link MergeSlabs}). One merge counter per unit (query block, batch, head); when stealing, four per unit (a 64-bit
   * word of the tiles done and the slots written, tiles claimed, helpers joined), the next unstarted unit and the
   * blocks finished.
   */
  long counters() {
    return steal() ? 4L * gridX * gridY + 2 : (long) gridX * gridY;
  }

  /**
   * Bytes of the fp32 split workspace ({@code o_accum}) for {@code lq} queries per (batch, head) of head dim
   * {@code e}: every split's partial outputs, then every split's partial LSEs.
   */
  long partialBytes(long lq, long e) {
    return (long) splits * gridY * lq * (e + 1) * 4;
  }

  /**
   * FlashAttention-2's split heuristic: no split when {@code blocks} already fill most of the {@code slots}; else the
   * smallest split count (at most one per key block) whose wave efficiency is at least {@code minEfficiency} times
   * the best.
   */
  static int numSplits(long blocks, long keyBlocks, int slots, double minEfficiency) {
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
      if (eligible(s, keyBlocks) && eff[s] >= minEfficiency * best) {
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
