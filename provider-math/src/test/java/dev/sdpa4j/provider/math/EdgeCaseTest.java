package dev.sdpa4j.provider.math;

import static dev.sdpa4j.provider.math.Fixtures.assertClose;
import static dev.sdpa4j.provider.math.Fixtures.values;
import static org.assertj.core.api.Assertions.assertThat;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.CausalMode;
import dev.sdpa4j.DType;
import dev.sdpa4j.Storage;
import dev.sdpa4j.Tensor;
import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Semantics at the edges, for the provider and the reference alike: fully masked rows, infinities in an additive
 * mask, NaN inputs, strided outputs, thread-confined memory, concurrent callers, dropout statistics.
 */
class EdgeCaseTest {
  private static final MathProvider PROVIDER = new MathProvider();
  private static final int B = 1;
  private static final int H = 2;
  private static final int LQ = 150;
  private static final int LK = 90;
  private static final int E = 24;

  private record Inputs(Tensor q, Tensor k, Tensor v) {}

  private static Inputs inputs(Arena arena, DType t, long seed) {
    SplittableRandom rnd = new SplittableRandom(seed);
    return new Inputs(Fixtures.tensor(arena, t, false, B, H, LQ, E, rnd), Fixtures.tensor(arena, t, false, B, H, LK, E, rnd),
        Fixtures.tensor(arena, t, false, B, H, LK, E, rnd));
  }

