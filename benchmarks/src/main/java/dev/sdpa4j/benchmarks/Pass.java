package dev.sdpa4j.benchmarks;

/** What one timed call does: the forward pass alone, or a training step (forward keeping the LSE, then backward). */
public enum Pass {
  FORWARD("fwd", 1.0),
  FORWARD_BACKWARD("fwd+bwd", 3.5);

  private final String label;
  private final double flopFactor;

  Pass(String label, double flopFactor) {
    this.label = label;
    this.flopFactor = flopFactor;
  }

  /** Short label used in tables and files: {@code fwd}, {@code fwd+bwd}. */
  public String label() {
    return label;
  }

  /**
   * FLOPs of this pass in units of the forward's: 1 for the forward, 3.5 for forward + backward (the backward does
   * 2.5 times the forward's matrix products: FlashAttention's convention).
   */
  public double flopFactor() {
    return flopFactor;
  }

  /** The pass named by {@link #label()}. */
  public static Pass ofLabel(String label) {
    for (Pass p : values()) {
      if (p.label.equals(label)) {
        return p;
      }
    }
    throw new IllegalArgumentException("unknown pass " + label + " (expected fwd or fwd+bwd)");
  }
}
