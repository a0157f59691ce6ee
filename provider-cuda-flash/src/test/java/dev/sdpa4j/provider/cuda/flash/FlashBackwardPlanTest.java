package dev.sdpa4j.provider.cuda.flash;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdpa4j.DType;
import org.junit.jupiter.api.Test;

/** Launch rules of the backward kernels; runs everywhere. */
class FlashBackwardPlanTest {
  private static final int H100_SMEM_OPTIN = 227 * 1024;
  private static final int A100_SMEM_OPTIN = 163 * 1024;
  private static final int SM86_SMEM_OPTIN = 99 * 1024;

  @Test
  void headDimsRunTheNextSpecialisationAndOnlyExactOnesSkipThePredicates() {
    assertThat(FlashBackwardPlan.of(DType.FLOAT16, 1, 1, 1, 10, 10, 8, false, false).main())
        .isEqualTo("flash_bwd_f16_d32_pad");
    assertThat(FlashBackwardPlan.of(DType.FLOAT16, 1, 1, 1, 10, 10, 32, false, false).main())
        .isEqualTo("flash_bwd_f16_d32_pad");
    assertThat(FlashBackwardPlan.of(DType.BFLOAT16, 1, 1, 1, 10, 10, 64, false, false).main())
        .isEqualTo("flash_bwd_bf16_d64");
    assertThat(FlashBackwardPlan.of(DType.BFLOAT16, 1, 1, 1, 10, 10, 80, true, false).main())
        .isEqualTo("flash_bwd_bf16_d128_pad_drop");
    assertThat(FlashBackwardPlan.of(DType.FLOAT16, 1, 1, 1, 10, 10, 128, true, true).main())
        .isEqualTo("flash_bwd_f16_d128_drop_det");
    assertThat(FlashBackwardPlan.of(DType.FLOAT16, 1, 1, 1, 10, 10, 256, false, false).main())
        .isEqualTo("flash_bwd_f16_d256_pad");
  }

  @Test
  void fastModeAccumulatesDqInFp32AndDeterministicModeRunsTheDqKernel() {
    FlashBackwardPlan fast = FlashBackwardPlan.of(DType.BFLOAT16, 2, 16, 4, 1000, 3000, 128, false, false);
    assertThat(fast.dq()).isNull();
    assertThat(fast.dqAccumBytes()).isEqualTo(2L * 16 * 1000 * 128 * 4);
    assertThat(fast.dsumBytes()).isEqualTo(2L * 16 * 1000 * 4);
    assertThat(fast.mainGridX()).isEqualTo((3000 + 127) / 128);
    assertThat(fast.mainGridY()).isEqualTo(2 * 4);  // one block per kv head: the GQA group is reduced inside it
    assertThat(fast.mainSharedBytes()).isEqualTo(fast.traits().sharedBytes(false));

    FlashBackwardPlan det = FlashBackwardPlan.of(DType.BFLOAT16, 2, 16, 4, 1000, 3000, 96, true, true);
    assertThat(det.main()).isEqualTo("flash_bwd_bf16_d128_pad_drop_det");
    assertThat(det.dq()).isEqualTo("flash_bwd_dq_bf16_d128_drop");
    assertThat(det.dqAccumBytes()).isZero();
    assertThat(det.dqGridX()).isEqualTo((1000 + 63) / 64);
    assertThat(det.dqGridY()).isEqualTo(2 * 16);
    assertThat(det.mainSharedBytes()).isEqualTo(det.traits().sharedBytes(true));
    assertThat(det.traits()).isEqualTo(FlashBackwardPlan.MAIN_DROPOUT[2]);
    assertThat(det.traits().blockM()).isEqualTo(32);
    assertThat(fast.traits()).isEqualTo(FlashBackwardPlan.MAIN[2]);
  }

  @Test
  void tilesAreConsistentAndFitHopperAndAmpere() {
    assertThat(FlashBackwardPlan.MAIN_DROPOUT).hasSameSizeAs(FlashBackwardPlan.MAIN);
    for (int k = 0; k < 2 * FlashBackwardPlan.MAIN.length; k++) {
      int c = k % FlashBackwardPlan.MAIN.length;
      boolean dropout = k >= FlashBackwardPlan.MAIN.length;  // MAIN runs without the kept bits, MAIN_DROPOUT with
      FlashBackwardPlan.Traits t = (dropout ? FlashBackwardPlan.MAIN_DROPOUT : FlashBackwardPlan.MAIN)[c];
      FlashBackwardPlan.DqTraits q = FlashBackwardPlan.DQ[c];
      assertThat(t.headDim()).isEqualTo(FlashBackwardPlan.MAIN[c].headDim());
      assertThat(t.exact()).isEqualTo(FlashBackwardPlan.MAIN[c].exact());
      assertThat(q.headDim()).isEqualTo(t.headDim());
      int warps = t.threads() / 32;
      assertThat(warps).isEqualTo(t.blockN() / 16 * t.dSplit());
      assertThat(warps % (t.blockM() / 16)).as("dQ warp grid").isZero();
      assertThat(t.headDim() / t.dSplit() % 16).isZero();
      assertThat(t.blockM()).isLessThanOrEqualTo(64);
      assertThat(t.sharedBytes(dropout)).isLessThanOrEqualTo(A100_SMEM_OPTIN).isLessThanOrEqualTo(H100_SMEM_OPTIN);
      assertThat(t.sharedBytes(false)).isEqualTo(t.sharedBytes(true) - 2 * t.blockM() * t.blockN() / 4);
      assertThat(q.sharedBytes()).isLessThanOrEqualTo(SM86_SMEM_OPTIN);
    }
    // the provider refuses training above these head dims on 99 KiB devices (sm_86, sm_89)
    assertThat(FlashBackwardPlan.sharedBytes(64)).isLessThanOrEqualTo(SM86_SMEM_OPTIN);
    assertThat(FlashBackwardPlan.sharedBytes(128)).isGreaterThan(SM86_SMEM_OPTIN);
  }

