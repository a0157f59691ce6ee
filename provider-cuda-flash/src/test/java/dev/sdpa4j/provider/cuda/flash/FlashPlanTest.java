package dev.sdpa4j.provider.cuda.flash;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class FlashPlanTest {
  private static final int H100_SMS = 132;

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
    for (FlashPlan.Traits t : FlashPlan.SPLIT) {
      assertThat(t.sharedBytes()).isLessThanOrEqualTo(99 * 1024);
    }
  }

  @Test
  void decodeSplitsKeysAcrossTheDevice() {
    FlashPlan p = FlashPlan.of(1 * 16, 1, 65_536, 128, H100_SMS, false);
    assertThat(p.split()).isTrue();
    assertThat(p.splits()).isGreaterThan(8).isLessThanOrEqualTo(FlashPlan.MAX_SPLITS);
    assertThat(p.gridX()).isEqualTo(1);
    assertThat(p.gridY()).isEqualTo(16);
    // a full device needs no split, but short queries still take the decode kernels
    FlashPlan big = FlashPlan.of(64 * 32, 1, 4096, 128, H100_SMS, false);
    assertThat(big.split()).isTrue();
    assertThat(big.splits()).isEqualTo(1);
  }

  @Test
  void trainingShapesUseTheMainKernelsWithoutSplits() {
    FlashPlan p = FlashPlan.of(4 * 16, 4096, 4096, 128, H100_SMS, false);
    assertThat(p.split()).isFalse();
    assertThat(p.splits()).isEqualTo(1);
    assertThat(p.gridX()).isEqualTo(32);
    assertThat(p.traits()).isEqualTo(FlashPlan.MAIN[3]);
  }

  @Test
  void dropoutAlwaysRunsTheMainKernels() {
    // the split-KV kernels have no dropout: decode-sized and small-grid calls take the main kernels instead
    FlashPlan p = FlashPlan.of(1 * 16, 1, 65_536, 128, H100_SMS, true);
    assertThat(p.split()).isFalse();
    assertThat(p.splits()).isEqualTo(1);
    assertThat(p.traits()).isEqualTo(FlashPlan.MAIN[3]);
    assertThat(FlashPlan.of(1, 300, 16_384, 64, H100_SMS, true).split()).isFalse();
    assertThat(FlashPlan.of(1, 300, 16_384, 64, H100_SMS, false).split()).isTrue();
  }

  @Test
  void splitCountsAreEfficientAndDistinct() {
    for (long blocks = 1; blocks < 300; blocks += 7) {
      for (long keyBlocks = 1; keyBlocks < 2000; keyBlocks = keyBlocks * 3 + 1) {
        int s = FlashPlan.numSplits(blocks, keyBlocks, 2 * H100_SMS);
        assertThat(s).isBetween(1, (int) Math.max(1, Math.min(FlashPlan.MAX_SPLITS, keyBlocks)));
        if (blocks >= 0.8 * 2 * H100_SMS) {
          assertThat(s).isEqualTo(1);
        }
      }
    }
  }
}
