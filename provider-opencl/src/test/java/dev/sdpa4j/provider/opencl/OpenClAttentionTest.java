package dev.sdpa4j.provider.opencl;

import static dev.sdpa4j.provider.opencl.Fixtures.PROVIDER;
import static dev.sdpa4j.provider.opencl.Fixtures.assertClose;
import static dev.sdpa4j.provider.opencl.Fixtures.assertMatchesReference;
import static dev.sdpa4j.provider.opencl.Fixtures.random;
import static org.assertj.core.api.Assertions.assertThat;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.CausalMode;
import dev.sdpa4j.DType;
import dev.sdpa4j.Dropout;
import dev.sdpa4j.DropoutResolution;
import dev.sdpa4j.DropoutSeed;
import dev.sdpa4j.Storage;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.provider.math.ReferenceAttention;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

/** The provider's kernels against the float64 reference, on the first usable OpenCL device. */
class OpenClAttentionTest {
  private final long seed = System.nanoTime();
  private final Random rnd = new Random(seed);

  @BeforeEach
  void setUp() {
    Fixtures.assumeOpenCl();
    System.out.println(getClass().getSimpleName() + " seed " + seed);
  }

  /** Runs a forward of random inputs with the given sizes and options, and checks it against the reference. */
  private AttentionRequest forward(Arena arena, DType dt, int b, int hq, int hkv, int lq, int lk, int e, int ev,
      AttentionOptions options) {
    AttentionRequest r = AttentionRequest.create(random(arena, rnd, dt, b, hq, lq, e), random(arena, rnd, dt, b, hkv, lk, e),
        random(arena, rnd, dt, b, hkv, lk, ev), Tensor.allocate(arena, dt, b, hq, lq, ev),
        Tensor.allocate(arena, DType.FLOAT32, b, hq, lq), options);
    PROVIDER.forward(r);
    assertMatchesReference(r);
    return r;
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"FLOAT32", "FLOAT16", "BFLOAT16"})
  void storageTypesMatchReference(DType dt) {
    try (Arena arena = Arena.ofConfined()) {
      forward(arena, dt, 2, 2, 2, 37, 45, 64, 64, AttentionOptions.DEFAULTS);
      forward(arena, dt, 1, 2, 1, 70, 33, 24, 40,
          AttentionOptions.builder().causal(CausalMode.BOTTOM_RIGHT).enableGqa(true).build());
    }
  }

  @ParameterizedTest
  @CsvSource({"8, 8", "80, 80", "96, 96", "32, 80", "128, 48", "256, 256"})
  void headDims(int e, int ev) {
    try (Arena arena = Arena.ofConfined()) {
      forward(arena, DType.FLOAT32, 1, 2, 2, 33, 41, e, ev, AttentionOptions.DEFAULTS);
    }
  }

  @ParameterizedTest
  @CsvSource({"40, 70, TOP_LEFT", "40, 70, BOTTOM_RIGHT", "70, 40, TOP_LEFT", "70, 40, BOTTOM_RIGHT",
      "65, 65, TOP_LEFT", "1, 97, BOTTOM_RIGHT"})
  void causalBothAlignments(int lq, int lk, CausalMode mode) {
    try (Arena arena = Arena.ofConfined()) {
      forward(arena, DType.FLOAT32, 2, 2, 2, lq, lk, 32, 32, AttentionOptions.builder().causal(mode).build());
    }
  }

  @Test
  void booleanAndAdditiveMasksBroadcast() {
    try (Arena arena = Arena.ofConfined()) {
      int b = 2;
      int h = 3;
      int lq = 35;
      int lk = 43;
      Tensor bool2 = Tensor.allocate(arena, DType.BOOL, lq, lk);
      Tensor bool4 = Tensor.allocate(arena, DType.BOOL, b, 1, lq, lk);
      for (Tensor m : List.of(bool2, bool4)) {
        for (long i = 0; i < m.elementCount(); i++) {
          m.hostSegment().set(java.lang.foreign.ValueLayout.JAVA_BYTE, i, (byte) (rnd.nextInt(4) == 0 ? 0 : 1));
        }
      }
      Tensor add32 = random(arena, rnd, DType.FLOAT32, h, lq, lk);
      Tensor add16 = random(arena, rnd, DType.FLOAT16, lk);
      add16.set(Double.NEGATIVE_INFINITY, 3);
      forward(arena, DType.FLOAT32, b, h, h, lq, lk, 32, 32, AttentionOptions.builder().attnMask(bool2).build());
      forward(arena, DType.FLOAT32, b, h, h, lq, lk, 32, 32, AttentionOptions.builder().attnMask(bool4).build());
      forward(arena, DType.FLOAT32, b, h, h, lq, lk, 32, 32, AttentionOptions.builder().attnMask(add32).build());
      forward(arena, DType.FLOAT16, b, h, h, lq, lk, 32, 32, AttentionOptions.builder().attnMask(add16).build());
    }
  }

  @Test
  void groupedQueryAttentionWithCustomScale() {
    try (Arena arena = Arena.ofConfined()) {
      forward(arena, DType.FLOAT32, 2, 6, 2, 50, 39, 48, 48,
          AttentionOptions.builder().enableGqa(true).scale(0.31).build());
    }
  }

  @Test
  void stridedViewsAndOutputsWithGapsKeepTheGaps() {
    try (Arena arena = Arena.ofConfined()) {
      int b = 2;
      int h = 3;
      int l = 37;
      int e = 32;
      DType dt = DType.FLOAT16;
      Tensor q = Tensor.blhe(dt, new Storage.Host(random(arena, rnd, dt, b, l, h, e).hostSegment()), b, l, h, e);
      Tensor k = Tensor.blhe(dt, new Storage.Host(random(arena, rnd, dt, b, l, h, e).hostSegment()), b, l, h, e);
      // value: head dim strided by 2 over a buffer twice as wide
      Tensor vWide = random(arena, rnd, dt, b, h, l, 2 * e);
      Tensor v = vWide.view(new long[] {b, h, l, e}, new long[] {(long) h * l * 2 * e, (long) l * 2 * e, 2L * e, 2});
      // output: rows padded by 8 elements, the padding holding a sentinel that must survive
      Tensor outWide = Tensor.allocate(arena, dt, b, h, l, e + 8);
      long n = outWide.elementCount();
      for (long i = 0; i < n; i++) {
        dt.write(outWide.hostSegment(), i * 2, 7.0);
      }
      Tensor out = outWide.view(new long[] {b, h, l, e}, new long[] {(long) h * l * (e + 8), (long) l * (e + 8), e + 8, 1});
      AttentionRequest r = AttentionRequest.create(q, k, v, out, null, AttentionOptions.DEFAULTS);
      PROVIDER.forward(r);
      assertMatchesReference(r);
      for (long i = 0; i < b * h * l; i++) {
        for (int c = e; c < e + 8; c++) {
          assertThat(dt.read(outWide.hostSegment(), (i * (e + 8) + c) * 2)).isEqualTo(7.0);
        }
      }
    }
  }

  @Test
  void fullyMaskedRowsGiveZerosAndNegativeInfinityLse() {
    try (Arena arena = Arena.ofConfined()) {
      int lq = 40;
      int lk = 50;
      Tensor mask = Tensor.allocate(arena, DType.BOOL, lq, lk);
      for (int i = 0; i < lq; i++) {
        for (int j = 0; j < lk; j++) {
          mask.set(i % 3 == 0 ? 0 : 1, i, j);
        }
      }
      AttentionRequest r = forward(arena, DType.FLOAT32, 1, 2, 2, lq, lk, 16, 16,
          AttentionOptions.builder().attnMask(mask).build());
      for (int i = 0; i < lq; i += 3) {
        assertThat(r.lse().orElseThrow().get(0, 1, i)).isEqualTo(Double.NEGATIVE_INFINITY);
        for (int c = 0; c < 16; c++) {
          assertThat(r.output().get(0, 1, i, c)).isZero();
        }
      }
    }
  }

  /**
   * With Q = 0 every probability is 1/Lk, and with V the identity the output is the dropout mask itself:
   * O[b, h, i, j] = keep(b, h, i, j) / (Lk (1 - p)). Checks every element against {@link Dropout#keep}.
   */
  @Test
  void dropoutMaskIsBitIdenticalToTheApisPhilox() {
    try (Arena arena = Arena.ofConfined()) {
      int b = 2;
      int h = 3;
      int lq = 70;
      int lk = 64;
      double p = 0.3;
      DropoutSeed ds = new DropoutSeed(rnd.nextLong(), rnd.nextInt() & 0xFFFF_FFFFL);
      Tensor q = Tensor.allocate(arena, DType.FLOAT32, b, h, lq, 16);
      Tensor k = random(arena, rnd, DType.FLOAT32, b, h, lk, 16);
      Tensor v = Tensor.allocate(arena, DType.FLOAT32, b, h, lk, lk);
      for (int bb = 0; bb < b; bb++) {
        for (int hh = 0; hh < h; hh++) {
          for (int j = 0; j < lk; j++) {
            v.set(1, bb, hh, j, j);
          }
        }
      }
      Tensor o = Tensor.allocate(arena, DType.FLOAT32, b, h, lq, lk);
      AttentionRequest r = AttentionRequest.create(q, k, v, o, null,
          AttentionOptions.builder().dropoutP(p).dropoutSeed(ds).build());
      PROVIDER.forward(r);
      Dropout.Mask mask = Dropout.Mask.of(p, DropoutResolution.WORD);
      float kept = (float) (1.0 / lk * mask.keepScale());
      int dropped = 0;
      for (int bb = 0; bb < b; bb++) {
        for (int hh = 0; hh < h; hh++) {
          for (int i = 0; i < lq; i++) {
            for (int j = 0; j < lk; j++) {
              boolean keep = mask.keep(ds, bb, hh, h, i, j);
              double got = o.get(bb, hh, i, j);
              assertThat(got != 0).as("keep(%d, %d, %d, %d)", bb, hh, i, j).isEqualTo(keep);
              if (keep) {
                assertThat(got).isCloseTo(kept, org.assertj.core.data.Offset.offset(1e-6));
              } else {
                dropped++;
              }
            }
          }
        }
      }
      assertThat(dropped / (double) (b * h * lq * lk)).isBetween(0.25, 0.35);
    }
  }

  @Test
  void dropoutForwardMatchesReference() {
    try (Arena arena = Arena.ofConfined()) {
      forward(arena, DType.FLOAT32, 2, 2, 1, 45, 38, 32, 32, AttentionOptions.builder().enableGqa(true)
          .dropoutP(0.2).dropoutSeed(rnd.nextLong(), 5).causal(CausalMode.BOTTOM_RIGHT).build());
    }
  }

  @ParameterizedTest
  @CsvSource({
      "FLOAT32, 1, 2, 2, 45, 45, 32, 32, NONE, false, 0.0",
      "FLOAT32, 2, 2, 2, 37, 70, 32, 48, BOTTOM_RIGHT, false, 0.0",
      "FLOAT32, 2, 4, 2, 70, 37, 16, 16, TOP_LEFT, false, 0.25",
      "FLOAT32, 1, 4, 1, 33, 50, 24, 24, NONE, true, 0.1",
      "FLOAT16, 1, 2, 2, 40, 40, 64, 64, TOP_LEFT, false, 0.0"})
  void backwardMatchesReference(DType dt, int b, int hq, int hkv, int lq, int lk, int e, int ev, CausalMode causal,
      boolean mask, double p) {
    try (Arena arena = Arena.ofConfined()) {
      AttentionOptions.Builder ob = AttentionOptions.builder().training(true).enableGqa(true).causal(causal);
      if (mask) {
        Tensor m = random(arena, rnd, DType.FLOAT32, hq, 1, lk);
        m.set(Double.NEGATIVE_INFINITY, 0, 0, 1);
        ob.attnMask(m);
      }
      if (p > 0) {
        ob.dropoutP(p).dropoutSeed(rnd.nextLong(), 11);
      }
      AttentionRequest r = forward(arena, dt, b, hq, hkv, lq, lk, e, ev, ob.build());
      BackwardRequest br = BackwardRequest.create(r, random(arena, rnd, dt, b, hq, lq, ev),
          Tensor.allocate(arena, dt, b, hq, lq, e), Tensor.allocate(arena, dt, b, hkv, lk, e),
          Tensor.allocate(arena, dt, b, hkv, lk, ev));
      PROVIDER.backward(br);
      ReferenceAttention.Gradients g = ReferenceAttention.backward(br, DType.FLOAT64);
      double tol = dt == DType.FLOAT32 ? 1e-4 : 4e-3;
      assertClose("dQ", br.gradQuery(), g.query(), tol);
      assertClose("dK", br.gradKey(), g.key(), tol);
      assertClose("dV", br.gradValue(), g.value(), tol);
    }
  }

  @Test
  void resultsAreBitReproducible() {
    try (Arena arena = Arena.ofConfined()) {
      AttentionRequest r = forward(arena, DType.FLOAT32, 1, 4, 2, 70, 70, 32, 32,
          AttentionOptions.builder().training(true).enableGqa(true).dropoutP(0.1).dropoutSeed(3, 4).build());
      Tensor dout = random(arena, rnd, DType.FLOAT32, 1, 4, 70, 32);
      byte[][] first = null;
      for (int run = 0; run < 2; run++) {
        PROVIDER.forward(r);
        BackwardRequest br = BackwardRequest.create(r, dout, Tensor.allocate(arena, DType.FLOAT32, 1, 4, 70, 32),
            Tensor.allocate(arena, DType.FLOAT32, 1, 2, 70, 32), Tensor.allocate(arena, DType.FLOAT32, 1, 2, 70, 32));
        PROVIDER.backward(br);
        byte[][] bytes = {bytes(r.output()), bytes(r.lse().orElseThrow()), bytes(br.gradQuery()), bytes(br.gradKey()),
            bytes(br.gradValue())};
        if (first == null) {
          first = bytes;
        } else {
          for (int i = 0; i < bytes.length; i++) {
            assertThat(bytes[i]).as("tensor %d", i).isEqualTo(first[i]);
          }
        }
      }
    }
  }

  @Test
  void concurrentCallsFromManyThreads() throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      List<Future<?>> futures = new ArrayList<>();
      for (int task = 0; task < 8; task++) {
        long taskSeed = rnd.nextLong();
        int lq = 20 + task * 7;
        futures.add(pool.submit(() -> {
          Random local = new Random(taskSeed);
          try (Arena arena = Arena.ofShared()) {
            AttentionRequest r = AttentionRequest.create(random(arena, local, DType.FLOAT32, 1, 2, lq, 32),
                random(arena, local, DType.FLOAT32, 1, 2, 45, 32), random(arena, local, DType.FLOAT32, 1, 2, 45, 32),
                Tensor.allocate(arena, DType.FLOAT32, 1, 2, lq, 32), Tensor.allocate(arena, DType.FLOAT32, 1, 2, lq),
                AttentionOptions.builder().isCausal(local.nextBoolean()).build());
            PROVIDER.forward(r);
            assertMatchesReference(r);
          }
        }));
      }
      for (Future<?> f : futures) {
        f.get();
      }
    } finally {
      pool.shutdownNow();
    }
  }

  private static byte[] bytes(Tensor t) {
    MemorySegment s = t.hostSegment();
    return s.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
  }
}