  @Test
  void sharedMemoryHoldsTwoDsTransposeBuffers() {
    // D=64: K, V 2 x 128 x 64, Q and dO 4 x 64 x 64, dS^T 2 x 128 x 64 (16-bit), LSE and D 4 x 64 (fp32)
    FlashBackwardPlan.Traits d64 = FlashBackwardPlan.MAIN[1];
    assertThat(d64.sharedBytes(false)).isEqualTo((2 * 128 * 64 + 4 * 64 * 64 + 2 * 128 * 64) * 2 + 4 * 64 * 4);
    assertThat(d64.sharedBytes(false)).isEqualTo(99_328).isLessThanOrEqualTo(SM86_SMEM_OPTIN);
    // D=128 without dropout: 160 KiB + 1 KiB, still within an A100's opt-in
    assertThat(FlashBackwardPlan.MAIN[2].sharedBytes(false)).isEqualTo(164_864).isLessThanOrEqualTo(A100_SMEM_OPTIN);
  }

  @Test
  void hopperRunsTheWgmmaKernelsForExactHeadDims64And128InFastModeOnly() {
    FlashBackwardPlan h64 = FlashBackwardPlan.of(DType.BFLOAT16, 2, 16, 4, 1000, 3000, 64, false, false, true);
    assertThat(h64.wgmma()).isTrue();
    assertThat(h64.main()).isEqualTo("flash_bwd_sm90_bf16_d64");
    assertThat(h64.mainThreads()).isEqualTo(256);
    assertThat(h64.mainGridX()).isEqualTo((3000 + 127) / 128);
    assertThat(h64.mainGridY()).isEqualTo(2 * 4);
    assertThat(h64.mainSharedBytes()).isEqualTo(FlashBackwardPlan.SM90[0].sharedBytes(false));
    assertThat(h64.dq()).isNull();
    assertThat(h64.dqAccumBytes()).isEqualTo(2L * 16 * 1000 * 64 * 4);
    FlashBackwardPlan h128 = FlashBackwardPlan.of(DType.FLOAT16, 1, 8, 8, 10, 10, 128, true, false, true);
    assertThat(h128.main()).isEqualTo("flash_bwd_sm90_f16_d128_drop");
    assertThat(h128.mainSharedBytes()).isEqualTo(FlashBackwardPlan.SM90[1].sharedBytes(true));
    // other head dims, deterministic mode and other devices keep the mma.sync kernels
    FlashBackwardPlan pad = FlashBackwardPlan.of(DType.FLOAT16, 1, 8, 8, 10, 10, 96, false, false, true);
    assertThat(pad.wgmma()).isFalse();
    assertThat(pad.main()).isEqualTo("flash_bwd_f16_d128_pad");
    assertThat(pad.mainThreads()).isEqualTo(pad.traits().threads());
    FlashBackwardPlan det = FlashBackwardPlan.of(DType.FLOAT16, 1, 8, 8, 10, 10, 128, false, true, true);
    assertThat(det.wgmma()).isFalse();
    assertThat(det.main()).isEqualTo("flash_bwd_f16_d128_det");
    assertThat(det.dq()).isEqualTo("flash_bwd_dq_f16_d128");
    assertThat(FlashBackwardPlan.of(DType.FLOAT16, 1, 8, 8, 10, 10, 128, false, false, false))
        .isEqualTo(FlashBackwardPlan.of(DType.FLOAT16, 1, 8, 8, 10, 10, 128, false, false));
    assertThat(FlashBackwardPlan.of(DType.FLOAT16, 1, 8, 8, 10, 10, 128, false, false).wgmma()).isFalse();
  }

  @Test
  void hopperTilesAreTwoWarpgroupsOf64KeysAndFitAnH100() {
    assertThat(FlashBackwardPlan.SM90).extracting(FlashBackwardPlan.Sm90Traits::headDim).containsExactly(64, 128);
    for (FlashBackwardPlan.Sm90Traits h : FlashBackwardPlan.SM90) {
      assertThat(h.blockN() % 64).isZero();
      assertThat(h.threads()).isEqualTo(256);
      assertThat(h.blockM()).isEqualTo(64);  // the dQ product's M and the S^T product's N: one 64-query block
      assertThat(h.sharedBytes(true)).isLessThanOrEqualTo(H100_SMEM_OPTIN)
          .isEqualTo(h.sharedBytes(false) + 2 * h.blockM() * h.blockN() / 4);
      assertThat(FlashBackwardPlan.sharedBytes(h.headDim())).isGreaterThanOrEqualTo(h.sharedBytes(true));
    }
    // D=128: K, V 2 x 128 x 128, Q and dO 4 x 64 x 128, one dS^T 128 x 64 (16-bit), LSE and D 4 x 64 (fp32)
    assertThat(FlashBackwardPlan.SM90[1].sharedBytes(false))
        .isEqualTo((2 * 128 * 128 + 4 * 64 * 128 + 128 * 64) * 2 + 4 * 64 * 4);
    assertThat(FlashBackwardPlan.sm90(96)).isNull();
    assertThat(FlashBackwardPlan.sm90(64)).isEqualTo(FlashBackwardPlan.SM90[0]);
  }

  @Test
  void rowKernelsUseOneWarpPerRow() {
    assertThat(FlashBackwardPlan.rowBlocks(1)).isEqualTo(1);
    assertThat(FlashBackwardPlan.rowBlocks(4)).isEqualTo(1);
    assertThat(FlashBackwardPlan.rowBlocks(5)).isEqualTo(2);
  }
}
