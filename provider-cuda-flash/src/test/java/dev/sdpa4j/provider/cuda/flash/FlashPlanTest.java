package dev.sdpa4j.provider.cuda.flash;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.DType;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.cuda.CudaDevice;
import dev.sdpa4j.spi.ComputeCapability;
import java.lang.foreign.Arena;
import org.junit.jupiter.api.Test;

class FlashPlanTest {
  private static final int H100_SMS = 132;
  /** cudaDevAttrMaxSharedMemoryPerBlockOptin of sm_90 and of sm_86 / sm_89. */
  private static final int H100_SHARED = 232_448;
  /** An H100 SXM's memory: 2 x 2619 MHz x 5120 bits, 50 MiB of L2. */
  private static final FlashPlan.Dram H100_DRAM = new FlashPlan.Dram(3_352_320_000_000L, 50L << 20, 0);
  private static final int SM86_SHARED = 101_376;

  @Test
  void headDimsRunTheNextSpecialisation() {
    assertThat(FlashPlan.MAIN[FlashPlan.headDimClass(8)].headDim()).isEqualTo(32);
    assertThat(FlashPlan.MAIN[FlashPlan.headDimClass(64)].headDim()).isEqualTo(64);
    assertThat(FlashPlan.MAIN[FlashPlan.headDimClass(80)].headDim()).isEqualTo(96);
    assertThat(FlashPlan.MAIN[FlashPlan.headDimClass(136)].headDim()).isEqualTo(192);
    assertThat(FlashPlan.MAIN[FlashPlan.headDimClass(256)].headDim()).isEqualTo(256);
  }

  @Test
  void tilesFitTheSmallestSharedMemoryOfSupportedDevices() {
    // sm_86 / sm_89 allow 99 KiB of dynamic shared memory per block
    for (FlashPlan.Traits t : FlashPlan.MAIN) {
      assertThat(t.sharedBytes()).isLessThanOrEqualTo(99 * 1024);
      assertThat(t.blockM() % (16 * t.warps())).isZero();
    }
    for (FlashPlan.DecodeTraits t : FlashPlan.DECODE_COMPACT) {
      assertThat(t.sharedBytes()).isLessThanOrEqualTo(99 * 1024);
    }
    assertThat(FlashPlan.DECODE_COMPACT).hasSameSizeAs(FlashPlan.MAIN);
    for (FlashPlan.DecodeTraits t : concat(FlashPlan.DECODE, FlashPlan.DECODE_COMPACT)) {
      // sm_80's opt-in maximum: 163 KB
      assertThat(t.sharedBytes()).isLessThanOrEqualTo(163 * 1024);
      // the decode kernel's epilogue reuses the rings for fp32 warp outputs (pitch D + 8), row statistics and the
      // weights of up to MAX_SPLITS splits (DecodeTraits' static_assert in flash_fwd.cu)
      int scratch = (t.warps() * 16 * (t.headDim() + 8) + 3 * t.warps() * 16 + 36 + FlashPlan.MAX_SPLITS * 16) * 4;
      assertThat(scratch).isLessThanOrEqualTo(t.sharedBytes());
      assertThat(t.blockN() % 16).isZero();
      assertThat(t.stages()).isGreaterThanOrEqualTo(2);
    }
    assertThat(FlashPlan.DECODE).hasSameSizeAs(FlashPlan.MAIN);
    for (int i = 0; i < FlashPlan.MAIN.length; i++) {
      assertThat(FlashPlan.DECODE[i].headDim()).isEqualTo(FlashPlan.MAIN[i].headDim());
      assertThat(FlashPlan.DECODE_COMPACT[i].headDim()).isEqualTo(FlashPlan.MAIN[i].headDim());
    }
  }

