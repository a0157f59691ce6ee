package dev.sdpa4j.benchmarks;

import java.util.Arrays;

/**
 * Times of the repeats of one case.
 *
 * @param samplesMs each timed repeat, ms, in run order
 */
public record Timing(double[] samplesMs) {
  public Timing {
    if (samplesMs.length == 0) {
      throw new IllegalArgumentException("no samples");
    }
    samplesMs = samplesMs.clone();
  }

  public int repeats() {
    return samplesMs.length;
  }

  /** The median (mean of the two middle samples for an even count). */
  public double medianMs() {
    double[] s = samplesMs.clone();
    Arrays.sort(s);
    int n = s.length;
    return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  }

  public double minMs() {
    return Arrays.stream(samplesMs).min().orElseThrow();
  }

  @Override
  public double[] samplesMs() {
    return samplesMs.clone();
  }
}
