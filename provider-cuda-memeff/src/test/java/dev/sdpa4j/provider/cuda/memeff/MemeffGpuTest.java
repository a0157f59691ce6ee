package dev.sdpa4j.provider.cuda.memeff;

import static dev.sdpa4j.cuda.testing.HostTensors.gaussian;
import static dev.sdpa4j.cuda.testing.HostTensors.maxAbsError;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.CausalMode;
import dev.sdpa4j.DType;
import dev.sdpa4j.Dropout;
import dev.sdpa4j.DropoutResolution;
import dev.sdpa4j.DropoutSeed;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.cuda.CudaContext;
import dev.sdpa4j.cuda.CudaStream;
import dev.sdpa4j.cuda.DeviceTensor;
import dev.sdpa4j.cuda.KernelModule;
import dev.sdpa4j.provider.math.ReferenceAttention;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.Random;
import org.assertj.core.data.Offset;
import org.assertj.core.data.Percentage;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Dropout bit identity, zero-copy device tensors on a caller's stream, kernel loading and leaks; skipped without a GPU. */
class MemeffGpuTest {
  private final CudaMemeffProvider provider = new CudaMemeffProvider();

  @BeforeEach
  void needsGpu() {
    assumeTrue(provider.availability().available(), () -> "no GPU: " + provider.availability().reason());
  }

  /**
   * With equal scores and V the identity, output element (b, h, i, j) is nonzero exactly when the key j was kept for
   * that query: the kept set must be {@link Dropout#keep}'s, element for element.
   */
  @Test
  void dropoutKeepsExactlyTheApisElements() {
    int b = 2;
    int hq = 3;
    int lq = 45;
    int lk = 64;
    for (DType dt : new DType[] {DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16}) {
      for (double p : new double[] {0.1, 0.5, 0.9}) {
        DropoutSeed seed = new DropoutSeed(0x9E37_79B9_7F4A_7C15L ^ Double.doubleToLongBits(p), 0xFFFF_FFF0L);
        try (Arena arena = Arena.ofConfined()) {
          Tensor q = Tensor.allocate(arena, dt, b, hq, lq, 8);
          Tensor k = Tensor.allocate(arena, dt, b, 1, lk, 8);
          Tensor v = Tensor.allocate(arena, dt, b, 1, lk, lk);
          for (int n = 0; n < b; n++) {
            for (int j = 0; j < lk; j++) {
              v.set(1.0, n, 0, j, j);
            }
          }
          Tensor o = Tensor.allocate(arena, dt, b, hq, lq, lk);
          AttentionRequest r = AttentionRequest.create(q, k, v, o, null, AttentionOptions.builder().enableGqa(true)
              .dropoutP(p).dropoutSeed(seed).build());
          assertThat(provider.notSupportedReasons(r)).isEmpty();
          provider.forward(r);
          Dropout.Mask mask = Dropout.Mask.of(p, DropoutResolution.WORD);
          long kept = 0;
          for (int n = 0; n < b; n++) {
            for (int h = 0; h < hq; h++) {
              for (int i = 0; i < lq; i++) {
                for (int j = 0; j < lk; j++) {
                  boolean keep = mask.keep(seed, n, h, hq, i, j);
                  double x = o.get(n, h, i, j);
                  assertThat(x != 0).as("%s p=%s (%d,%d,%d,%d)", dt, p, n, h, i, j).isEqualTo(keep);
                  if (keep) {
                    kept++;
                    assertThat(x).isCloseTo(mask.keepScale() / lk, Percentage.withPercentage(1));
                  }
                }
              }
            }
          }
          double rate = (double) kept / (b * hq * lq * lk);
          assertThat(rate).isCloseTo(1 - p, Offset.offset(0.05));
        }
      }
    }
  }

