package dev.sdpa4j.benchmarks;

import java.util.Optional;

/**
 * Something that computes attention and can be timed: an sdpa4j provider, the eager baseline, or a peer library.
 * A candidate prepares a case (allocates its inputs, several sets of them), then runs it repeatedly.
 */
public interface Candidate {

  /** The name in tables: a provider's name, {@code eager}, {@code libtorch}. */
  String name();

  /** {@code fused}, {@code eager} or {@code peer}. */
  String kind();

  /** Where it runs: {@code cpu}, {@code cuda:0}. */
  String device();

  /** Why it cannot run {@code c}, or empty when it can. Cheap: allocates nothing. */
  Optional<String> unsupported(BenchCase c);

  /**
   * Bytes the call needs beyond its inputs and outputs (the eager baseline's score matrices; 0 for fused
   * implementations), checked against the sweep's memory budget before running.
   */
  long workingBytes(BenchCase c);

  /** How {@link Prepared#memoryProbe} measures memory, in words for the results' {@code memoryMethod} column. */
  String memoryMethod();

  /**
   * Allocates {@code sets} independent input sets for {@code c} (rotated between calls so that caches do not
   * flatter), filled from {@code inputs}.
   *
   * @throws UnsupportedCaseException when the implementation refuses the case only once it sees the tensors
   * @throws OutOfMemoryError         when memory runs out
   */
  Prepared prepare(BenchCase c, InputSets inputs);

  /** A prepared case. */
  interface Prepared extends AutoCloseable {
    /** Runs the case once on input set {@code set}; returns when the result is complete (synchronises a device). */
    void run(int set);

    /**
     * Runs the case once on input set {@code set} and returns its time in milliseconds: by default wall time around
     * {@link #run}; device candidates override it with device events.
     */
    default double timedRunMs(int set) {
      long t0 = System.nanoTime();
      run(set);
      return (System.nanoTime() - t0) / 1e6;
    }

    /**
     * Runs the forward pass alone, without dropout, on input set {@code set} and returns its output as floats,
     * contiguous {@code [B, H, Lq, E]}: what the sweep compares between implementations. Untimed.
     */
    float[] forwardOutput(int set);

    /**
     * Runs the case once on input set {@code set} and returns the memory the call needed beyond its inputs, in
     * bytes, or -1 when it cannot be measured.
     */
    long memoryProbe(int set);

    /** Frees the inputs and outputs. */
    @Override
    void close();
  }

  /** The implementation refuses a case. */
  final class UnsupportedCaseException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public UnsupportedCaseException(String message) {
      super(message);
    }
  }
}
