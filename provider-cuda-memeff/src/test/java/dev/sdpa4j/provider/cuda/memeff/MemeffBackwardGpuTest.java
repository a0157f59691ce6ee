package dev.sdpa4j.provider.cuda.memeff;

import static dev.sdpa4j.cuda.testing.HostTensors.gaussian;
import static dev.sdpa4j.cuda.testing.HostTensors.relativeL2Error;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.AttentionResult;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.CausalMode;
import dev.sdpa4j.DType;
import dev.sdpa4j.ProviderScope;
import dev.sdpa4j.Sdpa;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.cuda.CudaContext;
import dev.sdpa4j.cuda.CudaStream;
import dev.sdpa4j.cuda.DeviceTensor;
import dev.sdpa4j.provider.math.ReferenceAttention;
import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The training path on device memory and the deterministic backward; skipped without a GPU. */
class MemeffBackwardGpuTest {
  private final CudaMemeffProvider provider = new CudaMemeffProvider();

  @BeforeEach
  void needsGpu() {
    assumeTrue(provider.availability().available(), () -> "no GPU: " + provider.availability().reason());
  }

  /**
   * {@code Sdpa} forward with training(true) on device tensors, then {@code AttentionResult.backward} into device
   * gradients on the caller's stream: dQ, dK, dV close to the float64 reference, on both backward paths.
   */
  @Test
  void trainingThroughTheApiRunsEndToEndOnDeviceMemory() {
    long seed = System.nanoTime();
    System.out.println("trainingThroughTheApiRunsEndToEndOnDeviceMemory seed " + seed);
    Random rnd = new Random(seed);
    CudaContext ctx = provider.device(0).context();
    for (boolean deterministic : new boolean[] {false, true}) {
      try (Arena arena = Arena.ofConfined(); CudaStream stream = CudaStream.create(ctx);
           ProviderScope only = Sdpa.useProviders(CudaMemeffProvider.NAME)) {
        Tensor q = gaussian(arena, DType.BFLOAT16, rnd, 2, 4, 150, 64);
        Tensor k = gaussian(arena, DType.BFLOAT16, rnd, 2, 2, 170, 64);
        Tensor v = gaussian(arena, DType.BFLOAT16, rnd, 2, 2, 170, 64);
        Tensor dOut = gaussian(arena, DType.BFLOAT16, rnd, 2, 4, 150, 64);
        Tensor mask = Tensor.allocate(arena, DType.BOOL, 2, 1, 1, 170);
        for (long j = 0; j < 170; j++) {
          mask.set(rnd.nextDouble() < 0.8 ? 1 : 0, 0, 0, 0, j);
          mask.set(1, 1, 0, 0, j);
        }
        try (DeviceTensor dq = DeviceTensor.upload(ctx, q); DeviceTensor dk = DeviceTensor.upload(ctx, k);
             DeviceTensor dv = DeviceTensor.upload(ctx, v); DeviceTensor dm = DeviceTensor.upload(ctx, mask);
             DeviceTensor dgo = DeviceTensor.upload(ctx, dOut);
             DeviceTensor dout = DeviceTensor.allocate(ctx, DType.BFLOAT16, 2, 4, 150, 64);
             DeviceTensor dlse = DeviceTensor.allocate(ctx, DType.FLOAT32, 2, 4, 150);
             DeviceTensor gq = DeviceTensor.allocate(ctx, DType.BFLOAT16, 2, 4, 150, 64);
             DeviceTensor gk = DeviceTensor.allocate(ctx, DType.BFLOAT16, 2, 2, 170, 64);
             DeviceTensor gv = DeviceTensor.allocate(ctx, DType.BFLOAT16, 2, 2, 170, 64)) {
          AttentionOptions opts = AttentionOptions.builder().enableGqa(true).attnMask(dm.tensor()).training(true)
              .dropoutP(0.1).dropoutSeed(1234, 5).deterministic(deterministic).stream(stream.handle()).build();
          AttentionResult result = Sdpa.scaledDotProductAttention(dq.tensor(), dk.tensor(), dv.tensor(),
              dout.tensor(), dlse.tensor(), opts);
          assertThat(result.provider()).isEqualTo(CudaMemeffProvider.NAME);
          result.backward(dgo.tensor(), gq.tensor(), gk.tensor(), gv.tensor());
          stream.synchronize();
          Tensor o = Tensor.allocate(arena, DType.BFLOAT16, 2, 4, 150, 64);
          Tensor lse = Tensor.allocate(arena, DType.FLOAT32, 2, 4, 150);
          Tensor hq = Tensor.allocate(arena, DType.BFLOAT16, 2, 4, 150, 64);
          Tensor hk = Tensor.allocate(arena, DType.BFLOAT16, 2, 2, 170, 64);
          Tensor hv = Tensor.allocate(arena, DType.BFLOAT16, 2, 2, 170, 64);
          dout.download(o);
          dlse.download(lse);
          gq.download(hq);
          gk.download(hk);
          gv.download(hv);
          AttentionRequest f = AttentionRequest.create(q, k, v, o, lse, AttentionOptions.builder().enableGqa(true)
              .attnMask(mask).training(true).dropoutP(0.1).dropoutSeed(1234, 5).build());
          ReferenceAttention.Gradients ref = ReferenceAttention.backward(BackwardRequest.create(f, dOut,
              Tensor.allocate(arena, DType.BFLOAT16, q.shape()), Tensor.allocate(arena, DType.BFLOAT16, k.shape()),
              Tensor.allocate(arena, DType.BFLOAT16, v.shape())), DType.FLOAT64);
          String path = deterministic ? "deterministic" : "atomic";
          assertThat(relativeL2Error(hq, ref.query())).as("dQ " + path).isLessThan(2e-2);
          assertThat(relativeL2Error(hk, ref.key())).as("dK " + path).isLessThan(2e-2);
          assertThat(relativeL2Error(hv, ref.value())).as("dV " + path).isLessThan(2e-2);
        }
      }
    }
  }

