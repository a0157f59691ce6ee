package dev.sdpa4j.benchmarks.jmh;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.DType;
import dev.sdpa4j.ProviderRegistry;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.spi.AttentionProvider;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The math provider's inner loop in isolation: one query tile ({@code queries} rows, one head) against
 * {@code keys} keys, forward (QKᵀ tile products, online softmax, P·V accumulation) and backward, through the
 * provider's SPI entry points with validation done once in setup. FLOPs per call: {@code 4·queries·keys·E} forward
 * (halved when causal), 2.5× that backward; divide by the reported time for GFLOP/s.
 *
 * <p>Run: {@code ./mvnw -q -f benchmarks/pom.xml -Pjmh verify} (see benchmarks/README.md), or
 * {@code java --add-modules jdk.incubator.vector -cp ... org.openjdk.jmh.Main MathTileBenchmark}.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1) // the fork inherits the launching JVM's flags (--add-modules jdk.incubator.vector ...)
public class MathTileBenchmark {
  @Param({"64", "128"})
  int headDim;

  @Param({"64"})
  int queries;

  @Param({"1024"})
  int keys;

  @Param({"false", "true"})
  boolean causal;

  private Arena arena;
  private AttentionProvider math;
  private AttentionRequest forward;
  private BackwardRequest backward;

  @Setup(Level.Trial)
  public void setup() {
    math = ProviderRegistry.discovered().find("math")
        .orElseThrow(() -> new IllegalStateException("the math provider is not on the class path"));
    arena = Arena.ofShared();
    SplittableRandom r = new SplittableRandom(42);
    Tensor q = random(r, 1, 1, queries, headDim);
    Tensor k = random(r, 1, 1, keys, headDim);
    Tensor v = random(r, 1, 1, keys, headDim);
    Tensor out = Tensor.allocate(arena, DType.FLOAT32, 1, 1, queries, headDim);
    Tensor lse = Tensor.allocate(arena, DType.FLOAT32, 1, 1, queries);
    // bottom-right causal: the tile is the last query rows of a length-`keys` sequence, as in a real causal pass
    AttentionOptions options = AttentionOptions.builder()
        .causal(causal ? dev.sdpa4j.CausalMode.BOTTOM_RIGHT : dev.sdpa4j.CausalMode.NONE).training(true).build();
    forward = AttentionRequest.create(q, k, v, out, lse, options);
    math.forward(forward);
    backward = BackwardRequest.create(forward, random(r, 1, 1, queries, headDim),
        Tensor.allocate(arena, DType.FLOAT32, 1, 1, queries, headDim),
        Tensor.allocate(arena, DType.FLOAT32, 1, 1, keys, headDim),
        Tensor.allocate(arena, DType.FLOAT32, 1, 1, keys, headDim));
  }

  private Tensor random(SplittableRandom r, long... shape) {
    Tensor t = Tensor.allocate(arena, DType.FLOAT32, shape);
    for (long i = 0; i < t.elementCount(); i++) {
      t.hostSegment().setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) r.nextGaussian());
    }
    return t;
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    arena.close();
  }

  /** One forward tile: writes the output rows and their LSE. */
  @Benchmark
  public Tensor forwardTile() {
    math.forward(forward);
    return forward.output();
  }

  /** The backward of the same tile: dQ for the tile, dK and dV for every key. */
  @Benchmark
  public Tensor backwardTile() {
    math.backward(backward);
    return backward.gradKey();
  }
}
