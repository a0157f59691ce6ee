package dev.sdpa4j.provider.cuda.flash;

import static dev.sdpa4j.cuda.testing.HostTensors.gaussian;
import static dev.sdpa4j.cuda.testing.HostTensors.maxScaledError;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.AttentionResult;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.CausalMode;
import dev.sdpa4j.DType;
import dev.sdpa4j.Dropout;
import dev.sdpa4j.DropoutResolution;
import dev.sdpa4j.DropoutSeed;
import dev.sdpa4j.ProviderScope;
import dev.sdpa4j.Sdpa;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.cuda.CudaContext;
import dev.sdpa4j.cuda.CudaStream;
import dev.sdpa4j.cuda.DeviceTensor;
import dev.sdpa4j.provider.math.ReferenceAttention;
import java.lang.foreign.Arena;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Dropout and backward on the GPU: the training path end to end, determinism, the dropout mask; skipped without a GPU. */
class FlashTrainingGpuTest {
  private final CudaFlashProvider provider = new CudaFlashProvider();

  @BeforeEach
  void needsGpu() {
    assumeTrue(provider.availability().available(), () -> "no GPU: " + provider.availability().reason());
  }

  @Test
  void trainingPathRunsEndToEndOnDeviceMemory() {
    long seed = System.nanoTime();
    System.out.println("trainingPathRunsEndToEndOnDeviceMemory seed " + seed);
    Random rnd = new Random(seed);
    CudaContext ctx = provider.device(0).context();
    DType dt = DType.FLOAT16;
    try (Arena arena = Arena.ofConfined(); CudaStream stream = CudaStream.create(ctx);
         ProviderScope scope = Sdpa.useProviders(CudaFlashProvider.NAME)) {
      Tensor q = gaussian(arena, dt, rnd, 2, 4, 100, 64);
      Tensor k = gaussian(arena, dt, rnd, 2, 2, 150, 64);
      Tensor v = gaussian(arena, dt, rnd, 2, 2, 150, 64);
      Tensor dOut = gaussian(arena, dt, rnd, 2, 4, 100, 64);
      Tensor o = Tensor.allocate(arena, dt, 2, 4, 100, 64);
      Tensor lse = Tensor.allocate(arena, DType.FLOAT32, 2, 4, 100);
      Tensor gq = Tensor.allocate(arena, dt, 2, 4, 100, 64);
      Tensor gk = Tensor.allocate(arena, dt, 2, 2, 150, 64);
      Tensor gv = Tensor.allocate(arena, dt, 2, 2, 150, 64);
      AttentionOptions opts = AttentionOptions.builder().enableGqa(true).causal(CausalMode.BOTTOM_RIGHT)
          .dropoutP(0.1).dropoutSeed(seed, 7).training(true).returnLse(true).stream(stream.handle()).build();
      try (DeviceTensor dq = DeviceTensor.upload(ctx, q); DeviceTensor dk = DeviceTensor.upload(ctx, k);
           DeviceTensor dv = DeviceTensor.upload(ctx, v); DeviceTensor ddo = DeviceTensor.upload(ctx, dOut);
           DeviceTensor dout = DeviceTensor.allocate(ctx, dt, 2, 4, 100, 64);
           DeviceTensor dlse = DeviceTensor.allocate(ctx, DType.FLOAT32, 2, 4, 100);
           DeviceTensor dgq = DeviceTensor.allocate(ctx, dt, 2, 4, 100, 64);
           DeviceTensor dgk = DeviceTensor.allocate(ctx, dt, 2, 2, 150, 64);
           DeviceTensor dgv = DeviceTensor.allocate(ctx, dt, 2, 2, 150, 64)) {
        AttentionResult res = Sdpa.scaledDotProductAttention(dq.tensor(), dk.tensor(), dv.tensor(), dout.tensor(),
            dlse.tensor(), opts);
        assertThat(res.provider()).isEqualTo(CudaFlashProvider.NAME);
        res.backward(ddo.tensor(), dgq.tensor(), dgk.tensor(), dgv.tensor());
        stream.synchronize();
        dout.download(o);
        dlse.download(lse);
        dgq.download(gq);
        dgk.download(gk);
        dgv.download(gv);
      }
      AttentionRequest host = AttentionRequest.create(q, k, v, o, lse, opts.toBuilder().stream(0).build());
      var fwd = ReferenceAttention.forward(host, DType.FLOAT64);
      var grads = ReferenceAttention.backward(BackwardRequest.create(host, dOut, gq, gk, gv), DType.FLOAT64);
      assertThat(maxScaledError(o, fwd.output())).isLessThan(5e-3);
      assertThat(maxScaledError(lse, fwd.lse())).isLessThan(1e-3);
      assertThat(maxScaledError(gq, grads.query())).as("dQ").isLessThan(1e-2);
      assertThat(maxScaledError(gk, grads.key())).as("dK").isLessThan(1e-2);
      assertThat(maxScaledError(gv, grads.value())).as("dV").isLessThan(1e-2);
    }
  }

