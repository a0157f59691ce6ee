package dev.sdpa4j.provider.cuda.memeff;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
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

/** The launch plan and parameter bytes, on fake device addresses (no GPU needed). */
class MemeffLaunchTest {
  private static final int H100_SHARED = 227 * 1024;
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

  private static MemeffLaunch plan(AttentionRequest r, int maxShared) {
    MemeffLaunch.Operand mask = r.mask().map(MemeffDevice::view).orElse(null);
    return MemeffLaunch.plan(r, MemeffDevice.view(r.query()), MemeffDevice.view(r.key()), MemeffDevice.view(r.value()),
        MemeffDevice.view(r.output()), r.lse().map(MemeffDevice::view).orElse(null), mask,
        r.mask().map(Tensor::dtype).orElse(null), maxShared);
  }

  private static long field(MemeffLaunch l, int index) {
    return ByteBuffer.wrap(l.params()).order(ByteOrder.nativeOrder()).getLong(index * 8);
  }

  private static double doubleField(MemeffLaunch l, int index) {
    return ByteBuffer.wrap(l.params()).order(ByteOrder.nativeOrder()).getDouble(index * 8);
  }

  @Test
  void keyPaddingMaskIsStagedAsOneRowAndBiasAsTiles() {
    Tensor q = device(DType.FLOAT16, 2, 4, 256, 64);
    Tensor k = device(DType.FLOAT16, 2, 4, 256, 64);
    Tensor v = device(DType.FLOAT16, 2, 4, 256, 64);
    Tensor o = device(DType.FLOAT16, 2, 4, 256, 64);
    Tensor keyPad = device(DType.BOOL, 2, 1, 1, 256);
    MemeffLaunch a = plan(AttentionRequest.create(q, k, v, o, null,
        AttentionOptions.builder().attnMask(keyPad).build()), H100_SHARED);
    assertThat(a.flags() & MemeffLaunch.FLAG_MASK_ROW).isNotZero();
    assertThat(a.flags() & MemeffLaunch.FLAG_BATCH_FIRST).isZero();
    assertThat(a.flags() & 0xF).isEqualTo(0xF);
    assertThat(a.sharedBytes()).isEqualTo(a.kernel().tileBytes() + a.kernel().maskBytes(1, 1));
    assertThat(field(a, 5)).isEqualTo(((Storage.DeviceBuffer) keyPad.storage()).handle());
    // mask strides: [B, Hq, Lq, Lk] view of [2, 1, 1, 256]
    assertThat(new long[] {field(a, 26), field(a, 27), field(a, 28), field(a, 29)}).containsExactly(256, 0, 0, 1);
    assertThat(field(a, 37)).isEqualTo(1);  // bool

    Tensor bias = device(DType.FLOAT16, 1, 4, 256, 256);
    MemeffLaunch b = plan(AttentionRequest.create(q, k, v, o, null,
        AttentionOptions.builder().attnMask(bias).build()), H100_SHARED);
    assertThat(b.flags() & MemeffLaunch.FLAG_MASK_TILE).isNotZero();
    assertThat(b.flags() & MemeffLaunch.FLAG_BATCH_FIRST).isNotZero();
    assertThat(field(b, 37)).isEqualTo(3);  // fp16 additive

    // without the shared memory for it, the mask is read directly
    MemeffLaunch c = plan(AttentionRequest.create(q, k, v, o, null,
        AttentionOptions.builder().attnMask(bias).build()), b.kernel().tileBytes());
    assertThat(c.flags() & (MemeffLaunch.FLAG_MASK_TILE | MemeffLaunch.FLAG_MASK_ROW)).isZero();
    assertThat(c.flags() & MemeffLaunch.FLAG_VEC_MASK).isNotZero();
    assertThat(c.sharedBytes()).isEqualTo(c.kernel().tileBytes());
  }

