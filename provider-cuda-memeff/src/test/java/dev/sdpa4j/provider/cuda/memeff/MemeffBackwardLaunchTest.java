package dev.sdpa4j.provider.cuda.memeff;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.CausalMode;
import dev.sdpa4j.DType;
import dev.sdpa4j.Device;
import dev.sdpa4j.Dropout;
import dev.sdpa4j.DropoutResolution;
import dev.sdpa4j.Storage;
import dev.sdpa4j.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/** The backward launch plan and parameter bytes, on fake device addresses (no GPU needed). */
class MemeffBackwardLaunchTest {
  private static final long STAT = 0x7e00_0000_0000L;
  private static final long ACC = 0x7d00_0000_0000L;
  private long next = 0x7f00_0000_0000L;

  /** A contiguous tensor at a fresh fake CUDA address (256-byte aligned, like cuMemAlloc's). */
  private Tensor device(DType dt, long... shape) {
    long bytes = dt.byteSize();
    for (long d : shape) {
      bytes *= d;
    }
    Storage s = new Storage.DeviceBuffer(Device.cuda(0), next, 0, bytes);
    next += (bytes + 255) / 256 * 256 + 256;
    return Tensor.contiguous(dt, s, shape);
  }

  private static MemeffBackwardLaunch plan(BackwardRequest r) {
    AttentionRequest f = r.forward();
    return MemeffBackwardLaunch.plan(r, MemeffDevice.view(f.query()), MemeffDevice.view(f.key()),
        MemeffDevice.view(f.value()), MemeffDevice.view(f.output()), MemeffDevice.view(r.gradOutput()),
        MemeffDevice.view(f.lse().orElseThrow()), f.mask().map(MemeffDevice::view).orElse(null),
        f.mask().map(Tensor::dtype).orElse(null), MemeffDevice.view(r.gradQuery()), MemeffDevice.view(r.gradKey()),
        MemeffDevice.view(r.gradValue()), STAT, ACC);
  }

  private static long field(MemeffBackwardLaunch.Step s, int index) {
    return ByteBuffer.wrap(s.params()).order(ByteOrder.nativeOrder()).getLong(index * 8);
  }

  private static double doubleField(MemeffBackwardLaunch.Step s, int index) {
    return ByteBuffer.wrap(s.params()).order(ByteOrder.nativeOrder()).getDouble(index * 8);
  }

  private BackwardRequest request(DType dt, long b, long hq, long hkv, long lq, long lk, long e, long ev,
      AttentionOptions.Builder options) {
    Tensor q = device(dt, b, hq, lq, e);
    Tensor k = device(dt, b, hkv, lk, e);
    Tensor v = device(dt, b, hkv, lk, ev);
    Tensor o = device(dt, b, hq, lq, ev);
    Tensor lse = device(DType.FLOAT32, b, hq, lq);
    AttentionRequest f = AttentionRequest.create(q, k, v, o, lse, options.training(true).build());
    return BackwardRequest.create(f, device(dt, b, hq, lq, ev), device(dt, b, hq, lq, e), device(dt, b, hkv, lk, e),
        device(dt, b, hkv, lk, ev));
  }

