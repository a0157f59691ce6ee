package dev.sdpa4j.provider.math;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.DType;
import dev.sdpa4j.Tensor;
import java.lang.foreign.Arena;
import java.util.SplittableRandom;

/**
 * Forward throughput of the {@code math} provider (a program, not a test): float32, B=1, H=8, E in {64, 128},
 * L in {1024, 2048, 4096}, causal and not; GFLOP/s counting {@code 4·B·H·L²·E}, halved for causal. Arguments:
 * optional {@code E,L} pairs to restrict the shapes, e.g. {@code 64,1024}. Besides wall-clock GFLOP/s it prints
 * GFLOP per CPU-second of the process, the per-core rate, which stays meaningful on a machine shared with other work.
 *
 * <p>Run from the repository root:
 * <pre>
 * ./mvnw -o -q -pl provider-math test-compile dependency:build-classpath -Dmdep.outputFile=target/cp.txt
 * java --add-modules jdk.incubator.vector \
 *   -cp provider-math/target/classes:provider-math/target/test-classes:$(cat provider-math/target/cp.txt) \
 *   dev.sdpa4j.provider.math.ForwardBenchmark [E,L ...]
 * </pre>
 */
public final class ForwardBenchmark {
  private static final com.sun.management.OperatingSystemMXBean CPU =
      (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();

  private ForwardBenchmark() {}

  public static void main(String[] args) {
    MathProvider provider = new MathProvider();
    int[][] shapes = args.length > 0 ? parse(args)
        : new int[][] {{64, 1024}, {64, 2048}, {64, 4096}, {128, 1024}, {128, 2048}, {128, 4096}};
    System.out.printf("%-6s %-6s %-7s %10s %10s %16s%n", "E", "L", "causal", "ms", "GFLOP/s", "GFLOP/s per CPU");
    for (int[] s : shapes) {
      for (boolean causal : new boolean[] {false, true}) {
        run(provider, 1, 8, s[1], s[0], causal);
      }
    }
  }

  private static int[][] parse(String[] args) {
    int[][] out = new int[args.length][];
    for (int x = 0; x < args.length; x++) {
      String[] p = args[x].split(",");
      out[x] = new int[] {Integer.parseInt(p[0]), Integer.parseInt(p[1])};
    }
    return out;
  }

  private static void run(MathProvider provider, int b, int h, int l, int e, boolean causal) {
    try (Arena arena = Arena.ofShared()) {
      SplittableRandom rnd = new SplittableRandom(1);
      Tensor q = Fixtures.tensor(arena, DType.FLOAT32, false, b, h, l, e, rnd);
      Tensor k = Fixtures.tensor(arena, DType.FLOAT32, false, b, h, l, e, rnd);
      Tensor v = Fixtures.tensor(arena, DType.FLOAT32, false, b, h, l, e, rnd);
      Tensor o = Tensor.allocate(arena, DType.FLOAT32, b, h, l, e);
      AttentionRequest r = AttentionRequest.create(q, k, v, o, null,
          AttentionOptions.builder().isCausal(causal).build());
      double flops = 4.0 * b * h * l * (double) l * e / (causal ? 2 : 1);
      long budget = 3_000_000_000L;
      long start = System.nanoTime();
      int warm = 0;
      while (System.nanoTime() - start < budget / 2 || warm < 2) {
        provider.forward(r);
        warm++;
      }
      double best = Double.MAX_VALUE;
      long t0 = System.nanoTime();
      long cpu0 = CPU.getProcessCpuTime();
      int reps = 0;
      while (System.nanoTime() - t0 < budget / 2 || reps < 3) {
        long a = System.nanoTime();
        provider.forward(r);
        best = Math.min(best, (System.nanoTime() - a) / 1e9);
        reps++;
      }
      double cpuSeconds = (CPU.getProcessCpuTime() - cpu0) / 1e9;
      System.out.printf("%-6d %-6d %-7s %10.2f %10.1f %16.1f%n", e, l, causal, best * 1e3, flops / best / 1e9,
          flops * reps / cpuSeconds / 1e9);
    }
  }
}
