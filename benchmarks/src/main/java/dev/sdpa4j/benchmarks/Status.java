package dev.sdpa4j.benchmarks;

/** How one measurement ended. */
public enum Status {
  /** Timed. */
  OK,
  /** Ran out of memory, or would exceed the configured memory budget: the post's "OOM" cells. */
  OOM,
  /** The implementation does not support this case (the reason is in the note). */
  UNSUPPORTED,
  /** Failed for another reason (in the note). */
  ERROR,
  /** Skipped because it would exceed the sweep's time limit per case. */
  SKIPPED
}