  private static FlashPlan.DecodeTraits[] concat(FlashPlan.DecodeTraits[] a, FlashPlan.DecodeTraits[] b) {
    FlashPlan.DecodeTraits[] r = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, r, a.length, b.length);
    return r;
  }

  @Test
  void devicesWithLessSharedMemoryTakeTheCompactDecodeTraits() {
    FlashPlan h100 = FlashPlan.of(16, 1, 4096, 128, H100_SMS, H100_SHARED, false);
    assertThat(h100.sharedBytes()).isEqualTo(131_072);
    assertThat(h100.kernel(DType.FLOAT16, 128, false)).isEqualTo("flash_decode_f16_d128_n32w4s2");
    FlashPlan sm86 = FlashPlan.of(16, 1, 4096, 128, 84, SM86_SHARED, false);
    assertThat(sm86.sharedBytes()).isEqualTo(98_304).isLessThanOrEqualTo(SM86_SHARED);
    // 84 SMs: 16 x 5 = 80 blocks
    assertThat(sm86.splits()).isEqualTo(5);
    assertThat(sm86.kernel(DType.BFLOAT16, 128, false)).isEqualTo("flash_decode_bf16_d128_n16w4s3");
    // head dims 64 and 256 take their compact traits there too (the 128 KB ones on an H100)
    assertThat(FlashPlan.of(16, 1, 4096, 64, 84, SM86_SHARED, false).kernel(DType.FLOAT16, 64, false))
        .isEqualTo("flash_decode_f16_d64_n32w4s3");
    assertThat(FlashPlan.of(16, 1, 4096, 64, H100_SMS, H100_SHARED, false).kernel(DType.FLOAT16, 64, false))
        .isEqualTo("flash_decode_f16_d64_n64w4s2");
    assertThat(FlashPlan.of(8, 1, 4096, 256, 84, SM86_SHARED, false).kernel(DType.BFLOAT16, 256, false))
        .isEqualTo("flash_decode_bf16_d256_n16w2s3");
    assertThat(FlashPlan.of(8, 1, 4096, 256, H100_SMS, H100_SHARED, false).kernel(DType.BFLOAT16, 256, false))
        .isEqualTo("flash_decode_bf16_d256_n16w4s2");
    // head dims whose traits fit everywhere name the same kernel on both
    assertThat(FlashPlan.of(16, 1, 4096, 96, 84, SM86_SHARED, false).kernel(DType.FLOAT16, 96, false))
        .isEqualTo(FlashPlan.of(16, 1, 4096, 96, H100_SMS, H100_SHARED, false).kernel(DType.FLOAT16, 96, false))
        .isEqualTo("flash_decode_f16_d96_n16w4s4");
  }


  @Test
  void decodeSplitsKeysAcrossTheDevice() {
    FlashPlan p = FlashPlan.of(1 * 16, 1, 65_536, 128, H100_SMS, H100_SHARED, false);
    assertThat(p.split()).isTrue();
    // 16 heads x 8 splits = 128 blocks: one wave of one block per SM of an H100
    assertThat(p.splits()).isEqualTo(8);
    assertThat(FlashPlan.of(1 * 16, 1, 4096, 128, H100_SMS, H100_SHARED, false).splits()).isEqualTo(8);
    assertThat(FlashPlan.of(2 * 16, 1, 16_384, 128, H100_SMS, H100_SHARED, false).splits()).isEqualTo(4);
    assertThat(p.gridX()).isEqualTo(1);
    assertThat(p.gridY()).isEqualTo(16);
    assertThat(p.threads()).isEqualTo(128);
    assertThat(p.sharedBytes()).isEqualTo(FlashPlan.DECODE[3].sharedBytes());
    assertThat(p.kernel(DType.FLOAT16, 128, false)).isEqualTo("flash_decode_f16_d128_n32w4s2");
    assertThat(p.kernel(DType.BFLOAT16, 120, false)).isEqualTo("flash_decode_bf16_d128_n32w4s2_pad");
    assertThat(p.cluster()).isFalse();
    assertThat(p.workspace()).isTrue();
    assertThat(p.counters()).isEqualTo(16);
    // B = 8: 128 blocks already fill the device
    assertThat(FlashPlan.of(8 * 16, 1, 16_384, 128, H100_SMS, H100_SHARED, false).splits()).isEqualTo(1);
    // a full device needs no split (and no workspace), but short queries still take the decode kernel
    FlashPlan big = FlashPlan.of(64 * 16, 1, 4096, 128, H100_SMS, H100_SHARED, false);
    assertThat(big.split()).isTrue();
    assertThat(big.splits()).isEqualTo(1);
    assertThat(big.workspace()).isFalse();
    // few keys: no more splits than key rounds of the block (warps x keys per warp tile = 128 keys at D=128)
    assertThat(FlashPlan.of(1, 1, 100, 128, H100_SMS, H100_SHARED, false).splits()).isLessThanOrEqualTo(2);
    assertThat(FlashPlan.of(1, 1, 1, 128, H100_SMS, H100_SHARED, false).splits()).isEqualTo(1);
  }

  @Test
  void decodeSplitsMergeInAClusterWhereTheDeviceHasClusters() {
    // GQA decode, B = 1 with 8 kv heads (a group's queries packed as rows), 64k keys: half a wave of splits (8) gets
    // 8192 keys each, so one cluster of 8 blocks per head on sm_90; no workspace, no counters
    FlashPlan p = FlashPlan.of(8, 4, 65_536, 128, H100_SMS, H100_SHARED, false, true);
    assertThat(p.splits()).isEqualTo(8);
    assertThat(p.cluster()).isTrue();
    assertThat(p.workspace()).isFalse();
    assertThat(p.kernel(DType.FLOAT16, 128, false)).isEqualTo("flash_decode_f16_d128_n32w4s2_cl");
    assertThat(p.kernel(DType.BFLOAT16, 120, false)).isEqualTo("flash_decode_bf16_d128_n32w4s2_cl_pad");
    // one key fewer per split than CLUSTER_SPLIT_KEYS: a wave of splits (16) through the workspace
    FlashPlan shorter = FlashPlan.of(8, 4, 65_535, 128, H100_SMS, H100_SHARED, false, true);
    assertThat(shorter.cluster()).isFalse();
    assertThat(shorter.splits()).isEqualTo(16);
    assertThat(shorter.workspace()).isTrue();
    // devices without clusters (sm_80/86/89) keep the workspace and the counters
    FlashPlan noClusters = FlashPlan.of(8, 4, 65_536, 128, H100_SMS, H100_SHARED, false);
    assertThat(noClusters.cluster()).isFalse();
    assertThat(noClusters.workspace()).isTrue();
    assertThat(noClusters.kernel(DType.FLOAT16, 128, false)).isEqualTo("flash_decode_f16_d128_n32w4s2");
    // the issue-6 shapes, B = 1, H = 16: 8 workspace splits at 4k and 16k keys, 4 cluster splits at 64k (16k each)
    for (long lk : new long[] {4096, 16_384}) {
      FlashPlan small = FlashPlan.of(1 * 16, 1, lk, 128, H100_SMS, H100_SHARED, false, true);
      assertThat(small.splits()).isEqualTo(8);
      assertThat(small.cluster()).isFalse();
      assertThat(small.workspace()).isTrue();
    }
    FlashPlan half = FlashPlan.of(1 * 16, 1, 65_536, 128, H100_SMS, H100_SHARED, false, true);
    assertThat(half.splits()).isEqualTo(4);
    assertThat(half.cluster()).isTrue();
    // B = 8 (one wave of blocks): no split
    for (long lk : new long[] {4096, 16_384, 65_536}) {
      assertThat(FlashPlan.of(8 * 16, 1, lk, 128, H100_SMS, H100_SHARED, false, true).splits()).isEqualTo(1);
    }
    // B = 64 (7.8 waves): splits of at least TAIL_SPLIT_KEYS keys, at most MAX_CLUSTER, for a short last wave; in a
    // cluster up to TAIL_CLUSTER_KEYS keys per split, else through the workspace; head dim 128 keeps one split up to
    // UNSPLIT_MAX_KEYS keys (TAIL_UNSPLIT_HEAD_DIMS). {Lk, splits, cluster}
    long[][] tails = {{4097, 2, 1}, {16_384, 8, 1}, {32_768, 8, 1}, {32_776, 8, 0}, {65_536, 8, 0}, {6000, 2, 1},
        {4096, 1, 0}, {2047, 1, 0}};
    for (long[] t : tails) {
      FlashPlan tail = FlashPlan.of(64 * 16, 1, t[0], 128, H100_SMS, H100_SHARED, false, true);
      assertThat(tail.splits()).as("B = 64, Lk = %d", t[0]).isEqualTo((int) t[1]);
      assertThat(tail.cluster()).as("B = 64, Lk = %d", t[0]).isEqualTo(t[2] == 1);
      assertThat(tail.workspace()).isEqualTo(t[1] > 1 && t[2] == 0);
    }
    // the counters of a tail split fit a merge slab (no memset): one per (batch, head)
    assertThat(FlashPlan.of(64 * 16, 1, 65_536, 128, H100_SMS, H100_SHARED, false, true).counters() * 4)
        .isLessThanOrEqualTo(FlashDevice.SLAB_BYTES);
    // head dim 64 keeps one split up to UNSPLIT_MAX_KEYS keys too (H = 32, B = 24, 6.2 waves); head dims 32, 96 and 192
    // split their tails there. {H, E, B, Lk, splits}
    long[][] otherTails = {{32, 64, 24, 4096, 1}, {32, 64, 24, 8192, 4}, {64, 32, 16, 4096, 2}, {16, 96, 34, 4096, 2},
        {16, 192, 34, 4096, 2}};
    for (long[] t : otherTails) {
      FlashPlan tail = FlashPlan.of(t[0] * t[2], 1, t[3], t[1], H100_SMS, H100_SHARED, false, true);
      assertThat(tail.splits()).as("E = %d, B = %d, Lk = %d", t[1], t[2], t[3]).isEqualTo((int) t[4]);
      assertThat(tail.cluster()).isEqualTo(t[4] > 1);
    }
    // fewer waves than TAIL_WAVES, or no clusters: one split
    assertThat(FlashPlan.of(32 * 16, 1, 65_536, 128, H100_SMS, H100_SHARED, false, true).splits()).isEqualTo(1);
    assertThat(FlashPlan.of(64 * 16, 1, 65_536, 128, H100_SMS, H100_SHARED, false).splits()).isEqualTo(1);
    // 4 kv heads: half a wave is 16 splits, more than a portable cluster, so a wave of splits (31: the fewest within
    // 95% of the best wave efficiency) through the workspace
    FlashPlan wide = FlashPlan.of(4, 1, 65_536, 128, H100_SMS, H100_SHARED, false, true);
    assertThat(wide.splits()).isEqualTo(31);
    assertThat(wide.cluster()).isFalse();
    assertThat(wide.workspace()).isTrue();
    // one split: nothing to merge
    FlashPlan one = FlashPlan.of(1, 1, 1, 128, H100_SMS, H100_SHARED, false, true);
    assertThat(one.cluster()).isFalse();
    assertThat(one.workspace()).isFalse();
  }

  @Test
  void oneSplitDecodeGridsStealWorkWhereDeterminismIsNotAskedFor() {
    // {B, Lk, steal blocks (0: none)} for H = 16, E = 128 on an H100: a wave with idle SMs (B = 7) or a grid over one
    // wave (B = 9, 12, 32) from STEAL_MIN_KEYS keys; a full wave (B = 8) only from STEAL_LONG_KEYS keys
    long[][] cases = {{7, 16_384, 112}, {7, 65_536, 112}, {8, 16_384, 0}, {8, 32_767, 0}, {8, 32_768, 128},
        {8, 65_536, 128}, {9, 16_384, 132}, {9, 8191, 0}, {9, 8192, 132}, {12, 16_384, 132}, {32, 16_384, 132},
        {16, 4096, 0}};
    for (long[] c : cases) {
      FlashPlan p = FlashPlan.of(c[0] * 16, 1, c[1], 128, H100_SMS, H100_SHARED, false, true, false);
      assertThat(p.stealBlocks()).as("B = %d, Lk = %d", c[0], c[1]).isEqualTo((int) c[2]);
      if (c[2] > 0) {
        assertThat(p.steal()).isTrue();
        assertThat(p.splits()).isEqualTo(FlashPlan.STEAL_SLOTS);
        assertThat(p.cluster()).isFalse();
        assertThat(p.workspace()).isTrue();
        assertThat(p.kernel(DType.FLOAT16, 128, false)).isEqualTo("flash_decode_f16_d128_n32w4s2_ws");
        assertThat(p.kernel(DType.BFLOAT16, 120, false)).isEqualTo("flash_decode_bf16_d128_n32w4s2_ws_pad");
        // four counters per unit, the next unstarted unit and the blocks finished, within a merge slab
        assertThat(p.counters()).isEqualTo(4 * c[0] * 16 + 2);
        assertThat(p.counters() * 4).isLessThanOrEqualTo(FlashDevice.SLAB_BYTES);
        assertThat(p.partialBytes(1, 128)).isEqualTo(FlashPlan.STEAL_SLOTS * c[0] * 16 * 129 * 4);
      } else {
        assertThat(p).isEqualTo(FlashPlan.of(c[0] * 16, 1, c[1], 128, H100_SMS, H100_SHARED, false, true));
      }
    }
    // head dim 64 (H = 32) steals from STEAL_MIN_KEYS_HEAD_DIM_64 keys: B = 9 and 16 (2.2 and 3.9 waves) run one split
    // below, steal on the 132 resident blocks from there
    for (long b : new long[] {9, 16}) {
      FlashPlan shorter = FlashPlan.of(b * 32, 1, 16_383, 64, H100_SMS, H100_SHARED, false, true, false);
      assertThat(shorter.steal()).as("B = %d", b).isFalse();
      assertThat(shorter.splits()).isEqualTo(1);
      assertThat(shorter.traitsName()).isEqualTo(FlashPlan.DECODE[1].name());
      FlashPlan longer = FlashPlan.of(b * 32, 1, 16_384, 64, H100_SMS, H100_SHARED, false, true, false);
      assertThat(longer.steal()).as("B = %d", b).isTrue();
      assertThat(longer.stealBlocks()).isEqualTo(H100_SMS);
    }
    // deterministic calls, devices without clusters, small grids (splits) and grids of TAIL_WAVES waves below
    // STEAL_LONG_KEYS keys never steal
    assertThat(FlashPlan.of(9 * 16, 1, 16_384, 128, H100_SMS, H100_SHARED, false, true, true).steal()).isFalse();
    assertThat(FlashPlan.of(9 * 16, 1, 16_384, 128, H100_SMS, H100_SHARED, false, false, false).steal()).isFalse();
    assertThat(FlashPlan.of(1 * 16, 1, 65_536, 128, H100_SMS, H100_SHARED, false, true, false).steal()).isFalse();
    assertThat(FlashPlan.of(64 * 16, 1, 32_767, 128, H100_SMS, H100_SHARED, false, true, false).steal()).isFalse();
    // from STEAL_LONG_KEYS keys a grid of TAIL_WAVES waves or more steals instead of splitting its tail (B = 33, 64),
    // one block per SM; deterministic calls keep the tail splits; its counters still fit a slab
    for (long b : new long[] {33, 64}) {
      for (long lk : new long[] {32_768, 65_536}) {
        FlashPlan p = FlashPlan.of(b * 16, 1, lk, 128, H100_SMS, H100_SHARED, false, true, false);
        assertThat(p.stealBlocks()).as("B = %d, Lk = %d", b, lk).isEqualTo(H100_SMS);
        assertThat(p.counters() * 4).isLessThanOrEqualTo(FlashDevice.SLAB_BYTES);
        FlashPlan fixed = FlashPlan.of(b * 16, 1, lk, 128, H100_SMS, H100_SHARED, false, true, true);
        assertThat(fixed.steal()).isFalse();
        assertThat(fixed.splits()).isEqualTo(FlashPlan.MAX_CLUSTER);
      }
    }
    assertThat(FlashPlan.of(33 * 16, 1, 16_384, 128, H100_SMS, H100_SHARED, false, true, false).cluster()).isTrue();
    // GQA decode packs a group's query heads as rows: 40 rows are three units per kv head
    FlashPlan gqa = FlashPlan.of(48, 40, 16_384, 64, H100_SMS, H100_SHARED, false, true, false);
    assertThat(gqa.stealBlocks()).isEqualTo(H100_SMS);
    assertThat(gqa.counters()).isEqualTo(4 * 48 * 3 + 2);
  }

  @Test
  void stealingGridsFillTheResidentBlocksAndOnlyBlocksAloneOnAnSmMergeInHalfWaveClusters() {
    // on an H100 the 128 KB decode blocks (head dims 64, 128, 256) run one per SM, the 96 KB ones (32, 96, 192) two;
    // where one block fills the SM's shared memory (sm_80's 163 KB) every one runs alone
    for (FlashPlan.DecodeTraits d : FlashPlan.DECODE) {
      int perSm = d.sharedBytes() == 131_072 ? 1 : 2;
      assertThat(d.sharedBytes()).as("head dim %d", d.headDim()).isIn(131_072, 98_304);
      assertThat(FlashPlan.residentBlocks(d.sharedBytes(), H100_SMS, H100_SHARED)).as("head dim %d", d.headDim())
          .isEqualTo(perSm * H100_SMS);
      assertThat(FlashPlan.residentBlocks(d.sharedBytes(), 108, 166_912)).isEqualTo(108);
    }
    // the measured plans (KERNEL_NOTES.md, v14), not deterministic: {B, Lk, splits, cluster (1 / 0), steal blocks}
    // H = 8, E = 192 (two blocks per SM): workspace splits where head dim 128 merges half a wave in clusters (B = 1,
    // 2 at 64k; B = 4 at 16k), stealing on every resident block
    long[][] e192 = {{1, 65_536, 16, 0, 0}, {2, 65_536, 8, 0, 0}, {4, 16_384, 4, 0, 0}, {4, 65_536, 8, 0, 264},
        {32, 16_384, 8, 0, 256}, {64, 16_384, 8, 0, 264}};
    assertDecodePlans(8, 192, e192);
    // H = 16, E = 96 (two per SM): the same; below TAIL_WAVES waves it never steals (v20: pairedSplits), from
    // STEAL_LONG_KEYS keys beyond it does
    long[][] e96 = {{1, 65_536, 8, 0, 0}, {2, 16_384, 4, 0, 0}, {16, 16_384, 1, 0, 0}, {64, 65_536, 8, 0, 264},
        {64, 16_384, 8, 1, 0}};
    assertDecodePlans(16, 96, e96);
    // the 128 KB blocks keep their half-wave clusters and stealing on one block per SM: H = 16, E = 128; H = 8, E =
    // 256; H = 32, E = 64
    assertDecodePlans(16, 128, new long[][] {{1, 65_536, 4, 1, 0}, {2, 65_536, 8, 0, 132}, {16, 16_384, 8, 0, 132},
        {33, 16_384, 8, 1, 0}});
    assertDecodePlans(8, 256, new long[][] {{1, 65_536, 8, 1, 0}, {4, 16_384, 2, 1, 0}, {8, 4096, 1, 0, 0},
        {16, 65_536, 8, 0, 128}, {64, 16_384, 8, 0, 132}});
    assertDecodePlans(32, 64, new long[][] {{1, 16_384, 2, 1, 0}, {8, 16_384, 8, 0, 132}, {64, 65_536, 8, 0, 132}});
  }

  private static void assertDecodePlans(long h, long e, long[][] cases) {
    for (long[] c : cases) {
      FlashPlan p = FlashPlan.of(c[0] * h, 1, c[1], e, H100_SMS, H100_SHARED, false, true, false);
      assertThat(p.splits()).as("E = %d, B = %d, Lk = %d: %s", e, c[0], c[1], p).isEqualTo((int) c[2]);
      assertThat(p.cluster()).as("E = %d, B = %d, Lk = %d: %s", e, c[0], c[1], p).isEqualTo(c[3] == 1);
      assertThat(p.stealBlocks()).as("E = %d, B = %d, Lk = %d: %s", e, c[0], c[1], p).isEqualTo((int) c[4]);
      assertThat(p.kernel(DType.FLOAT16, e, false)).endsWith(c[4] > 0 ? "_ws" : c[3] == 1 ? "_cl" : "s" + FlashPlan
          .DECODE[FlashPlan.headDimClass(e)].stages());
    }
  }

  @Test
  void shortGridsRunUnsplitGridsNearAWaveRunSmallerBlocksAndLongSmallGridsStealWithHelpers() {
    // at least a third of a wave with at most UNSPLIT_MAX_KEYS keys: one split (H = 16: B = 3..5); B = 2, longer keys
    // and devices without clusters keep the split rule
    for (int b = 3; b <= 5; b++) {
      FlashPlan p = FlashPlan.of(b * 16, 1, 4096, 128, H100_SMS, H100_SHARED, false, true);
      assertThat(p.splits()).as("B = %d", b).isEqualTo(1);
      assertThat(p.kernel(DType.FLOAT16, 128, false)).isEqualTo("flash_decode_f16_d128_n32w4s2");
    }
    assertThat(FlashPlan.of(2 * 16, 1, 4096, 128, H100_SMS, H100_SHARED, false, true).splits()).isGreaterThan(1);
    assertThat(FlashPlan.of(5 * 16, 1, 4097, 128, H100_SMS, H100_SHARED, false, true).splits()).isGreaterThan(1);
    assertThat(FlashPlan.of(5 * 16, 1, 4096, 128, H100_SMS, H100_SHARED, false, false).splits()).isGreaterThan(1);

    // 0.7 to 0.9 waves at head dim 128 with at most SHORT_TILES_MAX_KEYS keys: one split of the short-tile blocks,
    // deterministic or not, instead of splits (B = 6 at 8k keys) or stealing (B = 7 at 8k keys)
    for (long[] c : new long[][] {{6, 4096}, {7, 4096}, {6, 8192}, {7, 8192}, {7, 1}}) {
      assertOneSplitOf(FlashPlan.SHORT_TILES, c[0], c[1]);
    }
    // not for 0.6 or 0.97 waves (B = 5, 8), more keys, other head dims or devices without clusters
    assertThat(FlashPlan.of(5 * 16, 1, 4096, 128, H100_SMS, H100_SHARED, false, true).traitsName()).isEqualTo("n32w4s2");
    assertThat(FlashPlan.of(8 * 16, 1, 4096, 128, H100_SMS, H100_SHARED, false, true).traitsName()).isEqualTo("n32w4s2");
    assertThat(FlashPlan.of(7 * 16, 1, 8193, 128, H100_SMS, H100_SHARED, false, true).traitsName()).isEqualTo("n32w4s2");
    assertThat(FlashPlan.of(7 * 16, 1, 4096, 64, H100_SMS, H100_SHARED, false, true).traitsName())
        .isEqualTo(FlashPlan.DECODE[1].name());
    assertThat(FlashPlan.of(7 * 16, 1, 4096, 128, H100_SMS, H100_SHARED, false, false).traitsName())
        .isEqualTo("n32w4s2");

    // one split just over a wave at head dim 128: the narrow traits, deterministic or not (B = 9 and 10 at H = 16)
    for (long[] c : new long[][] {{9, 4096}, {10, 4096}, {9, 8191}, {10, 1}}) {
      assertOneSplitOf(FlashPlan.NARROW, c[0], c[1]);
    }
    // with more keys, deterministic calls take them; the others steal
    assertThat(FlashPlan.of(9 * 16, 1, 65_536, 128, H100_SMS, H100_SHARED, false, true, true).traitsName())
        .isEqualTo("n32w2s2");
    assertThat(FlashPlan.of(9 * 16, 1, 65_536, 128, H100_SMS, H100_SHARED, false, true, false).steal()).isTrue();
    // not for one wave (B = 8), 1.33 waves (B = 11), other head dims, devices without clusters, or too little shared
    // memory for three blocks per SM
    assertThat(FlashPlan.of(8 * 16, 1, 4096, 128, H100_SMS, H100_SHARED, false, true).traitsName()).isEqualTo("n32w4s2");
    assertThat(FlashPlan.of(11 * 16, 1, 4096, 128, H100_SMS, H100_SHARED, false, true).traitsName())
        .isEqualTo("n32w4s2");
    assertThat(FlashPlan.of(9 * 16, 1, 4096, 64, H100_SMS, H100_SHARED, false, true).traitsName())
        .isEqualTo(FlashPlan.DECODE[1].name());
    assertThat(FlashPlan.of(9 * 16, 1, 4096, 128, H100_SMS, H100_SHARED, false, false).traitsName())
        .isEqualTo("n32w4s2");
    assertThat(FlashPlan.of(9 * 16, 1, 4096, 128, H100_SMS, 163 * 1024, false, true).traitsName())
        .isEqualTo("n32w4s2");

    // below a wave, from STEAL_HELPER_KEYS keys, without determinism: one block per SM, those beyond the units
    // starting as helpers
    for (int b = 2; b <= 6; b++) {
      FlashPlan p = FlashPlan.of(b * 16, 1, 65_536, 128, H100_SMS, H100_SHARED, false, true, false);
      assertThat(p.stealBlocks()).as("B = %d", b).isEqualTo(H100_SMS);
      assertThat(p.splits()).isEqualTo(FlashPlan.STEAL_SLOTS);
      assertThat(p.counters()).isEqualTo(4 * b * 16 + 2);
      assertThat(p.kernel(DType.FLOAT16, 128, false)).isEqualTo("flash_decode_f16_d128_n32w4s2_ws");
    }
    // B = 1 (16 units: more than STEAL_SLOTS blocks per unit) keeps its cluster splits, as do deterministic calls
    // and shorter keys
    assertThat(FlashPlan.of(16, 1, 65_536, 128, H100_SMS, H100_SHARED, false, true, false).cluster()).isTrue();
    assertThat(FlashPlan.of(3 * 16, 1, 65_536, 128, H100_SMS, H100_SHARED, false, true, true).steal()).isFalse();
    assertThat(FlashPlan.of(3 * 16, 1, 65_535, 128, H100_SMS, H100_SHARED, false, true, false).steal()).isFalse();
  }

  /** B x 16 heads of head dim 128 with {@code lk} keys run one split of {@code traits} (64 KB), deterministic or not. */
  @Test
  void decodeGridsResidentAtOncePaceTheirWarpsToAShareOfTheDramBandwidth() {
    // {B (H = 16), Lk, splits}: as many splits as one wave of blocks allows, each of at least PACE_MIN_SPLIT_KEYS keys
    long[][] paced = {{5, 4096, 1}, {8, 4096, 1}, {6, 16_384, 1}, {8, 65_536, 1}, {2, 16_384, 4}, {3, 16_384, 2},
        {3, 8192, 2}, {4, 32_768, 2}, {2, 65_536, 4}, {1, 32_768, 8}, {1, 65_536, 8}};
    for (long[] c : paced) {
      for (boolean deterministic : new boolean[] {true, false}) {
        FlashPlan p = FlashPlan.of(c[0] * 16, 1, c[1], 128, H100_SMS, H100_SHARED, false, true, deterministic, H100_DRAM);
        assertThat(p.paced()).as("B = %d, Lk = %d", c[0], c[1]).isTrue();
        assertThat(p.splits()).as("B = %d, Lk = %d", c[0], c[1]).isEqualTo((int) c[2]);
        assertThat(p.cluster() || p.steal()).isFalse();
        assertThat(p.workspace()).isEqualTo(c[2] > 1);
        assertThat(p.kernel(DType.BFLOAT16, 128, false)).isEqualTo("flash_decode_bf16_d128_n32w4s2");
        // every warp of the grid loads one tile of K and V per pace: together the fraction of the peak bandwidth
        double fraction = c[1] / c[2] >= FlashPlan.PACE_LONG_SPLIT_KEYS ? FlashPlan.PACE_FRACTION_LONG
            : FlashPlan.PACE_FRACTION;
        double gridBytesPerPace = c[0] * 16 * c[2] * 4 * (2.0 * 32 * 128 * 2);
        assertThat(gridBytesPerPace * 1e12 / p.pacePicos()).isCloseTo(fraction * H100_DRAM.bandwidth(),
            org.assertj.core.data.Percentage.withPercentage(1e-4));
      }
    }
    // {B (H = 16), Lk}: more than a wave with at most PACE_WIDE_MAX_BYTES of K and V, one split on blocks resident at
    // once: NARROW (three per SM) up to two waves, SLIM (four per SM) up to four
    long[][] residentGrids = {{9, 4096}, {10, 16_384}, {16, 8192}, {17, 4096}, {20, 8192}, {28, 4096}, {33, 4096}};
    for (long[] c : residentGrids) {
      FlashPlan.DecodeTraits traits = c[0] <= 16 ? FlashPlan.NARROW : FlashPlan.SLIM;
      for (boolean deterministic : new boolean[] {true, false}) {
        FlashPlan p = FlashPlan.of(c[0] * 16, 1, c[1], 128, H100_SMS, H100_SHARED, false, true, deterministic, H100_DRAM);
        assertThat(p.paced()).as("B = %d, Lk = %d", c[0], c[1]).isTrue();
        assertThat(p.traitsName()).as("B = %d, Lk = %d", c[0], c[1]).isEqualTo(traits.name());
        assertThat(p.splits()).isEqualTo(1);
        assertThat(p.cluster() || p.steal() || p.workspace()).isFalse();
        assertThat(p.threads()).isEqualTo(64);
        assertThat(p.sharedBytes()).isEqualTo(traits.sharedBytes());
        assertThat(p.kernel(DType.FLOAT16, 128, false)).isEqualTo("flash_decode_f16_d128_" + traits.name());
        double gridBytesPerPace = c[0] * 16 * 2 * (2.0 * traits.blockN() * 128 * 2);
        assertThat(gridBytesPerPace * 1e12 / p.pacePicos()).isCloseTo(FlashPlan.PACE_FRACTION * H100_DRAM.bandwidth(),
            org.assertj.core.data.Percentage.withPercentage(1e-4));
      }
    }
    assertThat(FlashPlan.SLIM.sharedBytes()).isEqualTo(32 * 1024);
    // a head dim of the class (E = 120) reads fewer bytes per tile, so its warps wait less between tiles
    assertThat(FlashPlan.of(6 * 16, 1, 16_384, 120, H100_SMS, H100_SHARED, false, true, true, H100_DRAM).pacePicos())
        .isCloseTo(Math.round(FlashPlan.of(6 * 16, 1, 16_384, 128, H100_SMS, H100_SHARED, false, true, true, H100_DRAM)
            .pacePicos() * 120 / 128.0), org.assertj.core.data.Offset.offset(1L));
    // GQA decode packs a group's queries into one row block: still one block per (batch, kv head)
    assertThat(FlashPlan.of(6 * 16, 4, 16_384, 128, H100_SMS, H100_SHARED, false, true, true, H100_DRAM).paced())
        .isTrue();
    // not paced: K and V within twice the L2 (B = 1 at 4k, B = 2 at 4k, B = 9 at 1k), under half a wave of blocks
    // (B = 4 at 4k: splits stop at PACE_MIN_SPLIT_KEYS keys; B = 1 at 16k), more than a wave with more than
    // PACE_WIDE_MAX_BYTES of K and V (B = 9 at 32k, B = 12 at 16k, B = 28 at 8k), more than four waves (B = 34, 64),
    // two row blocks, other head dims, the compact traits, devices without clusters, an unknown or too slow memory,
    // dropout
    long[][] unpaced = {{1, 4096}, {2, 4096}, {9, 1024}, {4, 4096}, {1, 16_384}, {9, 32_768}, {12, 16_384},
        {28, 8192}, {34, 4096}, {64, 4096}};
    for (long[] c : unpaced) {
      assertThat(FlashPlan.of(c[0] * 16, 1, c[1], 128, H100_SMS, H100_SHARED, false, true, true, H100_DRAM).paced())
          .as("B = %d, Lk = %d", c[0], c[1]).isFalse();
    }
    assertThat(FlashPlan.of(6 * 16, 20, 16_384, 128, H100_SMS, H100_SHARED, false, true, true, H100_DRAM).paced())
        .isFalse();
    assertThat(FlashPlan.of(6 * 16, 1, 16_384, 96, H100_SMS, H100_SHARED, false, true, true, H100_DRAM).paced())
        .isFalse();
    assertThat(FlashPlan.of(6 * 8, 1, 16_384, 192, H100_SMS, H100_SHARED, false, true, true, H100_DRAM).paced())
        .isFalse();
    assertThat(FlashPlan.of(6 * 16, 1, 16_384, 128, H100_SMS, 99 * 1024, false, true, true, H100_DRAM).paced())
        .isFalse();
    // nor up to two waves where three narrow blocks would not fit the SM's shared memory
    assertThat(FlashPlan.of(9 * 16, 1, 16_384, 128, H100_SMS, 3 * 64 * 1024 - 1, false, true, true, H100_DRAM).paced())
        .isFalse();
    assertThat(FlashPlan.of(6 * 16, 1, 16_384, 128, H100_SMS, H100_SHARED, false, false, true, H100_DRAM).paced())
        .isFalse();
    assertThat(FlashPlan.of(6 * 16, 1, 16_384, 128, H100_SMS, H100_SHARED, false, true, true).paced()).isFalse();
    assertThat(FlashPlan.of(6 * 16, 1, 16_384, 128, H100_SMS, H100_SHARED, false, true, true,
        new FlashPlan.Dram(FlashPlan.PACE_MIN_BANDWIDTH - 1, 50L << 20, 0)).paced()).isFalse();
    assertThat(FlashPlan.of(6 * 16, 1, 16_384, 128, H100_SMS, H100_SHARED, true, true, true, H100_DRAM).split())
        .isFalse();
  }

  /**
   * v18: head dim 64's one-split decode grids of two to four waves whose last wave is 0.3-0.5 full split their keys in
   * two, merged in a cluster, above 4096 and below 16384 keys, deterministic or not, paced memory known or not; other
   * last waves, 4096 keys, longer grids (stealing, or tail splits from four waves), head dim 128 at the same grids,
   * the compact traits and devices without clusters keep their plans.
   */
  @Test
  void headDim64GridsWithAPartFilledLastWaveSplitInTwoClusters() {
    // {batch x heads, keys}: H = 32, B = 10 (2.42 waves, 0.42 full) and B = 14 (3.39, 0.39); H = 40, B = 11 (3.33);
    // the fill's bounds (304 blocks: 0.303 full; 330: 0.5); a padded head dim
    long[][] split = {{10 * 32, 8192}, {14 * 32, 4097}, {14 * 32, 16_383}, {11 * 40, 6001}, {304, 12_000},
        {330, 5000}};
    for (long[] c : split) {
      for (boolean deterministic : new boolean[] {false, true}) {
        for (FlashPlan.Dram dram : new FlashPlan.Dram[] {FlashPlan.Dram.UNKNOWN, H100_DRAM}) {
          FlashPlan p = FlashPlan.of(c[0], 1, c[1], 64, H100_SMS, H100_SHARED, false, true, deterministic, dram);
          assertThat(p.splits()).as("%d blocks, Lk = %d", c[0], c[1]).isEqualTo(FlashPlan.MID_TAIL_SPLITS);
          assertThat(p.cluster()).isTrue();
          assertThat(p.paced()).isFalse();
          assertThat(p.workspace()).isFalse();
          assertThat(p.gridY()).isEqualTo(c[0]);
          assertThat(p.kernel(DType.BFLOAT16, 56, false)).isEqualTo("flash_decode_bf16_d64_n64w4s2_cl_pad");
        }
      }
    }
    // one split: last waves 0.15 (B = 13), 0.64 (B = 15), 0.91 (B = 12) full and just outside the bounds (303
    // blocks: 0.295; 331: 0.508), 4096 keys, a grid of fewer than two waves beyond the paced bytes (B = 8 at 12k)
    long[][] oneSplit = {{13 * 32, 8192}, {15 * 32, 8192}, {12 * 32, 7168}, {303, 12_000}, {331, 5000},
        {14 * 32, 4096}, {8 * 32, 12_000}};
    for (long[] c : oneSplit) {
      FlashPlan p = FlashPlan.of(c[0], 1, c[1], 64, H100_SMS, H100_SHARED, false, true, false);
      assertThat(p.splits()).as("%d blocks, Lk = %d", c[0], c[1]).isEqualTo(1);
      assertThat(p.steal()).isFalse();
    }
    // from STEAL_MIN_KEYS_HEAD_DIM_64 keys B = 14 steals (deterministic: one split); from four waves (B = 18, 4.36
    // waves, 0.36 full) the tail splits
    assertThat(FlashPlan.of(14 * 32, 1, 16_384, 64, H100_SMS, H100_SHARED, false, true, false).steal()).isTrue();
    assertThat(FlashPlan.of(14 * 32, 1, 16_384, 64, H100_SMS, H100_SHARED, false, true, true).splits()).isEqualTo(1);
    assertThat(FlashPlan.of(18 * 32, 1, 8192, 64, H100_SMS, H100_SHARED, false, true, false).splits())
        .isEqualTo((int) (8192 / FlashPlan.TAIL_SPLIT_KEYS));
    // head dim 128 (H = 16, B = 28: the same 448 blocks), the compact traits, no clusters
    assertThat(FlashPlan.of(28 * 16, 1, 6144, 128, H100_SMS, H100_SHARED, false, true, false).splits()).isEqualTo(1);
    assertThat(FlashPlan.of(14 * 32, 1, 8192, 64, H100_SMS, SM86_SHARED, false, true, false).cluster()).isFalse();
    assertThat(FlashPlan.of(14 * 32, 1, 8192, 64, H100_SMS, H100_SHARED, false, false, false).splits()).isEqualTo(1);
  }

  /** v18: the stack alignment comes from the bus width, the odd part of its HBM stacks times 64 KB. */
  @Test
  void stackAlignmentComesFromTheBusWidth() {
    assertThat(FlashPlan.Dram.of(device(5120)).stackAlignment()).isEqualTo(5 * FlashPlan.STACK_GRANULE);
    assertThat(FlashPlan.Dram.of(device(6144)).stackAlignment()).isEqualTo(3 * FlashPlan.STACK_GRANULE);
    assertThat(FlashPlan.Dram.of(device(8192)).stackAlignment()).isZero();
    assertThat(FlashPlan.Dram.of(device(384)).stackAlignment()).isZero();
    assertThat(FlashPlan.Dram.of(device(0)).stackAlignment()).isZero();
    assertThat(FlashPlan.Dram.of(device(5120)).bandwidth()).isEqualTo(H100_DRAM.bandwidth());
    FlashPlan.Dram h100 = FlashPlan.Dram.of(device(5120));
    assertThat(h100.stackAligned(5 << 16)).isTrue();
    assertThat(h100.stackAligned(15L << 18)).isTrue();
    assertThat(h100.stackAligned(1 << 20)).isFalse();
    assertThat(FlashPlan.Dram.UNKNOWN.stackAligned(5 << 16)).isFalse();
  }

  /**
   * v19: a decode launch that does not steal starts staggered where its streams are stack-aligned - K's or V's heads,
   * or the splits of a head - and keeps the plan it has at other strides: paced grids, one wave of paced splits, the
   * narrow and short-tile blocks, head dim 256, one split up to TAIL_WAVES waves of units. Power-of-two strides,
   * stealing launches, the main kernel, grids of TAIL_WAVES waves or more (head dim 64, B = 17, 544 units; the tail
   * splits), devices without clusters and memories of unknown stacks never stagger.
   */
  @Test
  void stackAlignedStreamsStartStaggeredOnTheirUsualPlans() {
    FlashPlan.Dram h100 = FlashPlan.Dram.of(device(5120));
    // {batch x heads, keys, head dim, head stride in keys (0: contiguous), staggered (1 / 0)}
    long[][] cases = {{20 * 16, 4096, 128, 0, 0}, {20 * 16, 4096, 128, 5120, 1}, {20 * 16, 4096, 128, 4480, 0},
        {20 * 16, 5120, 128, 0, 1}, {28 * 16, 2560, 128, 0, 1}, {9 * 16, 5120, 128, 0, 1}, {6 * 32, 5120, 64, 0, 1},
        {6 * 32, 10_240, 64, 0, 1}, {6 * 32, 6144, 64, 0, 0}, {4 * 16, 20_480, 128, 0, 1},
        {4 * 16, 16_384, 128, 20_480, 1}, {4 * 16, 20_480, 128, 20_608, 1}, {4 * 16, 16_384, 128, 0, 0},
        {2 * 32, 40_960, 64, 0, 1}, {20 * 8, 5120, 256, 0, 1}, {6 * 16, 1280, 128, 0, 1}, {9 * 16, 40_960, 128, 0, 0},
        {56 * 8, 5120, 256, 0, 0}, {12 * 32, 5120, 64, 0, 1}, {16 * 32, 5120, 64, 0, 1}, {17 * 32, 5120, 64, 0, 0},
        {20 * 32, 10_240, 64, 0, 0}, {40 * 16, 5120, 128, 0, 0}};
    for (long[] c : cases) {
      long bh = c[0], lk = c[1], e = c[2], stride = (c[3] == 0 ? lk : c[3]) * e * 2;
      String what = bh + " blocks, Lk = " + lk + ", E = " + e + ", heads " + c[3] + " keys apart";
      FlashPlan.KvLayout kv = new FlashPlan.KvLayout(stride, e * 2, stride, e * 2);
      FlashPlan p = FlashPlan.of(bh, 1, lk, e, H100_SMS, H100_SHARED, false, true, false, h100, kv);
      assertThat(p.stagger()).as(what).isEqualTo(c[4] == 1);
      // the plan of unknown stacks, which never staggers, but for the stagger
      FlashPlan usual = FlashPlan.of(bh, 1, lk, e, H100_SMS, H100_SHARED, false, true, false, H100_DRAM, kv);
      assertThat(usual.stagger()).as(what).isFalse();
      assertThat(p).as(what).isEqualTo(new FlashPlan(usual.headDim(), usual.split(), usual.splits(), usual.cluster(),
          usual.stealBlocks(), usual.gridX(), usual.gridY(), usual.threads(), usual.sharedBytes(), usual.traitsName(),
          usual.pacePicos(), c[4] == 1));
      // no clusters: never
      assertThat(FlashPlan.of(bh, 1, lk, e, H100_SMS, H100_SHARED, false, false, false, h100, kv).stagger()).as(what)
          .isFalse();
    }
    // the plans those grids keep: paced (one wave of two splits; the narrow blocks just over a wave), short tiles,
    // stealing, the main kernel
    FlashPlan.KvLayout kv5120 = FlashPlan.KvLayout.contiguous(5120, 128);
    assertThat(FlashPlan.of(20 * 16, 1, 5120, 128, H100_SMS, H100_SHARED, false, true, false, h100, kv5120).paced())
        .isTrue();
    assertThat(FlashPlan.of(4 * 16, 1, 20_480, 128, H100_SMS, H100_SHARED, false, true, false, h100,
        FlashPlan.KvLayout.contiguous(20_480, 128))).returns(true, FlashPlan::paced).returns(2, FlashPlan::splits);
    assertThat(FlashPlan.of(9 * 16, 1, 5120, 128, H100_SMS, H100_SHARED, false, true, false, h100, kv5120))
        .returns(true, FlashPlan::paced).returns(FlashPlan.NARROW.name(), FlashPlan::traitsName);
    assertThat(FlashPlan.of(6 * 16, 1, 1280, 128, H100_SMS, H100_SHARED, false, true, false, h100,
        FlashPlan.KvLayout.contiguous(1280, 128)).traitsName()).isEqualTo(FlashPlan.SHORT_TILES.name());
    assertThat(FlashPlan.of(9 * 16, 1, 40_960, 128, H100_SMS, H100_SHARED, false, true, false, h100,
        FlashPlan.KvLayout.contiguous(40_960, 128)).steal()).isTrue();
    assertThat(FlashPlan.of(56 * 8, 1, 5120, 256, H100_SMS, H100_SHARED, false, true, false, h100,
        FlashPlan.KvLayout.contiguous(5120, 256)).split()).isFalse();
    // V alone aligned is enough
    FlashPlan.KvLayout vAligned = new FlashPlan.KvLayout(4096 * 256, 256, 5120 * 256, 256);
    assertThat(FlashPlan.of(20 * 16, 1, 4096, 128, H100_SMS, H100_SHARED, false, true, false, h100, vAligned).stagger())
        .isTrue();
    // the alignment follows the memory: an H200's six stacks (3 x 64 KB) stagger heads 3072 keys apart, not 5120
    FlashPlan.Dram six = FlashPlan.Dram.of(device(6144));
    assertThat(FlashPlan.of(20 * 16, 1, 3072, 128, H100_SMS, H100_SHARED, false, true, false, six,
        FlashPlan.KvLayout.contiguous(3072, 128)).stagger()).isTrue();
    assertThat(FlashPlan.of(20 * 16, 1, 5120, 128, H100_SMS, H100_SHARED, false, true, false, six, kv5120).stagger())
        .isFalse();
  }

  /**
   * v19 / v20: head dims 96 and 192, whose 96 KB decode blocks pair up on an SM, split grids of fewer than TAIL_WAVES
   * waves through the workspace, the same whether deterministic or not: at most UNSPLIT_MAX_KEYS keys, and beyond (v20,
   * where they stole) head dim 96's grids and head dim 192's of half a wave to a wave. Up to a wave of units they take
   * FA2's split count where its blocks fit one per SM, otherwise the fewest of 1, 2, 4, 8 splits that fill the
   * resident blocks to 90% of their last wave, else the best filled. Head dim 32's blocks of the same size keep one
   * split; grids of TAIL_WAVES waves, head dim 192's other long grids and devices without clusters keep their rules.
   */
  @Test
  void pairedHeadDimsSplitGridsToFillTheSmsAndThenTheResidentBlocks() {
    // {H, E, B, keys, splits}
    long[][] cases = {{32, 96, 1, 4096, 4}, {32, 96, 2, 4096, 2}, {32, 96, 4, 4096, 1}, {32, 96, 6, 4096, 4},
        {32, 96, 9, 4096, 8}, {32, 96, 12, 4096, 2}, {32, 96, 16, 4096, 1}, {16, 192, 4, 4096, 2},
        {16, 192, 9, 4096, 8}, {16, 192, 12, 4096, 4}, {16, 192, 16, 4096, 1}, {16, 192, 24, 4096, 2},
        {16, 88, 9, 4096, 8}, {64, 32, 2, 4096, 1}, {64, 32, 4, 4096, 1},
        // v20: 96 units, whose FA2 count (4) would put 384 blocks on 132 SMs, fill the 264 resident ones
        {16, 192, 6, 4096, 8}, {32, 96, 3, 40_000, 8},
        // v20: longer keys split as short ones, where they stole before: head dim 96 below TAIL_WAVES waves, 192 from
        // half a wave to a wave
        {32, 96, 1, 65_536, 4}, {32, 96, 2, 65_536, 2}, {32, 96, 4, 65_536, 1}, {32, 96, 6, 16_384, 4},
        {32, 96, 9, 16_384, 8}, {32, 96, 16, 16_384, 1}, {32, 96, 6, 8200, 4}, {16, 192, 6, 16_384, 8},
        {16, 192, 5, 8200, 8}, {16, 184, 8, 20_000, 1}};
    for (long[] c : cases) {
      FlashPlan p = FlashPlan.of(c[0] * c[2], 1, c[3], c[1], H100_SMS, H100_SHARED, false, true, false);
      String what = "E = " + c[1] + ", H = " + c[0] + ", B = " + c[2] + ", Lk = " + c[3];
      assertThat(p.splits()).as(what).isEqualTo((int) c[4]);
      assertThat(p.cluster() || p.steal()).as(what).isFalse();
      assertThat(p.workspace()).as(what).isEqualTo(c[4] > 1);
      assertThat(FlashPlan.of(c[0] * c[2], 1, c[3], c[1], H100_SMS, H100_SHARED, false, true, true)).as(what)
          .isEqualTo(p);
    }
    assertThat(FlashPlan.pairedSplits(288, 4, H100_SMS, 2 * H100_SMS)).isEqualTo(4);   // at most one per key block
    assertThat(FlashPlan.pairedSplits(96, 64, H100_SMS, 2 * H100_SMS)).isEqualTo(8);
    assertThat(FlashPlan.pairedSplits(32, 64, H100_SMS, 2 * H100_SMS)).isEqualTo(4);
    // TAIL_WAVES waves: the tail splits, or stealing from STEAL_LONG_KEYS keys; no clusters: FA2's
    assertThat(FlashPlan.of(34 * 16, 1, 4096, 96, H100_SMS, H100_SHARED, false, true, false))
        .returns(2, FlashPlan::splits).returns(true, FlashPlan::cluster);
    assertThat(FlashPlan.of(34 * 16, 1, 65_536, 192, H100_SMS, H100_SHARED, false, true, false).steal()).isTrue();
    // head dim 192 beyond UNSPLIT_MAX_KEYS keys: stealing up to half a wave (64 units) and beyond a wave (144)
    assertThat(FlashPlan.of(4 * 16, 1, 65_536, 192, H100_SMS, H100_SHARED, false, true, false).steal()).isTrue();
    assertThat(FlashPlan.of(9 * 16, 1, 16_384, 192, H100_SMS, H100_SHARED, false, true, false).steal()).isTrue();
    assertThat(FlashPlan.of(9 * 16, 1, 4096, 192, H100_SMS, H100_SHARED, false, true, false).steal()).isFalse();
    assertThat(FlashPlan.of(9 * 32, 1, 4096, 96, H100_SMS, H100_SHARED, false, false, false).splits()).isEqualTo(1);
  }

  /**
   * FlashDevice plans from the strides of the K and V it reads and the device's memory: heads 1280 keys apart (a
   * cache of 1280 keys read up to 1024) are stack-aligned on an H100 whatever the key count, contiguous heads of 1024
   * keys and heads interleaved in [B, L, H, E] are not, and a bus of power-of-two stacks never is; decode calls with
   * GQA plan the group's query heads as the rows of one kv head.
   */
  @Test
  void theDevicePlansFromTheStridesOfKAndV() {
    try (Arena arena = Arena.ofConfined()) {
      // B = 6, 16 kv heads of head dim 128 (0.73 waves: the short-tile blocks), 32 query heads (GQA, two per kv head)
      Tensor cache = Tensor.allocate(arena, DType.FLOAT16, 6, 16, 1280, 128);
      Tensor k = cache.view(new long[] {6, 16, 1024, 128}, cache.strides());
      Tensor contiguous = Tensor.allocate(arena, DType.FLOAT16, 6, 16, 1024, 128);
      Tensor interleaved = Tensor.allocate(arena, DType.FLOAT16, 6, 1280, 16, 128).permute(0, 2, 1, 3);
      Tensor q = Tensor.allocate(arena, DType.FLOAT16, 6, 32, 1, 128);
      Tensor o = Tensor.allocate(arena, DType.FLOAT16, 6, 32, 1, 128);
      AttentionRequest r = AttentionRequest.create(q, k, k, o, null, AttentionOptions.builder().enableGqa(true).build());
      assertThat(FlashDevice.packsGroup(r)).isTrue();
      FlashPlan p = FlashDevice.plan(r, k.strides(), k.strides(), device(5120), true);
      assertThat(p).returns(true, FlashPlan::stagger).returns(6 * 16, FlashPlan::gridY).returns(1, FlashPlan::gridX)
          .returns(FlashPlan.SHORT_TILES.name(), FlashPlan::traitsName);
      // V alone at those strides
      assertThat(FlashDevice.plan(r, contiguous.strides(), k.strides(), device(5120), true).stagger()).isTrue();
      assertThat(FlashDevice.plan(r, contiguous.strides(), contiguous.strides(), device(5120), true).stagger())
          .isFalse();
      assertThat(FlashDevice.plan(r, interleaved.strides(), interleaved.strides(), device(5120), true).stagger())
          .isFalse();
      assertThat(FlashDevice.plan(r, k.strides(), k.strides(), device(8192), true).stagger()).isFalse();
      // the same plan FlashPlan gives the packed grid
      assertThat(p).isEqualTo(FlashPlan.of(6 * 16, 2, 1024, 128, H100_SMS, H100_SHARED, false, true, false,
          FlashPlan.Dram.of(device(5120)), new FlashPlan.KvLayout(1280 * 256, 256, 1280 * 256, 256)));
      // no packing with dropout: 32 heads of one query row each, the main kernel
      AttentionRequest dropout = AttentionRequest.create(q, k, k, o, Tensor.allocate(arena, DType.FLOAT32, 6, 32, 1),
          AttentionOptions.builder().enableGqa(true).dropoutP(0.1).training(true).build());
      assertThat(FlashDevice.packsGroup(dropout)).isFalse();
      assertThat(FlashDevice.plan(dropout, k.strides(), k.strides(), device(5120), true))
          .returns(false, FlashPlan::split).returns(6 * 32, FlashPlan::gridY);
    }
  }

  /**
   * v18: grids whose heads are stack-aligned, above 4096 keys, at head dims 64 and 128 that would steal split their
   * keys in three clusters from one to two waves and in two from two to four waves (v19: staggered); grids that would
   * not steal (paced ones, deterministic calls), 4096 keys, from {@link FlashPlan#STEAL_LONG_KEYS} keys, head dim 256,
   * several row blocks per head and memories of unknown stacks keep the usual plans.
   */
  @Test
  void stackAlignedHeadsThatWouldStealSplitInClusters() {
    FlashPlan.Dram h100 = FlashPlan.Dram.of(device(5120));
    // {batch x heads, keys, head dim, splits (0: not a cluster plan)}: H = 16, E = 128, B = 9 (1.09 waves) at 25600
    // keys (1.9 GB: not paced, would steal), B = 20 (2.42 waves) at 10240 and 15360 (would steal); H = 32, E = 64,
    // B = 10 (2.42 waves) at 20480 (would steal); paced: B = 9 at 5120 and 10240, B = 16 (1.94 waves) at 10240, H = 32,
    // E = 64, B = 5 at 10240 and 20480; one split: B = 20 at 5120; 4096 keys; from STEAL_LONG_KEYS keys (B = 9, 20 at
    // 40960: stealing); head dim 256
    long[][] cases = {{9 * 16, 25_600, 128, 3}, {20 * 16, 10_240, 128, 2}, {20 * 16, 15_360, 128, 2},
        {10 * 32, 20_480, 64, 2}, {9 * 16, 5120, 128, 0}, {9 * 16, 10_240, 128, 0}, {16 * 16, 10_240, 128, 0},
        {5 * 32, 10_240, 64, 0}, {5 * 32, 20_480, 64, 0}, {20 * 16, 5120, 128, 0}, {20 * 16, 4096, 128, 0},
        {9 * 16, 40_960, 128, 0}, {20 * 16, 40_960, 128, 0}, {20 * 8, 5120, 256, 0}};
    for (long[] c : cases) {
      long bh = c[0], lk = c[1], e = c[2];
      FlashPlan.KvLayout kv = FlashPlan.KvLayout.contiguous(lk, e);
      String what = bh + " blocks, Lk = " + lk + ", E = " + e;
      FlashPlan p = FlashPlan.of(bh, 1, lk, e, H100_SMS, H100_SHARED, false, true, false, h100, kv);
      FlashPlan usual = FlashPlan.of(bh, 1, lk, e, H100_SMS, H100_SHARED, false, true, false, H100_DRAM, kv);
      if (c[3] > 0) {
        assertThat(usual.steal()).as(what).isTrue();
        assertThat(p.splits()).as(what).isEqualTo((int) c[3]);
        assertThat(p.cluster()).as(what).isTrue();
        assertThat(p.steal()).as(what).isFalse();
        assertThat(p.paced()).as(what).isFalse();
        assertThat(p.stagger()).as(what).isTrue();
        assertThat(p.traitsName()).isEqualTo(FlashPlan.DECODE[FlashPlan.headDimClass(e)].name());
      } else {   // the usual plan (staggered or not)
        assertThat(p.splits()).as(what).isEqualTo(usual.splits());
        assertThat(p.steal()).as(what).isEqualTo(usual.steal());
        assertThat(p.pacePicos()).as(what).isEqualTo(usual.pacePicos());
        assertThat(p.traitsName()).as(what).isEqualTo(usual.traitsName());
      }
      // deterministic calls never steal: nothing to replace
      FlashPlan deterministic = FlashPlan.of(bh, 1, lk, e, H100_SMS, H100_SHARED, false, true, true, h100, kv);
      assertThat(deterministic.splits()).as(what).isEqualTo(
          FlashPlan.of(bh, 1, lk, e, H100_SMS, H100_SHARED, false, true, true, H100_DRAM, kv).splits());
    }
    // several row blocks per head (GQA-packed rows of 32 query heads): the usual plan
    assertThat(FlashPlan.of(9 * 16, 32, 25_600, 128, H100_SMS, H100_SHARED, false, true, false, h100,
        FlashPlan.KvLayout.contiguous(25_600, 128)).splits()).isNotEqualTo(3);
  }

  /** An H100 SXM of {@code busBits} bits of memory bus. */
  private static CudaDevice device(int busBits) {
    return new CudaDevice(0, "test", new ComputeCapability(9, 0), 80L << 30, H100_SMS, H100_SHARED,
        H100_DRAM.bandwidth(), H100_DRAM.l2Bytes(), busBits);
  }

  private static void assertOneSplitOf(FlashPlan.DecodeTraits traits, long b, long lk) {
    for (boolean deterministic : new boolean[] {true, false}) {
      FlashPlan p = FlashPlan.of(b * 16, 1, lk, 128, H100_SMS, H100_SHARED, false, true, deterministic);
      assertThat(p.traitsName()).as("B = %d, Lk = %d", b, lk).isEqualTo(traits.name());
      assertThat(p.threads()).isEqualTo(traits.warps() * 32);
      assertThat(p.sharedBytes()).isEqualTo(64 * 1024);
      assertThat(p.splits()).isEqualTo(1);
      assertThat(p.steal()).isFalse();
      assertThat(p.workspace()).isFalse();
      assertThat(p.kernel(DType.FLOAT16, 128, false)).isEqualTo("flash_decode_f16_d128_" + traits.name());
      assertThat(p.kernel(DType.BFLOAT16, 104, false)).isEqualTo("flash_decode_bf16_d128_" + traits.name() + "_pad");
    }
  }

  /**
   * Head dims 64 and 256, whose decode traits fill an SM with one 128 KB block as head dim 128's do, pace the same
   * grids: one wave split as far as it allows on {@link FlashPlan#DECODE}'s traits; one to two waves on their
   * {@link FlashPlan#PACED_WIDE} traits (64: {@link FlashPlan#NARROW_64}, three per SM; 256: the compact traits, two
   * per SM); no further.
   */
  @Test
  void headDims64And256PaceAsHeadDim128Does() {
    // {H, E, B, Lk, splits, paced traits' blockN, warps, fraction of the peak (thousandths)}: the SlowerPace of
    // NARROW_64 up to UNSPLIT_MAX_KEYS keys (B = 6, 8 at 4k) and of head dim 256's compact traits up to 1.05 and 1.1
    // waves (B = 17, 18: 136 and 144 blocks; not B = 19, 152 blocks); the compact traits up to
    // PACE_WIDE_MAX_BYTES_COMPACT_256 (B = 22 at 16k, 2.95 GB)
    long[][] paced = {{32, 64, 1, 16_384, 4, 64, 4, 934}, {32, 64, 1, 65_536, 4, 64, 4, 934},
        {32, 64, 2, 65_536, 2, 64, 4, 941}, {32, 64, 4, 16_384, 1, 64, 4, 934}, {32, 64, 8, 4096, 1, 64, 2, 920},
        {32, 64, 6, 4096, 1, 64, 2, 920}, {32, 64, 5, 8192, 1, 64, 2, 934}, {32, 64, 8, 16_384, 1, 64, 2, 934},
        {8, 256, 2, 65_536, 8, 16, 4, 934}, {8, 256, 4, 16_384, 4, 16, 4, 934}, {8, 256, 16, 4096, 1, 16, 4, 934},
        {8, 256, 24, 4096, 1, 16, 2, 934}, {8, 256, 17, 8192, 1, 16, 2, 910}, {8, 256, 18, 16_384, 1, 16, 2, 920},
        {8, 256, 19, 8192, 1, 16, 2, 934}, {8, 256, 22, 16_384, 1, 16, 2, 934}, {8, 256, 24, 8192, 1, 16, 2, 934}};
    for (long[] c : paced) {
      FlashPlan p = FlashPlan.of(c[0] * c[2], 1, c[3], c[1], H100_SMS, H100_SHARED, false, true, false, H100_DRAM);
      String shape = "E = " + c[1] + ", B = " + c[2] + ", Lk = " + c[3] + ": " + p;
      assertThat(p.paced()).as(shape).isTrue();
      assertThat(p.splits()).as(shape).isEqualTo((int) c[4]);
      assertThat(p.cluster() || p.steal()).as(shape).isFalse();
      assertThat(p.threads()).as(shape).isEqualTo((int) c[6] * 32);
      FlashPlan.DecodeTraits t = new FlashPlan.DecodeTraits((int) c[1], (int) c[5], (int) c[6], c[6] == 2 && c[1] == 256
          ? 3 : 2);
      assertThat(p.kernel(DType.FLOAT16, c[1], false)).as(shape).isEqualTo("flash_decode_f16_d" + c[1] + "_" + t.name());
      assertThat(p.sharedBytes()).as(shape).isEqualTo(t.sharedBytes());
      double gridBytesPerPace = c[0] * c[2] * c[4] * c[6] * (2.0 * c[5] * c[1] * 2);
      assertThat(gridBytesPerPace * 1e12 / p.pacePicos()).as(shape).isCloseTo(c[7] / 1000.0 * H100_DRAM.bandwidth(),
          org.assertj.core.data.Percentage.withPercentage(1e-4));
    }
    assertThat(FlashPlan.NARROW_64.sharedBytes()).isEqualTo(64 * 1024);
    assertThat(FlashPlan.DECODE_COMPACT[5].sharedBytes()).isEqualTo(96 * 1024);
    // not paced: within twice the L2 (E = 64, B = 1 at 4k; E = 256, B = 1 at 4k), beyond two waves (E = 64, B = 9 at
    // 4k; E = 256, B = 34 at 4k), beyond PACE_WIDE_MAX_BYTES (E = 64, B = 8 at 32k) or, at head dim 256,
    // PACE_WIDE_MAX_BYTES_COMPACT_256 (B = 24 at 16k, 3.2 GB; B = 17 at 32k)
    long[][] unpaced = {{32, 64, 1, 4096}, {8, 256, 1, 4096}, {32, 64, 9, 4096}, {8, 256, 34, 4096},
        {32, 64, 8, 32_768}, {8, 256, 24, 16_384}, {8, 256, 17, 32_768}};
    for (long[] c : unpaced) {
      assertThat(FlashPlan.of(c[0] * c[2], 1, c[3], c[1], H100_SMS, H100_SHARED, false, true, false, H100_DRAM).paced())
          .as("E = %d, B = %d, Lk = %d", c[1], c[2], c[3]).isFalse();
    }
    // nor where two of head dim 256's compact blocks would not fit the SM's shared memory
    assertThat(FlashPlan.of(32 * 8, 1, 4096, 256, H100_SMS, 2 * 96 * 1024 - 1, false, true, false, H100_DRAM).paced())
        .isFalse();
  }

  /**
   * Head dim 256's decode grids of many units with at most 8192 keys run on the main kernel where its grid, two blocks
   * per SM, takes at most two waves and its last wave is nearly full; never on the Hopper kernel without dropout.
   * Short last waves, more keys, other head dims, devices without clusters and compact devices keep the decode rules.
   */
  @Test
  void headDim256DecodeGridsOfManyUnitsRunTheMainKernel() {
    FlashPlan.Traits main256 = FlashPlan.MAIN[FlashPlan.headDimClass(256)];
    // {B (H = 8), Lk}: 224 to 528 blocks, 0.85 to 2 waves of 264
    long[][] onMain = {{28, 8192}, {32, 2048}, {32, 4096}, {53, 4096}, {56, 4096}, {64, 4096}, {64, 8192}, {66, 1}};
    for (long[] c : onMain) {
      FlashPlan p = FlashPlan.of(8 * c[0], 1, c[1], 256, H100_SMS, H100_SHARED, false, true, false, H100_DRAM);
      String shape = "B = " + c[0] + ", Lk = " + c[1] + ": " + p;
      assertThat(p.split()).as(shape).isFalse();
      assertThat(p.kernel(DType.FLOAT16, 256, false)).as(shape).isEqualTo("flash_fwd_f16_d256");
      assertThat(p.gridX()).as(shape).isEqualTo(1);
      assertThat(p.gridY()).as(shape).isEqualTo(8 * (int) c[0]);
      assertThat(p.threads()).as(shape).isEqualTo(main256.threads());
      assertThat(p.sharedBytes()).as(shape).isEqualTo(main256.sharedBytes());
      assertThat(p.workspace() || p.paced()).as(shape).isFalse();
      assertThat(p.hopper(true, 256, 1, c[1], false)).as(shape).isEmpty();
      assertThat(FlashPlan.of(8 * c[0], 1, c[1], 256, H100_SMS, H100_SHARED, false, true, true, H100_DRAM))
          .as("deterministic, " + shape).isEqualTo(p);
    }
    // GQA decode packs two query heads per kv head as rows (one 64-row block); a padded head dim runs the _pad kernel
    FlashPlan gqa = FlashPlan.of(56 * 8, 2, 4096, 232, H100_SMS, H100_SHARED, false, true, false, H100_DRAM);
    assertThat(gqa.split()).isFalse();
    assertThat(gqa.kernel(DType.BFLOAT16, 232, false)).isEqualTo("flash_fwd_bf16_d256_pad");
    assertThat(gqa.hopper(true, 256, 2, 4096, false)).isEmpty();
    // with dropout every call runs the main kernel, and the Hopper _drop kernel serves decode calls as before
    assertThat(FlashPlan.of(8 * 56, 1, 4096, 256, H100_SMS, H100_SHARED, true, true, false, H100_DRAM)
        .hopper(true, 256, 1, 4096, true)).isPresent();
    // decode rules: B = 24 (0.73 of a wave), 36, 48 and 52 (0.55, 0.73 and 0.79 of the second), 67 (past two waves);
    // 8193 keys; head dim 128 (B = 64, H = 16)
    long[][] decode = {{8 * 24, 4096, 256}, {8 * 36, 4096, 256}, {8 * 48, 4096, 256}, {8 * 52, 4096, 256},
        {8 * 67, 4096, 256}, {8 * 56, 8193, 256}, {8 * 56, 16_384, 256}, {16 * 64, 4096, 128}};
    for (long[] c : decode) {
      assertThat(FlashPlan.of(c[0], 1, c[1], c[2], H100_SMS, H100_SHARED, false, true, false, H100_DRAM).split())
          .as("B x H = %d, Lk = %d, E = %d", c[0], c[1], c[2]).isTrue();
    }
    // without clusters, or with the compact decode traits (sm_86 / sm_89)
    assertThat(FlashPlan.of(8 * 56, 1, 4096, 256, H100_SMS, H100_SHARED, false).split()).isTrue();
    assertThat(FlashPlan.of(8 * 56, 1, 4096, 256, 84, SM86_SHARED, false, true, false, H100_DRAM).split()).isTrue();
  }

  @Test
  void theSplitWorkspaceHoldsEverySplitsPartialOutputsAndLses() {
    FlashPlan p = FlashPlan.of(1 * 16, 1, 4096, 128, H100_SMS, H100_SHARED, false, true);
    assertThat(p.partialBytes(1, 128)).isEqualTo(8L * 16 * 1 * 129 * 4);
    assertThat(p.counters()).isEqualTo(16);
    FlashPlan gqa = FlashPlan.of(8, 4, 65_535, 120, H100_SMS, H100_SHARED, false, true);
    assertThat(gqa.partialBytes(4, 120)).isEqualTo(16L * 8 * 4 * 121 * 4);
    assertThat(gqa.counters()).isEqualTo(8);
  }

  @Test
  void decodeBlocksCoverPackedQueryRows() {
    // GQA decode packs a group's query heads as rows: 40 rows take three 16-row blocks
    FlashPlan p = FlashPlan.of(2, 40, 8192, 64, H100_SMS, H100_SHARED, false);
    assertThat(p.split()).isTrue();
    assertThat(p.gridX()).isEqualTo(3);
    assertThat(p.counters()).isEqualTo(6);
    assertThat(p.kernel(DType.FLOAT16, 64, false)).isEqualTo("flash_decode_f16_d64_n64w4s2");
  }

  @Test
  void trainingShapesUseTheMainKernelsWithoutSplits() {
    FlashPlan p = FlashPlan.of(4 * 16, 4096, 4096, 128, H100_SMS, H100_SHARED, false);
    assertThat(p.split()).isFalse();
    assertThat(p.splits()).isEqualTo(1);
    assertThat(p.gridX()).isEqualTo(32);
    assertThat(p.headDim()).isEqualTo(128);
    assertThat(p.threads()).isEqualTo(FlashPlan.MAIN[3].threads());
    assertThat(p.sharedBytes()).isEqualTo(FlashPlan.MAIN[3].sharedBytes());
    assertThat(p.kernel(DType.FLOAT16, 128, false)).isEqualTo("flash_fwd_f16_d128");
    assertThat(p.kernel(DType.BFLOAT16, 80, true)).isEqualTo("flash_fwd_bf16_d128_pad_drop");
    assertThat(p.workspace()).isFalse();
    assertThat(FlashPlan.of(4 * 16, 4096, 4096, 128, H100_SMS, H100_SHARED, false, true).cluster()).isFalse();
  }

  @Test
  void dropoutAlwaysRunsTheMainKernels() {
    // the split-KV kernels have no dropout: decode-sized and small-grid calls take the main kernels instead
    FlashPlan p = FlashPlan.of(1 * 16, 1, 65_536, 128, H100_SMS, H100_SHARED, true);
    assertThat(p.split()).isFalse();
    assertThat(p.splits()).isEqualTo(1);
    assertThat(p.sharedBytes()).isEqualTo(FlashPlan.MAIN[3].sharedBytes());
    assertThat(FlashPlan.of(1, 300, 16_384, 64, H100_SMS, H100_SHARED, true).split()).isFalse();
    assertThat(FlashPlan.of(1, 300, 16_384, 64, H100_SMS, H100_SHARED, false).split()).isTrue();
  }

  @Test
  void hopperKernelsReplaceTheMainKernelOnlyWhereTheRuleAllows() {
    FlashPlan p = FlashPlan.of(4 * 16, 4096, 4096, 128, H100_SMS, H100_SHARED, false);
    FlashPlan.HopperTraits t = p.hopper(true, 128, 4096, 4096, false).orElseThrow();
    assertThat(t.kernel(DType.FLOAT16, 128, false)).isEqualTo("flash_fwd_sm90_f16_d128");
    assertThat(t.kernel(DType.BFLOAT16, 128, false)).isEqualTo("flash_fwd_sm90_bf16_d128");
    assertThat(t.kernel(DType.BFLOAT16, 128, true)).isEqualTo("flash_fwd_sm90_bf16_d128_drop");
    assertThat(t.gridX(4096)).isEqualTo(32);
    assertThat(t.gridX(4097)).isEqualTo(33);
    // dropout runs the _drop kernel; no sm_90a module (another architecture, or the compute_80 PTX fallback) keeps the
    // mma.sync kernel
    assertThat(FlashPlan.of(4 * 16, 4096, 4096, 128, H100_SMS, H100_SHARED, true).hopper(true, 128, 4096, 4096, true))
        .containsSame(t);
    assertThat(p.hopper(false, 128, 4096, 4096, false)).isEmpty();
    // a head dim below its class runs the class's _pad kernel; head dims 96 and 192 have their own; the class of 32
    // (head dims 8-32) has none
    FlashPlan.HopperTraits t120 = FlashPlan.of(4 * 16, 4096, 4096, 120, H100_SMS, H100_SHARED, false)
        .hopper(true, 120, 4096, 4096, false).orElseThrow();
    assertThat(t120).isSameAs(t);
    assertThat(t120.kernel(DType.FLOAT16, 120, false)).isEqualTo("flash_fwd_sm90_f16_d128_pad");
    assertThat(t120.kernel(DType.BFLOAT16, 120, true)).isEqualTo("flash_fwd_sm90_bf16_d128_pad_drop");
    for (long[] ek : new long[][] {{96, 96}, {80, 96}, {72, 96}, {192, 192}, {136, 192}, {184, 192}, {200, 256},
        {40, 64}}) {
      FlashPlan.HopperTraits h = FlashPlan.of(4 * 16, 8192, 8192, ek[0], H100_SMS, H100_SHARED, false)
          .hopper(true, ek[0], 8192, 8192, false).orElseThrow();
      assertThat(h.headDim()).as("head dim %d", ek[0]).isEqualTo(ek[1]);
      assertThat(h.kernel(DType.FLOAT16, ek[0], false))
          .isEqualTo("flash_fwd_sm90_f16_d" + ek[1] + (ek[0] == ek[1] ? "" : "_pad"));
    }
    assertThat(FlashPlan.of(4 * 16, 4096, 4096, 32, H100_SMS, H100_SHARED, false).hopper(true, 32, 4096, 4096, false))
        .isEmpty();
    assertThat(FlashPlan.of(4 * 16, 4096, 4096, 24, H100_SMS, H100_SHARED, true).hopper(true, 24, 4096, 4096, true))
        .isEmpty();
    // the decode (split) kernels stay
    FlashPlan decode = FlashPlan.of(16, 1, 4096, 128, H100_SMS, H100_SHARED, false);
    assertThat(decode.split()).isTrue();
    assertThat(decode.hopper(true, 128, 1, 4096, false)).isEmpty();
    // head dim 64 keeps the mma.sync kernel below 8192 keys without dropout; 128 and 256 take the Hopper kernel at any length
    FlashPlan p64 = FlashPlan.of(16 * 32, 1024, 1024, 64, H100_SMS, H100_SHARED, false);
    assertThat(p64.hopper(true, 64, 1024, 4096, false)).isEmpty();
    assertThat(p64.hopper(true, 64, 1024, 8192, false).orElseThrow().kernel(DType.FLOAT16, 64, false))
        .isEqualTo("flash_fwd_sm90_f16_d64");
    // and so does its class below 64
    assertThat(FlashPlan.of(16 * 32, 1024, 1024, 48, H100_SMS, H100_SHARED, false).hopper(true, 48, 1024, 4096, false))
        .isEmpty();
    // with dropout the wgmma _drop kernel at every length
    assertThat(FlashPlan.of(16 * 32, 512, 512, 64, H100_SMS, H100_SHARED, true).hopper(true, 64, 512, 512, true)
        .orElseThrow().kernel(DType.BFLOAT16, 64, true)).isEqualTo("flash_fwd_sm90_bf16_d64_drop");
    FlashPlan p256 = FlashPlan.of(32 * 8, 512, 512, 256, H100_SMS, H100_SHARED, false);
    assertThat(p256.hopper(true, 256, 512, 512, false).orElseThrow().sharedBytes())
        .isEqualTo((128 + 2 * 2 * 64) * 256 * 2);
  }

  @Test
  void decodeTraitsMatchTheKernelSource() throws java.io.IOException {
    String src = packagedSource("/dev/sdpa4j/cuda/flash/flash_fwd.cu");
    // typedef DecodeTraits<D, keys per warp tile, warps, stages> S<D>_n<keys>w<warps>s<stages>: the name states the
    // numbers, and every traits table entry of FlashPlan has one
    var m = java.util.regex.Pattern.compile("typedef DecodeTraits<(\\d+), (\\d+), (\\d+), (\\d+)> S(\\d+)_(\\w+);")
        .matcher(src);
    java.util.Set<String> declared = new java.util.HashSet<>();
    while (m.find()) {
      assertThat(m.group(5)).isEqualTo(m.group(1));
      assertThat(m.group(6)).isEqualTo("n" + m.group(2) + "w" + m.group(3) + "s" + m.group(4));
      declared.add(m.group(1) + "_" + m.group(6));
    }
    // the split tables' traits get every entry point (plain, _ws, _cl), the one-split ones (head dim 128's and the
    // paced wide traits) at least the plain ones in both dtypes
    for (FlashPlan.DecodeTraits t : concat(FlashPlan.DECODE, FlashPlan.DECODE_COMPACT)) {
      assertThat(declared).contains(t.headDim() + "_" + t.name());
      assertThat(src).contains("FLASH_DECODE(" + t.headDim() + ", " + t.name() + ")");
    }
    java.util.List<FlashPlan.DecodeTraits> oneSplit = new java.util.ArrayList<>(
        java.util.List.of(FlashPlan.NARROW, FlashPlan.SHORT_TILES, FlashPlan.SLIM));
    for (FlashPlan.PacedWide w : FlashPlan.PACED_WIDE) {
      oneSplit.add(w.traits());
    }
    for (FlashPlan.DecodeTraits t : oneSplit) {
      String d = "d" + t.headDim() + "_" + t.name();
      assertThat(declared).contains(t.headDim() + "_" + t.name());
      for (String dt : new String[] {"f16", "bf16"}) {
        assertThat(src).containsAnyOf("FLASH_DECODE_ENTRY(flash_decode_" + dt + "_" + d + ", S" + t.headDim() + "_"
            + t.name(), "FLASH_DECODE(" + t.headDim() + ", " + t.name() + ")");
      }
    }
  }

  @Test
  void hopperTraitsMatchTheKernelSource() throws java.io.IOException {
    String src = packagedSource("/dev/sdpa4j/cuda/flash_sm90/flash_fwd_sm90.cu");
    var m = java.util.regex.Pattern.compile("typedef Sm90Traits<(\\d+), (\\d+), (\\d+)> H(\\d+);").matcher(src);
    java.util.List<String> declared = new java.util.ArrayList<>();
    while (m.find()) {
      assertThat(m.group(4)).isEqualTo(m.group(1));
      declared.add(m.group(1) + "/" + m.group(2) + "/" + m.group(3));
    }
    assertThat(declared).containsExactly(java.util.Arrays.stream(FlashPlan.HOPPER)
        .map(t -> t.headDim() + "/" + t.blockN() + "/" + t.stages()).toArray(String[]::new));
  }

  /** The text of a kernel source packaged with the provider ({@code path} on the class path). */
  private static String packagedSource(String path) throws java.io.IOException {
    try (var in = CudaFlashProvider.class.getResourceAsStream(path)) {
      assertThat(in).as("packaged %s", path).isNotNull();
      return new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
    }
  }

  @Test
  void hopperTilesFitTheH100AndCoverTheIssueHeadDims() {
    // every head-dim class of the main kernel but 32's
    assertThat(FlashPlan.HOPPER).extracting(FlashPlan.HopperTraits::headDim).containsExactly(64, 96, 128, 192, 256);
    for (FlashPlan.HopperTraits t : FlashPlan.HOPPER) {
      // sm_90's opt-in maximum per block; the tile layout needs 32- or 64-column blocks, 16-key k-steps and stages of
      // whole 1024-byte swizzle periods
      assertThat(t.sharedBytes()).isLessThanOrEqualTo(H100_SHARED);
      assertThat(t.headDim() % 32).isZero();
      assertThat(t.blockN() * t.headDim() * 2 % 1024).isZero();
      assertThat(t.blockN() % 16).isZero();
      assertThat(t.stages()).isGreaterThanOrEqualTo(2);
    }
  }

  @Test
  void splitCountsAreEfficientAndDistinct() {
    for (long blocks = 1; blocks < 300; blocks += 7) {
      for (long keyBlocks = 1; keyBlocks < 2000; keyBlocks = keyBlocks * 3 + 1) {
        int s = FlashPlan.numSplits(blocks, keyBlocks, 2 * H100_SMS, FlashPlan.MAIN_EFFICIENCY);
        assertThat(s).isBetween(1, (int) Math.max(1, Math.min(FlashPlan.MAX_SPLITS, keyBlocks)));
        if (blocks >= 0.8 * 2 * H100_SMS) {
          assertThat(s).isEqualTo(1);
        }
      }
    }
  }

  /**
   * NVRTC gets the headers from each module's packaged folder: every kernel file includes flash_common.cuh, the two
   * backward files through flash_bwd_common.cuh.
   */
  @Test
  void packagedKernelSourcesFindTheHeadersTheyInclude() {
    for (var source : java.util.List.of(FlashDevice.KERNELS, FlashDevice.FWD_SM90_KERNELS)) {
      byte[] text = source.read(source.sourceFile()).orElseThrow();
      assertThat(source.headers(text).sequencedKeySet()).as(source.sourceFile()).containsExactly("flash_common.cuh");
    }
    for (var source : java.util.List.of(FlashDevice.BWD_KERNELS, FlashDevice.BWD_SM90_KERNELS)) {
      byte[] text = source.read(source.sourceFile()).orElseThrow();
      assertThat(source.headers(text).sequencedKeySet()).as(source.sourceFile())
          .containsExactly("flash_bwd_common.cuh", "flash_common.cuh");
    }
  }
}