  @Test
  void deviceTensorsWithAMaskRunInPlaceOnTheCallersStream() {
    long seed = System.nanoTime();
    System.out.println("deviceTensorsWithAMaskRunInPlaceOnTheCallersStream seed " + seed);
    Random rnd = new Random(seed);
    CudaContext ctx = provider.device(0).context();
    try (Arena arena = Arena.ofConfined(); CudaStream stream = CudaStream.create(ctx)) {
      long lq = 300;
      long lk = 257;
      // [B, L, H, E] memory viewed as [B, H, L, E]
      Tensor qBlhe = gaussian(arena, DType.BFLOAT16, rnd, 2, lq, 8, 96);
      Tensor q = qBlhe.view(new long[] {2, 8, lq, 96}, new long[] {lq * 8 * 96, 96, 8 * 96, 1});
      Tensor k = gaussian(arena, DType.BFLOAT16, rnd, 2, 2, lk, 96);
      Tensor v = gaussian(arena, DType.BFLOAT16, rnd, 2, 2, lk, 40);
      Tensor mask = Tensor.allocate(arena, DType.BOOL, 2, 1, 1, lk);
      for (long j = 0; j < lk; j++) {
        mask.set(rnd.nextDouble() < 0.7 ? 1 : 0, 0, 0, 0, j);  // batch 1 keeps nothing: zeros, LSE -inf
      }
      Tensor o = Tensor.allocate(arena, DType.BFLOAT16, 2, 8, lq, 40);
      Tensor lse = Tensor.allocate(arena, DType.FLOAT32, 2, 8, lq);
      try (DeviceTensor dq = DeviceTensor.upload(ctx, qBlhe); DeviceTensor dk = DeviceTensor.upload(ctx, k);
           DeviceTensor dv = DeviceTensor.upload(ctx, v); DeviceTensor dm = DeviceTensor.upload(ctx, mask);
           DeviceTensor dout = DeviceTensor.allocate(ctx, DType.BFLOAT16, 2, 8, lq, 40);
           DeviceTensor dlse = DeviceTensor.allocate(ctx, DType.FLOAT32, 2, 8, lq)) {
        Tensor dqView = dq.tensor().view(q.shape(), q.strides());
        AttentionOptions opts = AttentionOptions.builder().enableGqa(true).attnMask(dm.tensor()).scale(0.3)
            .stream(stream.handle()).returnLse(true).build();
        AttentionRequest r = AttentionRequest.create(dqView, dk.tensor(), dv.tensor(), dout.tensor(), dlse.tensor(),
            opts);
        assertThat(provider.notSupportedReasons(r)).isEmpty();
        provider.forward(r);
        stream.synchronize();
        dout.download(o);
        dlse.download(lse);
      }
      var ref = ReferenceAttention.forward(AttentionRequest.create(q, k, v, o, lse,
          AttentionOptions.builder().enableGqa(true).attnMask(mask).scale(0.3).returnLse(true).build()),
          DType.FLOAT64);
      assertThat(maxAbsError(o, ref.output())).isLessThan(3e-2);
      assertThat(maxAbsError(lse, ref.lse())).isLessThan(2e-3);
      assertThat(lse.get(1, 3, 7)).isEqualTo(Double.NEGATIVE_INFINITY);
      assertThat(o.get(1, 3, 7, 5)).isZero();
    }
  }