  private static AttentionRequest request(Arena arena, Inputs in, AttentionOptions options) {
    DType t = in.q.dtype();
    return AttentionRequest.create(in.q, in.k, in.v, Tensor.allocate(arena, t, B, H, LQ, E),
        Tensor.allocate(arena, DType.FLOAT32, B, H, LQ), options.toBuilder().returnLse(true).build());
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"FLOAT32", "FLOAT16", "FLOAT64"})
  void fullyMaskedRowsGiveZerosMinusInfinityAndZeroGradients(DType t) {
    long seed = Fixtures.seed("fullyMaskedRowsGiveZerosMinusInfinityAndZeroGradients " + t);
    try (Arena arena = Arena.ofShared()) {
      Inputs in = inputs(arena, t, seed);
      Tensor mask = Tensor.allocate(arena, DType.BOOL, LQ, LK);
      for (int i = 0; i < LQ; i++) {
        for (int j = 0; j < LK; j++) {
          mask.set(i % 7 == 3 ? 0 : 1, i, j); // rows 3, 10, 17, ... see no key
        }
      }
      AttentionRequest r = request(arena, in, AttentionOptions.builder().attnMask(mask).training(true).build());
      PROVIDER.forward(r);
      ReferenceAttention.Forward ref = ReferenceAttention.forward(r, DType.FLOAT64);
      double[] out = values(r.output());
      double[] lse = values(r.lse().orElseThrow());
      for (int h = 0; h < H; h++) {
        for (int i = 3; i < LQ; i += 7) {
          int row = h * LQ + i;
          assertThat(lse[row]).isEqualTo(Double.NEGATIVE_INFINITY);
          assertThat(ref.lse()[row]).isEqualTo(Double.NEGATIVE_INFINITY);
          for (int c = 0; c < E; c++) {
            assertThat(out[row * E + c]).isEqualTo(0.0);
            assertThat(ref.output()[row * E + c]).isEqualTo(0.0);
          }
        }
      }
      assertClose("output", out, ref.output(), Fixtures.tolerance(t), Fixtures.tolerance(t));
      Tensor gradOut = Fixtures.tensor(arena, t, false, B, H, LQ, E, new SplittableRandom(seed + 1));
      BackwardRequest br = BackwardRequest.create(r, gradOut, Tensor.allocate(arena, t, B, H, LQ, E),
          Tensor.allocate(arena, t, B, H, LK, E), Tensor.allocate(arena, t, B, H, LK, E));
      PROVIDER.backward(br);
      double[] dq = values(br.gradQuery());
      double[] refDq = ReferenceAttention.backward(br, DType.FLOAT64).query();
      for (int h = 0; h < H; h++) {
        for (int i = 3; i < LQ; i += 7) {
          for (int c = 0; c < E; c++) {
            assertThat(dq[(h * LQ + i) * E + c]).isEqualTo(0.0);
            assertThat(refDq[(h * LQ + i) * E + c]).isEqualTo(0.0);
          }
        }
      }
    }
  }

  @Test
  void bottomRightCausalWithMoreQueriesThanKeysMasksTheFirstRows() {
    long seed = Fixtures.seed("bottomRightCausalWithMoreQueriesThanKeysMasksTheFirstRows");
    try (Arena arena = Arena.ofShared()) {
      Inputs in = inputs(arena, DType.FLOAT32, seed);
      AttentionRequest r = request(arena, in, AttentionOptions.builder().causal(CausalMode.BOTTOM_RIGHT).build());
      PROVIDER.forward(r);
      double[] lse = values(r.lse().orElseThrow());
      // query i sees keys j <= i + LK - LQ: the first LQ - LK rows see none
      for (int i = 0; i < LQ; i++) {
        assertThat(lse[i] == Double.NEGATIVE_INFINITY).as("row %d", i).isEqualTo(i < LQ - LK);
      }
      assertClose("output", values(r.output()), ReferenceAttention.forward(r, DType.FLOAT64).output(), 2e-5, 2e-5);
    }
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"FLOAT32", "BFLOAT16", "FLOAT64"})
  void infinitiesInAnAdditiveMaskMaskLikeABooleanMask(DType t) {
    long seed = Fixtures.seed("infinitiesInAnAdditiveMaskMaskLikeABooleanMask " + t);
    try (Arena arena = Arena.ofShared()) {
      Inputs in = inputs(arena, t, seed);
      SplittableRandom rnd = new SplittableRandom(seed);
      Tensor bool = Tensor.allocate(arena, DType.BOOL, B, H, LQ, LK);
      Tensor additive = Tensor.allocate(arena, DType.FLOAT32, B, H, LQ, LK);
      for (int h = 0; h < H; h++) {
        for (int i = 0; i < LQ; i++) {
          for (int j = 0; j < LK; j++) {
            int kind = i == 5 ? 0 : rnd.nextInt(4); // row 5 fully masked
            bool.set(kind >= 2 ? 1 : 0, 0, h, i, j);
            additive.set(kind == 0 ? Double.NEGATIVE_INFINITY : kind == 1 ? Double.POSITIVE_INFINITY : 0, 0, h, i, j);
          }
        }
      }
      AttentionRequest byBool = request(arena, in, AttentionOptions.builder().attnMask(bool).build());
      AttentionRequest byInf = request(arena, in, AttentionOptions.builder().attnMask(additive).build());
      PROVIDER.forward(byBool);
      PROVIDER.forward(byInf);
      assertThat(values(byInf.output())).containsExactly(values(byBool.output()));
      assertThat(values(byInf.lse().orElseThrow())).containsExactly(values(byBool.lse().orElseThrow()));
      assertThat(ReferenceAttention.forward(byInf, DType.FLOAT64).output())
          .containsExactly(ReferenceAttention.forward(byBool, DType.FLOAT64).output());
      assertClose("output", values(byInf.output()), ReferenceAttention.forward(byBool, DType.FLOAT64).output(),
          Fixtures.tolerance(t), Fixtures.tolerance(t));
    }
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"FLOAT32", "FLOAT16", "FLOAT64"})
  void nanReachesOnlyTheRowsThatUseIt(DType t) {
    long seed = Fixtures.seed("nanReachesOnlyTheRowsThatUseIt " + t);
    try (Arena arena = Arena.ofShared()) {
      Inputs in = inputs(arena, t, seed);
      int nanQueryRow = 7;
      int nanKey = 40;
      int nanValue = 60;
      in.q.set(Double.NaN, 0, 1, nanQueryRow, 3);
      in.k.set(Double.NaN, 0, 0, nanKey, 0);
      in.v.set(Double.NaN, 0, 0, nanValue, 5);
      // causal top-left: row i sees keys j <= i
      AttentionRequest r = request(arena, in, AttentionOptions.builder().isCausal(true).build());
      PROVIDER.forward(r);
      double[] out = values(r.output());
      double[] lse = values(r.lse().orElseThrow());
      ReferenceAttention.Forward ref = ReferenceAttention.forward(r, DType.FLOAT64);
      for (int h = 0; h < H; h++) {
        for (int i = 0; i < LQ; i++) {
          int row = h * LQ + i;
          boolean nanScores = (h == 1 && i == nanQueryRow) || (h == 0 && i >= nanKey);
          boolean nanValueUsed = h == 0 && i >= nanValue;
          assertThat(Double.isNaN(lse[row])).as("lse h=%d i=%d", h, i).isEqualTo(nanScores);
          assertThat(Double.isNaN(ref.lse()[row])).as("reference lse h=%d i=%d", h, i).isEqualTo(nanScores);
          for (int c = 0; c < E; c++) {
            boolean expectNan = nanScores || (nanValueUsed && c == 5);
            assertThat(Double.isNaN(out[row * E + c])).as("out h=%d i=%d c=%d", h, i, c).isEqualTo(expectNan);
            assertThat(Double.isNaN(ref.output()[row * E + c])).as("reference h=%d i=%d c=%d", h, i, c)
                .isEqualTo(expectNan);
          }
        }
      }
      assertClose("output", out, ref.output(), Fixtures.tolerance(t), Fixtures.tolerance(t));
    }
  }

  @Test
  void stridedOutputIsWrittenOnlyAtItsElements() {
    long seed = Fixtures.seed("stridedOutputIsWrittenOnlyAtItsElements");
    try (Arena arena = Arena.ofShared()) {
      Inputs in = inputs(arena, DType.FLOAT16, seed);
      // output rows padded to E + 3 elements, the padding holding a sentinel; heads interleaved ([B, L, H, E+3])
      int rowLen = E + 3;
      long[] strides = {(long) LQ * H * rowLen, rowLen, (long) H * rowLen, 1};
      Tensor out = Tensor.of(DType.FLOAT16, new long[] {B, H, LQ, E}, strides,
          new Storage.Host(arena.allocate((long) B * H * LQ * rowLen * 2)));
      Tensor whole = Tensor.of(DType.FLOAT16, new long[] {(long) B * H * LQ * rowLen}, new long[] {1}, out.storage());
      for (long x = 0; x < whole.size(0); x++) {
        whole.set(7.0, x);
      }
      AttentionRequest r = AttentionRequest.create(in.q, in.k, in.v, out, null, AttentionOptions.DEFAULTS);
      PROVIDER.forward(r);
      for (long x = 0; x < whole.size(0); x++) {
        if (x % rowLen >= E) {
          assertThat(whole.get(x)).as("padding element %d", x).isEqualTo(7.0);
        }
      }
      assertClose("output", values(out), ReferenceAttention.forward(r, DType.FLOAT64).output(), 2e-3, 2e-3);
    }
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"FLOAT32", "FLOAT16", "BFLOAT16"})
  void heapArraysWork(DType t) {
    long seed = Fixtures.seed("heapArraysWork " + t);
    SplittableRandom rnd = new SplittableRandom(seed);
    Tensor[] x = new Tensor[4];
    for (int n = 0; n < 4; n++) {
      java.lang.foreign.MemorySegment seg = t == DType.FLOAT32
          ? java.lang.foreign.MemorySegment.ofArray(new float[B * H * LQ * E])
          : java.lang.foreign.MemorySegment.ofArray(new short[B * H * LQ * E]);
      x[n] = Tensor.host(seg, t, B, H, n == 1 || n == 2 ? LK : LQ, E);
      if (n < 3) {
        Fixtures.fill(x[n], rnd);
      }
    }
    AttentionRequest r = AttentionRequest.create(x[0], x[1], x[2], x[3], null,
        AttentionOptions.builder().causal(CausalMode.BOTTOM_RIGHT).build());
    PROVIDER.forward(r);
    assertClose("output", values(r.output()), ReferenceAttention.forward(r, DType.FLOAT64).output(),
        Fixtures.tolerance(t), Fixtures.tolerance(t));
  }

  @Test
  void threadConfinedMemoryRunsOnTheCallingThread() {
    long seed = Fixtures.seed("threadConfinedMemoryRunsOnTheCallingThread");
    try (Arena arena = Arena.ofConfined()) {
      Inputs in = inputs(arena, DType.FLOAT32, seed);
      AttentionRequest r = request(arena, in, AttentionOptions.builder().training(true).build());
      PROVIDER.forward(r);
      assertClose("output", values(r.output()), ReferenceAttention.forward(r, DType.FLOAT64).output(), 2e-5, 2e-5);
      Tensor gradOut = Fixtures.tensor(arena, DType.FLOAT32, false, B, H, LQ, E, new SplittableRandom(seed));
      BackwardRequest br = BackwardRequest.create(r, gradOut, Tensor.allocate(arena, DType.FLOAT32, B, H, LQ, E),
          Tensor.allocate(arena, DType.FLOAT32, B, H, LK, E), Tensor.allocate(arena, DType.FLOAT32, B, H, LK, E));
      PROVIDER.backward(br);
      assertClose("dK", values(br.gradKey()), ReferenceAttention.backward(br, DType.FLOAT64).key(), 1e-4, 1e-4);
    }
  }

  /**
   * The float32 forward keeps its scratch arrays per thread: a call whose inputs are all NaN, with larger head dims,
   * leaves them full of NaN, and the next calls on the same thread (thread-confined memory runs on the caller), with
   * odd and padded head dims and a partial last block, must not see any of it.
   */
  @Test
  void scratchLeftByOneCallDoesNotReachTheNext() {
    long seed = Fixtures.seed("scratchLeftByOneCallDoesNotReachTheNext");
    SplittableRandom rnd = new SplittableRandom(seed);
    try (Arena arena = Arena.ofConfined()) {
      Tensor nanQ = Tensor.allocate(arena, DType.FLOAT32, 1, 1, 200, 67);
      Tensor nanK = Tensor.allocate(arena, DType.FLOAT32, 1, 1, 130, 67);
      Tensor nanV = Tensor.allocate(arena, DType.FLOAT32, 1, 1, 130, 72);
      for (Tensor x : new Tensor[] {nanQ, nanK, nanV}) {
        Fixtures.forEach(x, idx -> x.set(Double.NaN, idx));
      }
      AttentionRequest poison = AttentionRequest.create(nanQ, nanK, nanV,
          Tensor.allocate(arena, DType.FLOAT32, 1, 1, 200, 72), null, AttentionOptions.DEFAULTS);
      PROVIDER.forward(poison);
      assertThat(java.util.Arrays.stream(values(poison.output())).allMatch(Double::isNaN)).as("poisoned output").isTrue();
      int[][] shapes = {{77, 45, 31, 17}, {130, 61, 64, 64}, {52, 99, 8, 40}};
      for (int[] s : shapes) {
        Tensor q = Fixtures.tensor(arena, DType.FLOAT32, false, 1, 1, s[0], s[2], rnd);
        Tensor k = Fixtures.tensor(arena, DType.FLOAT32, false, 1, 1, s[1], s[2], rnd);
        Tensor v = Fixtures.tensor(arena, DType.FLOAT32, false, 1, 1, s[1], s[3], rnd);
        AttentionRequest r = AttentionRequest.create(q, k, v, Tensor.allocate(arena, DType.FLOAT32, 1, 1, s[0], s[3]),
            Tensor.allocate(arena, DType.FLOAT32, 1, 1, s[0]), AttentionOptions.builder().returnLse(true).build());
        PROVIDER.forward(r);
        ReferenceAttention.Forward ref = ReferenceAttention.forward(r, DType.FLOAT64);
        assertClose("output " + java.util.Arrays.toString(s), values(r.output()), ref.output(), 2e-5, 2e-5);
        assertClose("lse " + java.util.Arrays.toString(s), values(r.lse().orElseThrow()), ref.lse(), 2e-5, 2e-5);
      }
    }
  }

  @Test
  void concurrentCallersGetTheSameBitsAsOneCaller() throws Exception {
    long seed = Fixtures.seed("concurrentCallersGetTheSameBitsAsOneCaller");
    try (Arena arena = Arena.ofShared()) {
      Inputs in = inputs(arena, DType.FLOAT32, seed);
      AttentionOptions options = AttentionOptions.builder().isCausal(true).dropoutP(0.2).dropoutSeed(seed, 3).build();
      AttentionRequest first = request(arena, in, options);
      PROVIDER.forward(first);
      double[] expected = values(first.output());
      List<AttentionRequest> requests = new ArrayList<>();
      for (int x = 0; x < 8; x++) {
        requests.add(request(arena, in, options));
      }
      try (ExecutorService pool = Executors.newFixedThreadPool(4)) {
        List<Future<?>> done = new ArrayList<>();
        for (AttentionRequest r : requests) {
          done.add(pool.submit(() -> PROVIDER.forward(r)));
        }
        for (Future<?> f : done) {
          f.get();
        }
      }
      for (AttentionRequest r : requests) {
        assertThat(values(r.output())).containsExactly(expected);
      }
    }
  }

  @Test
  void dropoutAveragedOverSeedsConvergesToNoDropout() {
    long seed = Fixtures.seed("dropoutAveragedOverSeedsConvergesToNoDropout");
    int lq = 4;
    int lk = 16;
    int e = 8;
    int runs = 3000;
    double p = 0.3;
    try (Arena arena = Arena.ofShared()) {
      SplittableRandom rnd = new SplittableRandom(seed);
      Tensor q = Fixtures.tensor(arena, DType.FLOAT32, false, 1, 1, lq, e, rnd);
      Tensor k = Fixtures.tensor(arena, DType.FLOAT32, false, 1, 1, lk, e, rnd);
      Tensor v = Fixtures.tensor(arena, DType.FLOAT32, false, 1, 1, lk, e, rnd);
      Tensor out = Tensor.allocate(arena, DType.FLOAT32, 1, 1, lq, e);
      AttentionRequest plain = AttentionRequest.create(q, k, v, out, null, AttentionOptions.DEFAULTS);
      PROVIDER.forward(plain);
      double[] expected = values(out);
      double[] mean = new double[expected.length];
      for (int run = 0; run < runs; run++) {
        AttentionRequest r = AttentionRequest.create(q, k, v, out, null,
            AttentionOptions.builder().dropoutP(p).dropoutSeed(rnd.nextLong(), run).build());
        PROVIDER.forward(r);
        double[] o = values(out);
        for (int x = 0; x < o.length; x++) {
          mean[x] += o[x] / runs;
        }
      }
      // each output is a sum of 16 terms p_j v_j m_j / (1-p), m_j ~ Bernoulli(1-p): its standard deviation is at
      // most max|v| sqrt(p / (1-p)) (as sum p_j^2 <= 1); six standard errors of the mean bound the difference
      double maxV = 0;
      for (double x : values(v)) {
        maxV = Math.max(maxV, Math.abs(x));
      }
      double bound = 6 * maxV * Math.sqrt(p / (1 - p)) / Math.sqrt(runs);
      for (int x = 0; x < mean.length; x++) {
        assertThat(Math.abs(mean[x] - expected[x])).as("element %d", x).isLessThan(bound);
      }
    }
  }
}