  @Test
  void unalignedOrStridedOperandsUseScalarAccess() {
    Tensor base = device(DType.FLOAT32, 1, 2, 33, 12);
    // head dim strided by 2: [1, 2, 33, 6] view
    Tensor q = base.view(new long[] {1, 2, 33, 6}, new long[] {792, 396, 12, 2});
    Tensor k = device(DType.FLOAT32, 1, 2, 40, 6);
    Tensor v = device(DType.FLOAT32, 1, 2, 40, 6);
    Tensor o = device(DType.FLOAT32, 1, 2, 33, 6);
    MemeffLaunch l = plan(AttentionRequest.create(q, k, v, o, null, AttentionOptions.DEFAULTS), H100_SHARED);
    assertThat(l.flags() & MemeffLaunch.FLAG_VEC_Q).isZero();
    // rows of 6 floats are 24 bytes: not 16-byte aligned
    assertThat(l.flags() & MemeffLaunch.FLAG_VEC_K).isZero();
    assertThat(l.flags() & MemeffLaunch.FLAG_VEC_O).isNotZero();

    // fp16 head dim 12: rows of 24 bytes cannot be copied in 16-byte pieces
    Tensor h = device(DType.FLOAT16, 1, 2, 32, 12);
    Tensor ho = device(DType.FLOAT16, 1, 2, 32, 16);
    Tensor hv = device(DType.FLOAT16, 1, 2, 32, 16);
    MemeffLaunch m = plan(AttentionRequest.create(h, h, hv, ho, null, AttentionOptions.DEFAULTS), H100_SHARED);
    assertThat(m.flags() & (MemeffLaunch.FLAG_VEC_Q | MemeffLaunch.FLAG_VEC_K)).isZero();
    assertThat(m.flags() & MemeffLaunch.FLAG_VEC_V).isNotZero();
  }

  @Test
  void parametersCarryShapeCausalScaleAndDropout() {
    Tensor q = device(DType.BFLOAT16, 3, 8, 100, 80);
    Tensor k = device(DType.BFLOAT16, 3, 2, 300, 80);
    Tensor v = device(DType.BFLOAT16, 3, 2, 300, 200);
    Tensor o = device(DType.BFLOAT16, 3, 8, 100, 200);
    Tensor lse = device(DType.FLOAT32, 3, 8, 100);
    AttentionRequest r = AttentionRequest.create(q, k, v, o, lse, AttentionOptions.builder().enableGqa(true)
        .causal(CausalMode.BOTTOM_RIGHT).scale(0.25).dropoutP(0.3).dropoutSeed(0x1234_5678_9ABCL, 77).build());
    MemeffLaunch l = plan(r, H100_SHARED);
    assertThat(l.params()).hasSize(MemeffLaunch.PARAM_BYTES);
    assertThat(l.kernel().name()).isEqualTo("memeff_fwd_bf16_q128_v128");
    long tiles = l.kernel().queryTiles(100);
    assertThat(l.blocks()).isEqualTo(tiles * 3 * 8 * 2);
    // batch, heads, group, lq, lk, e, ev, mask kind, causal, offset
    assertThat(new long[] {field(l, 30), field(l, 31), field(l, 32), field(l, 33), field(l, 34), field(l, 35),
        field(l, 36), field(l, 37), field(l, 38), field(l, 39)}).containsExactly(3, 8, 4, 100, 300, 80, 200, 0, 1, 200);
    assertThat(field(l, 41)).isEqualTo(tiles);
    assertThat(field(l, 42)).isEqualTo(2);
    assertThat(doubleField(l, 43)).isEqualTo(0.25 * 1.4426950408889634);
    assertThat(doubleField(l, 44)).isEqualTo(1 / 0.7);
    assertThat(field(l, 45)).isEqualTo(1);
    assertThat(field(l, 46)).isEqualTo(Integer.toUnsignedLong(Dropout.Mask.of(0.3, DropoutResolution.WORD).threshold()));
    assertThat(field(l, 47)).isEqualTo(0x1234_5678_9ABCL);
    assertThat(field(l, 48)).isEqualTo(77);
    // LSE strides b, h, l, 0
    assertThat(new long[] {field(l, 22), field(l, 23), field(l, 24), field(l, 25)}).containsExactly(800, 100, 1, 0);
  }

  @Test
  void hostMasksKeepTheirOwnShapeOnTheDevice() {
    assertThat(MemeffDevice.broadcastStrides(new long[] {2, 1, 1, 256}, new long[] {2, 8, 100, 256}))
        .containsExactly(256, 0, 0, 1);
    assertThat(MemeffDevice.broadcastStrides(new long[] {100, 256}, new long[] {2, 8, 100, 256}))
        .containsExactly(0, 0, 256, 1);
    assertThat(MemeffDevice.broadcastStrides(new long[] {8, 1, 256}, new long[] {2, 8, 100, 256}))
        .containsExactly(0, 256, 0, 1);
    assertThat(MemeffDevice.broadcastStrides(new long[] {1}, new long[] {2, 8, 100, 1}))
        .containsExactly(0, 0, 0, 0);
  }
}