  @Test
  void threeLaunchesInOrderWithTheirGridsAndSharedMemory() {
    BackwardRequest r = request(DType.BFLOAT16, 3, 8, 2, 100, 300, 80, 200,
        AttentionOptions.builder().enableGqa(true).causal(CausalMode.BOTTOM_RIGHT).scale(0.25).dropoutP(0.3)
            .dropoutSeed(0x1234_5678_9ABCL, 77));
    MemeffBackwardLaunch l = plan(r);
    MemeffBackwardKernel k = l.kernel();
    assertThat(k.dim()).isEqualTo(256);
    assertThat(l.steps()).extracting(MemeffBackwardLaunch.Step::name)
        .containsExactly("memeff_bwd_pre_bf16", "memeff_bwd_dkdv_bf16_d256", "memeff_bwd_dq_bf16_d256");
    MemeffBackwardLaunch.Step pre = l.steps().get(0);
    MemeffBackwardLaunch.Step dkdv = l.steps().get(1);
    MemeffBackwardLaunch.Step dq = l.steps().get(2);
    assertThat(pre.blocks()).isEqualTo((3 * 8 * 100 + 7) / 8);
    assertThat(pre.threads()).isEqualTo(256);
    long keyTiles = k.keyTiles(300);
    assertThat(dkdv.blocks()).isEqualTo(keyTiles * 3 * 2 * 2);  // 2 chunks cover Ev = 200
    assertThat(dkdv.sharedBytes()).isEqualTo(k.dkdvSharedBytes());
    assertThat(dkdv.threads()).isEqualTo(k.dkdvBlockN() / 16 * 32);
    long queryTiles = k.queryTiles(100);
    assertThat(dq.blocks()).isEqualTo(queryTiles * 3 * 8 * 1);  // 1 chunk covers E = 80
    assertThat(dq.sharedBytes()).isEqualTo(k.dqSharedBytes());
    for (MemeffBackwardLaunch.Step s : l.steps()) {
      assertThat(s.params()).hasSize(MemeffBackwardLaunch.PARAM_BYTES);
      assertThat(field(s, 10)).isEqualTo(STAT);
      // batch, heads, group, lq, lk, e, ev, mask kind, causal, offset
      assertThat(new long[] {field(s, 51), field(s, 52), field(s, 53), field(s, 54), field(s, 55), field(s, 56),
          field(s, 57), field(s, 58), field(s, 59), field(s, 60)}).containsExactly(3, 8, 4, 100, 300, 80, 200, 0, 1,
          200);
      assertThat(doubleField(s, 64)).isEqualTo(0.25 * 1.4426950408889634);
      assertThat(doubleField(s, 65)).isEqualTo(0.25);
      assertThat(doubleField(s, 66)).isEqualTo(1 / 0.7);
      assertThat(field(s, 67)).isEqualTo(1);
      assertThat(field(s, 68)).isEqualTo(Integer.toUnsignedLong(Dropout.Mask.of(0.3, DropoutResolution.WORD).threshold()));
      assertThat(field(s, 69)).isEqualTo(0x1234_5678_9ABCL);
      assertThat(field(s, 70)).isEqualTo(77);
    }
    assertThat(l.atomic()).isFalse();  // head dim 256: no atomic kernel
    assertThat(field(dkdv, 71)).isZero();
    assertThat(new long[] {field(dkdv, 62), field(dkdv, 63)}).containsExactly(keyTiles, 2);
    assertThat(new long[] {field(dq, 62), field(dq, 63)}).containsExactly(queryTiles, 1);
    // LSE strides b, h, l, 0; dK strides of [3, 2, 300, 80]
    assertThat(new long[] {field(dq, 31), field(dq, 32), field(dq, 33), field(dq, 34)})
        .containsExactly(800, 100, 1, 0);
    assertThat(new long[] {field(dq, 43), field(dq, 44), field(dq, 45), field(dq, 46)})
        .containsExactly(2 * 300 * 80, 300 * 80, 80, 1);
    // aligned rows of 80 and 200 bf16 elements: every operand takes 16-byte copies and paired stores
    assertThat(l.flags()).isEqualTo(0x7F);
    assertThat(MemeffBackwardLaunch.statBytes(r.forward().shape())).isEqualTo(2L * 3 * 8 * 100 * 4);
  }

