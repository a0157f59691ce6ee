package dev.sdpa4j.benchmarks;

import java.util.Objects;

/**
 * One implementation on one case.
 *
 * @param implementation  who ran it: a provider name ({@code math}, {@code cuda-flash}), {@code eager},
 *                        {@code libtorch}, or a PyTorch backend ({@code torch-flash})
 * @param kind            {@code fused} (an sdpa4j provider), {@code eager} (scores materialised) or {@code peer}
 * @param device          where it ran: {@code cpu}, {@code cuda:0}
 * @param benchCase       the problem
 * @param status          how it ended
 * @param medianMs        median wall time of the timed repeats, ms (NaN unless OK)
 * @param minMs           fastest repeat, ms (NaN unless OK)
 * @param repeats         timed repeats
 * @param gflops          {@link BenchCase#flops()} / median time, in GFLOP/s (NaN unless OK)
 * @param memoryBytes     memory the call needs beyond its inputs: output (and gradients) plus everything it
 *                        allocates (heap on the CPU, measured; device memory on GPUs); -1 when not measured
 * @param memoryMethod    how {@code memoryBytes} was obtained
 * @param note            the reason for a non-OK status, or remarks
 */
public record Measurement(String implementation, String kind, String device, BenchCase benchCase, Status status,
                          double medianMs, double minMs, int repeats, double gflops, long memoryBytes,
                          String memoryMethod, String note) {
  public Measurement {
    Objects.requireNonNull(implementation, "implementation");
    Objects.requireNonNull(kind, "kind");
    Objects.requireNonNull(device, "device");
    Objects.requireNonNull(benchCase, "benchCase");
    Objects.requireNonNull(status, "status");
    memoryMethod = memoryMethod == null ? "" : memoryMethod;
    note = note == null ? "" : note;
  }

  /** A timed result. */
  public static Measurement ok(String implementation, String kind, String device, BenchCase c, Timing t,
      long memoryBytes, String memoryMethod, String note) {
    return new Measurement(implementation, kind, device, c, Status.OK, t.medianMs(), t.minMs(), t.repeats(),
        c.flops() / (t.medianMs() * 1e6), memoryBytes, memoryMethod, note);
  }

  /** A case that did not run, with its reason. */
  public static Measurement failed(String implementation, String kind, String device, BenchCase c, Status status,
      long memoryBytes, String memoryMethod, String note) {
    if (status == Status.OK) {
      throw new IllegalArgumentException("a failed measurement cannot have status OK");
    }
    return new Measurement(implementation, kind, device, c, status, Double.NaN, Double.NaN, 0, Double.NaN,
        memoryBytes, memoryMethod, note);
  }

  public boolean ok() {
    return status == Status.OK;
  }
}
