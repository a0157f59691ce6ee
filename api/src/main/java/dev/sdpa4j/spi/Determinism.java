package dev.sdpa4j.spi;

/** Whether a provider gives the same bits for the same call, forward and backward. */
public enum Determinism {
  /** Always the same bits. */
  ALWAYS,
  /** The same bits when the options ask for it ({@code deterministic(true)}), possibly slower. */
  ON_REQUEST,
  /** Results may differ in the last bits between runs (atomics, split reductions). */
  NEVER
}
