package dev.sdpa4j.benchmarks;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.HashMap;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** {@link Sweep}'s warm-up: a call of a few microseconds is warmed up for the warm-up time, not a fixed 50 calls. */
class SweepTest {

  /** A candidate whose calls cost nothing and are counted. */
  private static final class Counting implements Candidate {
    final AtomicInteger calls = new AtomicInteger();

    @Override
    public String name() {
      return "counting";
    }

    @Override
    public String kind() {
      return "fused";
    }

    @Override
    public String device() {
      return "cpu";
    }

    @Override
    public Optional<String> unsupported(BenchCase c) {
      return Optional.empty();
    }

    @Override
    public long workingBytes(BenchCase c) {
      return 0;
    }

    @Override
    public String memoryMethod() {
      return "none";
    }

    @Override
    public Prepared prepare(BenchCase c, InputSets inputs) {
      return new Prepared() {
        @Override
        public void run(int set) {
          calls.incrementAndGet();
        }

        @Override
        public float[] forwardOutput(int set) {
          return new float[0];
        }

        @Override
        public long memoryProbe(int set) {
          return -1;
        }

        @Override
        public void close() {}
      };
    }
  }

  @Test
  void shortCallsWarmUpForTheWarmUpTimeUpToTheCap() {
    Counting cand = new Counting();
    Sweep sweep = new Sweep(new Sweep.Settings(1, 3, 1, 1L << 30, 60, 7, 0.2));
    BenchCase c = new BenchCase(1, 1, 4, 4, 8, false, "fp32", Pass.ofLabel("fwd"), 0);
    sweep.measure(cand, c, new HashMap<>());
    // the warm-up calls (the cap: 0.2 s of free calls is far more) and 3 timed calls (memory probes run apart)
    assertThat(cand.calls.get()).isEqualTo(Sweep.MAX_WARMUP_CALLS + 3);
  }

  @Test
  void noWarmUpTimeMeansExactlyTheWarmUpCalls() {
    Counting cand = new Counting();
    Sweep sweep = new Sweep(new Sweep.Settings(4, 3, 1, 1L << 30, 60, 7, 0));
    sweep.measure(cand, new BenchCase(1, 1, 4, 4, 8, false, "fp32", Pass.ofLabel("fwd"), 0), new HashMap<>());
    assertThat(cand.calls.get()).isEqualTo(4 + 3);
  }
}