  @Test
  void deterministicModeGivesIdenticalBitsOverTenRuns() {
    identicalBitsOverTenRuns(DropoutResolution.WORD);
  }

  @Test
  void deterministicModeGivesIdenticalBitsOverTenRunsAtByteResolution() {
    identicalBitsOverTenRuns(DropoutResolution.BYTE);
  }

  private void identicalBitsOverTenRuns(DropoutResolution resolution) {
    long seed = System.nanoTime();
    System.out.println("deterministicModeGivesIdenticalBitsOverTenRuns " + resolution + " seed " + seed);
    Random rnd = new Random(seed);
    DType dt = DType.BFLOAT16;
    try (Arena arena = Arena.ofConfined()) {
      Tensor q = gaussian(arena, dt, rnd, 2, 8, 700, 128);
      Tensor k = gaussian(arena, dt, rnd, 2, 2, 900, 128);
      Tensor v = gaussian(arena, dt, rnd, 2, 2, 900, 128);
      Tensor dOut = gaussian(arena, dt, rnd, 2, 8, 700, 128);
      Tensor o = Tensor.allocate(arena, dt, 2, 8, 700, 128);
      Tensor lse = Tensor.allocate(arena, DType.FLOAT32, 2, 8, 700);
      AttentionRequest r = AttentionRequest.create(q, k, v, o, lse, AttentionOptions.builder().enableGqa(true)
          .isCausal(true).dropoutP(0.2).dropoutSeed(seed, 3).dropoutResolution(resolution).training(true)
          .deterministic(true).build());
      assertThat(provider.notSupportedReasons(r)).isEmpty();
      provider.forward(r);
      byte[][] first = null;
      for (int run = 0; run < 10; run++) {
        Tensor gq = Tensor.allocate(arena, dt, q.shape());
        Tensor gk = Tensor.allocate(arena, dt, k.shape());
        Tensor gv = Tensor.allocate(arena, dt, v.shape());
        provider.backward(BackwardRequest.create(r, dOut, gq, gk, gv));
        byte[][] bits = {gq.hostSegment().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE),
            gk.hostSegment().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE),
            gv.hostSegment().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)};
        if (first == null) {
          first = bits;
          var grads = ReferenceAttention.backward(BackwardRequest.create(r, dOut, gq, gk, gv), DType.FLOAT64);
          assertThat(maxScaledError(gq, grads.query())).as("dQ").isLessThan(3e-2);
          assertThat(maxScaledError(gk, grads.key())).as("dK").isLessThan(3e-2);
          assertThat(maxScaledError(gv, grads.value())).as("dV").isLessThan(3e-2);
        } else {
          for (int i = 0; i < 3; i++) {
            assertThat(bits[i]).as("run " + run + ", gradient " + "qkv".charAt(i)).isEqualTo(first[i]);
          }
        }
      }
    }
  }

  /**
   * With Q = 0 every probability is 1/Lk, and with V = the identity the output element (i, j) is the probability of
   * key j after dropout: non-zero exactly where {@link Dropout#keep} keeps it.
   */
  @Test
  void dropoutKeepsExactlyTheMathProvidersSet() {
    long seed = System.nanoTime();
    System.out.println("dropoutKeepsExactlyTheMathProvidersSet seed " + seed);
    int lk = 64;
    int lq = 77;
    int heads = 3;
    double p = 0.3;
    DropoutSeed ds = new DropoutSeed(seed, 12345);
    for (DType dt : new DType[] {DType.FLOAT16, DType.BFLOAT16}) {
      try (Arena arena = Arena.ofConfined()) {
        Tensor q = Tensor.allocate(arena, dt, 2, heads, lq, lk);
        Tensor k = gaussian(arena, dt, new Random(seed), 2, heads, lk, lk);
        Tensor v = Tensor.allocate(arena, dt, 2, heads, lk, lk);
        for (int b = 0; b < 2; b++) {
          for (int h = 0; h < heads; h++) {
            for (int j = 0; j < lk; j++) {
              v.set(1.0, b, h, j, j);
            }
          }
        }
        Tensor o = Tensor.allocate(arena, dt, 2, heads, lq, lk);
        provider.forward(AttentionRequest.create(q, k, v, o, null,
            AttentionOptions.builder().dropoutP(p).dropoutSeed(ds).build()));
        Dropout.Mask mask = Dropout.Mask.of(p, DropoutResolution.WORD);
        double kept = dt.round(mask.keepScale() / lk);
        long dropped = 0;
        for (int b = 0; b < 2; b++) {
          for (int h = 0; h < heads; h++) {
            for (int i = 0; i < lq; i++) {
              for (int j = 0; j < lk; j++) {
                boolean keep = mask.keep(ds, b, h, heads, i, j);
                dropped += keep ? 0 : 1;
                if (keep) {
                  assertThat(o.get(b, h, i, j)).as("%s (%d,%d,%d,%d) kept", dt, b, h, i, j)
                      .isCloseTo(kept, org.assertj.core.data.Offset.offset(0.01 * kept));
                } else {
                  assertThat(o.get(b, h, i, j)).as("%s (%d,%d,%d,%d) dropped", dt, b, h, i, j).isZero();
                }
              }
            }
          }
        }
        assertThat(dropped).isBetween((long) (0.25 * 2 * heads * lq * lk), (long) (0.35 * 2 * heads * lq * lk));
      }
    }
  }

  /**
   * The backward regenerates the forward's mask exactly at both resolutions, in fast mode (on an H100 at E = 64 the
   * Hopper wgmma kernel) and in deterministic mode: with Q = 0 every probability is 1/Lk, and with dO = the identity
   * (Lq = E) the value gradient dV(j, i) is the probability of key j for query i after dropout, non-zero exactly where
   * the request's {@link Dropout.Mask} keeps it.
   */
  @Test
  void backwardRegeneratesExactlyTheMaskAtBothResolutions() {
    long seed = System.nanoTime();
    System.out.println("backwardRegeneratesExactlyTheMaskAtBothResolutions seed " + seed);
    int e = 64;
    int lk = 200;
    int heads = 3;
    double p = 0.2;
    DType dt = DType.BFLOAT16;
    DropoutSeed ds = new DropoutSeed(seed, 777);
    for (DropoutResolution resolution : DropoutResolution.values()) {
      for (boolean det : new boolean[] {false, true}) {
        try (Arena arena = Arena.ofConfined()) {
          Tensor q = Tensor.allocate(arena, dt, 1, heads, e, e);
          Tensor k = gaussian(arena, dt, new Random(seed), 1, heads, lk, e);
          Tensor v = gaussian(arena, dt, new Random(seed + 1), 1, heads, lk, e);
          Tensor dOut = Tensor.allocate(arena, dt, 1, heads, e, e);
          for (int h = 0; h < heads; h++) {
            for (int i = 0; i < e; i++) {
              dOut.set(1.0, 0, h, i, i);
            }
          }
          Tensor o = Tensor.allocate(arena, dt, 1, heads, e, e);
          Tensor lse = Tensor.allocate(arena, DType.FLOAT32, 1, heads, e);
          AttentionRequest r = AttentionRequest.create(q, k, v, o, lse, AttentionOptions.builder().dropoutP(p)
              .dropoutSeed(ds).dropoutResolution(resolution).training(true).deterministic(det).build());
          assertThat(provider.notSupportedReasons(r)).isEmpty();
          provider.forward(r);
          Tensor gq = Tensor.allocate(arena, dt, q.shape());
          Tensor gk = Tensor.allocate(arena, dt, k.shape());
          Tensor gv = Tensor.allocate(arena, dt, v.shape());
          provider.backward(BackwardRequest.create(r, dOut, gq, gk, gv));
          Dropout.Mask mask = r.dropoutMask();
          assertThat(mask.resolution()).isEqualTo(resolution);
          double kept = dt.round(mask.keepScale() / lk);
          long dropped = 0;
          for (int h = 0; h < heads; h++) {
            for (int i = 0; i < e; i++) {
              for (int j = 0; j < lk; j++) {
                boolean keep = mask.keep(ds, 0, h, heads, i, j);
                dropped += keep ? 0 : 1;
                String what = resolution + (det ? " deterministic" : " fast") + " dV(" + h + "," + j + "," + i + ")";
                if (keep) {
                  assertThat(gv.get(0, h, j, i)).as(what + " kept")
                      .isCloseTo(kept, org.assertj.core.data.Offset.offset(0.02 * kept));
                } else {
                  assertThat(gv.get(0, h, j, i)).as(what + " dropped").isZero();
                }
              }
            }
          }
          assertThat(dropped).isBetween((long) (0.15 * heads * e * lk), (long) (0.25 * heads * e * lk));
        }
      }
    }
  }
}