  @Test
  void packagedCubinAndNvrtcGiveTheSameBits(@TempDir Path cache) {
    assumeTrue(System.getProperty(KernelModule.FORCE_NVRTC_PROPERTY) == null,
        "compares the packaged cubin with NVRTC: not with NVRTC forced for the whole run");
    long seed = System.nanoTime();
    System.out.println("packagedCubinAndNvrtcGiveTheSameBits seed " + seed);
    Random rnd = new Random(seed);
    try (Arena arena = Arena.ofConfined()) {
      Tensor q = gaussian(arena, DType.FLOAT16, rnd, 2, 4, 97, 80);
      Tensor k = gaussian(arena, DType.FLOAT16, rnd, 2, 2, 131, 80);
      Tensor v = gaussian(arena, DType.FLOAT16, rnd, 2, 2, 131, 136);
      Tensor bias = gaussian(arena, DType.FLOAT32, rnd, 97, 131);
      Tensor o1 = Tensor.allocate(arena, DType.FLOAT16, 2, 4, 97, 136);
      Tensor o2 = Tensor.allocate(arena, DType.FLOAT16, 2, 4, 97, 136);
      AttentionOptions opts = AttentionOptions.builder().attnMask(bias).enableGqa(true).dropoutP(0.2)
          .dropoutSeed(42, 7).build();
      AttentionRequest r1 = AttentionRequest.create(q, k, v, o1, null, opts);
      MemeffDevice packaged = provider.device(0);
      packaged.forward(r1);
      System.out.println("default kernels: " + packaged.module());
      if (packaged.context().device().computeCapability().major() == 9) {
        assertThat(packaged.module().origin()).isEqualTo(KernelModule.Origin.PACKAGED_CUBIN);
      }
      System.setProperty(KernelModule.FORCE_NVRTC_PROPERTY, "true");
      System.setProperty(KernelModule.CACHE_DIR_PROPERTY, cache.toString());
      try (CudaContext ctx = CudaContext.retainPrimary(0)) {
        MemeffDevice compiled = new MemeffDevice(ctx);
        compiled.forward(AttentionRequest.create(q, k, v, o2, null, opts));
        System.out.println("forced kernels: " + compiled.module());
        assertThat(compiled.module().origin()).isEqualTo(KernelModule.Origin.NVRTC_COMPILED);
        assertThat(new MemeffDevice(ctx).module().origin()).isEqualTo(KernelModule.Origin.NVRTC_CACHED);
      } finally {
        System.clearProperty(KernelModule.FORCE_NVRTC_PROPERTY);
        System.clearProperty(KernelModule.CACHE_DIR_PROPERTY);
      }
      assertThat(o2.hostSegment().mismatch(o1.hostSegment())).isEqualTo(-1L);
      double err = maxAbsError(o1, ReferenceAttention.forward(r1, DType.FLOAT64).output());
      assertThat(err).isLessThan(2e-2);
    }
  }

  @Test
  void tenThousandCallsLeakNoDeviceMemory() {
    long seed = System.nanoTime();
    System.out.println("tenThousandCallsLeakNoDeviceMemory seed " + seed);
    Random rnd = new Random(seed);
    CudaContext ctx = provider.device(0).context();
    try (Arena arena = Arena.ofConfined()) {
      Tensor q = gaussian(arena, DType.FLOAT32, rnd, 1, 4, 33, 64);
      Tensor kv = gaussian(arena, DType.FLOAT32, rnd, 1, 4, 200, 64);
      Tensor mask = gaussian(arena, DType.FLOAT32, rnd, 33, 200);
      Tensor o = Tensor.allocate(arena, DType.FLOAT32, 1, 4, 33, 64);
      try (DeviceTensor dq = DeviceTensor.upload(ctx, q); DeviceTensor dkv = DeviceTensor.upload(ctx, kv);
           DeviceTensor dm = DeviceTensor.upload(ctx, mask); DeviceTensor dout = DeviceTensor.upload(ctx, o)) {
        AttentionRequest dev = AttentionRequest.create(dq.tensor(), dkv.tensor(), dkv.tensor(), dout.tensor(), null,
            AttentionOptions.builder().attnMask(dm.tensor()).build());
        AttentionRequest host = AttentionRequest.create(q, kv, kv, o, null, AttentionOptions.builder()
            .attnMask(mask).causal(CausalMode.NONE).build());
        for (int i = 0; i < 20; i++) {
          provider.forward(dev);
          provider.forward(host);
        }
        long before = ctx.memoryInfo()[0];
        for (int i = 0; i < 10_000; i++) {
          provider.forward(i % 2 == 0 ? dev : host);
        }
        long after = ctx.memoryInfo()[0];
        System.out.println("free device memory before " + before + ", after 10,000 calls " + after);
        assertThat(before - after).isLessThan(4L << 20);
      }
    }
  }
}