  /** Deterministic mode: ten backward calls give the same bits, for each dtype, with GQA, causal and dropout. */
  @Test
  void deterministicBackwardGivesIdenticalBitsOverTenRuns() {
    long seed = System.nanoTime();
    System.out.println("deterministicBackwardGivesIdenticalBitsOverTenRuns seed " + seed);
    Random rnd = new Random(seed);
    CudaContext ctx = provider.device(0).context();
    for (DType dt : new DType[] {DType.FLOAT16, DType.BFLOAT16, DType.FLOAT32}) {
      try (Arena arena = Arena.ofConfined()) {
        long lq = 333;
        long lk = 517;
        Tensor q = gaussian(arena, dt, rnd, 2, 8, lq, 128);
        Tensor k = gaussian(arena, dt, rnd, 2, 2, lk, 128);
        Tensor v = gaussian(arena, dt, rnd, 2, 2, lk, 96);
        Tensor dOut = gaussian(arena, dt, rnd, 2, 8, lq, 96);
        try (DeviceTensor dq = DeviceTensor.upload(ctx, q); DeviceTensor dk = DeviceTensor.upload(ctx, k);
             DeviceTensor dv = DeviceTensor.upload(ctx, v); DeviceTensor dgo = DeviceTensor.upload(ctx, dOut);
             DeviceTensor dout = DeviceTensor.allocate(ctx, dt, 2, 8, lq, 96);
             DeviceTensor dlse = DeviceTensor.allocate(ctx, DType.FLOAT32, 2, 8, lq);
             DeviceTensor gq = DeviceTensor.allocate(ctx, dt, 2, 8, lq, 128);
             DeviceTensor gk = DeviceTensor.allocate(ctx, dt, 2, 2, lk, 128);
             DeviceTensor gv = DeviceTensor.allocate(ctx, dt, 2, 2, lk, 96)) {
          AttentionRequest f = AttentionRequest.create(dq.tensor(), dk.tensor(), dv.tensor(), dout.tensor(),
              dlse.tensor(), AttentionOptions.builder().enableGqa(true).causal(CausalMode.BOTTOM_RIGHT)
                  .dropoutP(0.2).dropoutSeed(99, 3).training(true).deterministic(true).build());
          assertThat(provider.notSupportedReasons(f)).isEmpty();
          provider.forward(f);
          BackwardRequest b = BackwardRequest.create(f, dgo.tensor(), gq.tensor(), gk.tensor(), gv.tensor());
          byte[][] first = null;
          for (int run = 0; run < 10; run++) {
            provider.backward(b);
            byte[][] bits = {bytes(arena, gq, dt, 2, 8, lq, 128), bytes(arena, gk, dt, 2, 2, lk, 128),
                bytes(arena, gv, dt, 2, 2, lk, 96)};
            if (first == null) {
              first = bits;
            } else {
              for (int i = 0; i < 3; i++) {
                assertThat(Arrays.equals(bits[i], first[i])).as("%s gradient %d, run %d", dt, i, run).isTrue();
              }
            }
          }
        }
      }
    }
  }

  private static byte[] bytes(Arena arena, DeviceTensor t, DType dt, long... shape) {
    Tensor host = Tensor.allocate(arena, dt, shape);
    t.download(host);
    return host.hostSegment().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
  }
}