  @Test
  void sixteenBitHeadDimsUpTo128TakeTheAtomicPathUnlessDeterminismIsAsked() {
    BackwardRequest fast = request(DType.FLOAT16, 2, 4, 4, 100, 100, 128, 64, AttentionOptions.builder());
    MemeffBackwardLaunch a = plan(fast);
    assertThat(a.atomic()).isTrue();
    assertThat(a.steps()).extracting(MemeffBackwardLaunch.Step::name)
        .containsExactly("memeff_bwd_pre_f16", "memeff_bwd_dkdvq_f16_d128", "memeff_bwd_dqconv_f16");
    assertThat(a.steps().get(1).sharedBytes()).isEqualTo(a.kernel().dkdvqSharedBytes());
    assertThat(a.steps().get(2).blocks()).isEqualTo((2 * 4 * 100 + 7) / 8);
    for (MemeffBackwardLaunch.Step s : a.steps()) {
      assertThat(field(s, 71)).isEqualTo(ACC);
    }
    assertThat(MemeffBackwardLaunch.accumulatorBytes(fast.forward().shape())).isEqualTo(2L * 4 * 100 * 128 * 4);
    // both head dims at the padded dim: the variant without bounds tests, same tiles
    MemeffBackwardLaunch full = plan(request(DType.FLOAT16, 2, 4, 4, 100, 100, 64, 64, AttentionOptions.builder()));
    assertThat(full.steps()).extracting(MemeffBackwardLaunch.Step::name)
        .containsExactly("memeff_bwd_pre_f16", "memeff_bwd_dkdvqf_f16_d64", "memeff_bwd_dqconv_f16");
    assertThat(full.steps().get(1).sharedBytes()).isEqualTo(full.kernel().dkdvqSharedBytes());

    BackwardRequest exact = request(DType.FLOAT16, 2, 4, 4, 100, 100, 128, 64,
        AttentionOptions.builder().deterministic(true));
    MemeffBackwardLaunch d = plan(exact);
    assertThat(d.atomic()).isFalse();
    assertThat(d.steps()).extracting(MemeffBackwardLaunch.Step::name)
        .containsExactly("memeff_bwd_pre_f16", "memeff_bwd_dkdv_f16_d128", "memeff_bwd_dq_f16_d128");
    assertThat(field(d.steps().get(2), 71)).isZero();

    BackwardRequest fp32 = request(DType.FLOAT32, 1, 2, 2, 10, 10, 64, 64, AttentionOptions.builder());
    assertThat(plan(fp32).atomic()).isFalse();
  }

  @Test
  void aKeyPaddingMaskIsPassedWithBroadcastStrides() {
    Tensor keyPad = device(DType.BOOL, 2, 1, 1, 64);
    BackwardRequest r = request(DType.FLOAT16, 2, 4, 4, 64, 64, 64, 64, AttentionOptions.builder().attnMask(keyPad));
    MemeffBackwardLaunch.Step dkdv = plan(r).steps().get(1);
    assertThat(field(dkdv, 6)).isEqualTo(((Storage.DeviceBuffer) keyPad.storage()).handle());
    assertThat(new long[] {field(dkdv, 35), field(dkdv, 36), field(dkdv, 37), field(dkdv, 38)})
        .containsExactly(64, 0, 0, 1);
    assertThat(field(dkdv, 58)).isEqualTo(1);  // bool
    assertThat(field(dkdv, 67)).isZero();  // no dropout
    assertThat(doubleField(dkdv, 66)).isEqualTo(1.0);
  }

  @Test
  void unalignedOrStridedOperandsUseElementAccess() {
    // fp16 head dim 12: rows of 24 bytes cannot be copied in 16-byte pieces, but can be stored in pairs
    BackwardRequest r = request(DType.FLOAT16, 1, 2, 2, 33, 40, 12, 16, AttentionOptions.builder());
    int flags = plan(r).flags();
    assertThat(flags & (MemeffBackwardLaunch.FLAG_VEC_Q | MemeffBackwardLaunch.FLAG_VEC_K)).isZero();
    assertThat(flags & MemeffBackwardLaunch.FLAG_VEC_V).isNotZero();
    assertThat(flags & MemeffBackwardLaunch.FLAG_VEC_DO).isNotZero();
    assertThat(flags & MemeffBackwardLaunch.FLAG_VEC_DQ).isNotZero();

    // a gradient with a strided head dim is written element by element
    Tensor q = device(DType.FLOAT32, 1, 2, 33, 8);
    Tensor k = device(DType.FLOAT32, 1, 2, 40, 8);
    Tensor o = device(DType.FLOAT32, 1, 2, 33, 8);
    Tensor lse = device(DType.FLOAT32, 1, 2, 33);
    AttentionRequest f = AttentionRequest.create(q, k, k, o, lse, AttentionOptions.builder().training(true).build());
    Tensor wide = device(DType.FLOAT32, 1, 2, 33, 16);
    Tensor dq = wide.view(new long[] {1, 2, 33, 8}, new long[] {2 * 33 * 16, 33 * 16, 16, 2});
    BackwardRequest b = BackwardRequest.create(f, device(DType.FLOAT32, 1, 2, 33, 8), dq,
        device(DType.FLOAT32, 1, 2, 40, 8), device(DType.FLOAT32, 1, 2, 40, 8));
    int g = plan(b).flags();
    assertThat(g & MemeffBackwardLaunch.FLAG_VEC_DQ).isZero();
    assertThat(g & MemeffBackwardLaunch.FLAG_VEC_DK).isNotZero();
  }
}
