package dev.sdpa4j.provider.math;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.DType;
import dev.sdpa4j.Tensor;
import java.lang.foreign.Arena;
import java.lang.management.ManagementFactory;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The provider's memory does not grow with {@code Lq × Lk}: no score matrix is ever allocated. */
class MemoryTest {
  private static final MathProvider PROVIDER = new MathProvider();
  private static final com.sun.management.ThreadMXBean THREADS =
      (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

  /** Bytes allocated on the Java heap by every live thread so far. */
  private static long allocatedByAllThreads() {
    long sum = 0;
    for (long b : THREADS.getThreadAllocatedBytes(THREADS.getAllThreadIds())) {
      sum += Math.max(0, b);
    }
    return sum;
  }

  /** Heap bytes one forward call allocates with one query tile and {@code lk} keys, once the JIT is done. */
  private static long allocatedByOneCall(Arena arena, int lk, DType t, boolean dropout) {
    SplittableRandom rnd = new SplittableRandom(lk);
    int lq = 64;
    int e = 32;
    Tensor q = Fixtures.tensor(arena, t, false, 1, 1, lq, e, rnd);
    Tensor k = Fixtures.tensor(arena, t, false, 1, 1, lk, e, rnd);
    Tensor v = Fixtures.tensor(arena, t, false, 1, 1, lk, e, rnd);
    Tensor out = Tensor.allocate(arena, t, 1, 1, lq, e);
    AttentionOptions.Builder o = AttentionOptions.builder();
    if (dropout) {
      o.dropoutP(0.1).dropoutSeed(1, 0);
    }
    AttentionRequest r = AttentionRequest.create(q, k, v, out, null, o.build());
    return warmUntilSteady(() -> PROVIDER.forward(r));
  }

  /**
   * Repeats {@code call} until the JIT has compiled the kernels it runs (until then the Vector API's operations are
   * interpreted and allocate a box per vector, which is not what the probes are about): until a call allocates no
   * more than the smallest earlier one, at most 60 calls. Returns the bytes the last call allocated.
   */
  private static long warmUntilSteady(Runnable call) {
    long least = Long.MAX_VALUE;
    long last = Long.MAX_VALUE;
    for (int x = 0; x < 60; x++) {
      long before = allocatedByAllThreads();
      call.run();
      last = allocatedByAllThreads() - before;
      if (x >= 3 && last <= least) {
        break;
      }
      least = Math.min(least, last);
    }
    return last;
  }

  @Test
  void allocationDoesNotGrowWithTheKeyLength() {
    try (Arena arena = Arena.ofShared()) {
      for (DType t : new DType[] {DType.FLOAT32, DType.FLOAT64}) {
        long small = allocatedByOneCall(arena, 1024, t, false);
        long large = allocatedByOneCall(arena, 16 * 1024, t, false);
        System.out.println("MemoryTest " + t + ": Lk=1k allocates " + small + " B, Lk=16k allocates " + large + " B");
        // a 64 x 16k float score matrix alone would be 4 MiB
        assertThat(large).as("%s bytes at Lk=16k vs %d at Lk=1k", t, small).isLessThan(small + 16 * 1024);
        assertThat(large).isLessThan(1 << 20);
      }
    }
  }

  @Test
  void aSixtyFourThousandTokenHeadRunsInBoundedHeap() {
    int l = 65536;
    int e = 4;
    try (Arena arena = Arena.ofShared()) {
      warmUp(arena, e);
      SplittableRandom rnd = new SplittableRandom(64);
      Tensor q = Fixtures.tensor(arena, DType.FLOAT32, false, 1, 1, l, e, rnd);
      Tensor k = Fixtures.tensor(arena, DType.FLOAT32, false, 1, 1, l, e, rnd);
      Tensor v = Fixtures.tensor(arena, DType.FLOAT32, false, 1, 1, l, e, rnd);
      Tensor out = Tensor.allocate(arena, DType.FLOAT32, 1, 1, l, e);
      Tensor lse = Tensor.allocate(arena, DType.FLOAT32, 1, 1, l);
      AttentionRequest r = AttentionRequest.create(q, k, v, out, lse,
          AttentionOptions.builder().isCausal(true).returnLse(true).build());
      long before = allocatedByAllThreads();
      long start = System.nanoTime();
      PROVIDER.forward(r);
      long allocated = allocatedByAllThreads() - before;
      System.out.printf("MemoryTest: 64k-token causal head in %.2f s, %d bytes allocated on the heap%n",
          (System.nanoTime() - start) / 1e9, allocated);
      // the score matrix alone would be 16 GiB; the tiles of all 512 tasks are 33 KiB each (17 MiB), and the JIT may
      // still be replacing code in between
      assertThat(allocated).isLessThan(1L << 30);
      // spot-check rows against a direct float64 computation: row 0 sees only key 0, the last row sees all keys
      for (int i : new int[] {0, 1, 4097, l - 1}) {
        double[] expected = directRow(q, k, v, i, e);
        for (int c = 0; c < e; c++) {
          assertThat(out.get(0, 0, i, c)).as("row %d col %d", i, c)
              .isCloseTo(expected[c], org.assertj.core.data.Offset.offset(1e-4));
        }
      }
    }
  }

  /** Runs the same kind of call on 4k tokens until the JIT has compiled the kernel (see {@link #warmUntilSteady}). */
  private static void warmUp(Arena arena, int e) {
    int l = 4096;
    SplittableRandom rnd = new SplittableRandom(4);
    Tensor q = Fixtures.tensor(arena, DType.FLOAT32, false, 1, 1, l, e, rnd);
    Tensor out = Tensor.allocate(arena, DType.FLOAT32, 1, 1, l, e);
    AttentionRequest r = AttentionRequest.create(q, q, q, out, null, AttentionOptions.builder().isCausal(true).build());
    warmUntilSteady(() -> PROVIDER.forward(r));
  }

  private static double[] directRow(Tensor q, Tensor k, Tensor v, int i, int e) {
    double scale = 1 / Math.sqrt(e);
    double max = Double.NEGATIVE_INFINITY;
    double[] s = new double[i + 1];
    for (int j = 0; j <= i; j++) {
      double dot = 0;
      for (int c = 0; c < e; c++) {
        dot += q.get(0, 0, i, c) * k.get(0, 0, j, c);
      }
      s[j] = dot * scale;
      max = Math.max(max, s[j]);
    }
    double sum = 0;
    double[] o = new double[e];
    for (int j = 0; j <= i; j++) {
      double p = Math.exp(s[j] - max);
      sum += p;
      for (int c = 0; c < e; c++) {
        o[c] += p * v.get(0, 0, j, c);
      }
    }
    for (int c = 0; c < e; c++) {
      o[c] /= sum;
    }
    return o;
  }
}
