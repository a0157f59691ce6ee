package dev.sdpa4j;

/** The kinds of masking a request uses and a provider may support. */
public enum MaskKind {
  /** No mask. */
  NONE("no mask"),
  /** {@link CausalMode#TOP_LEFT}. */
  CAUSAL_TOP_LEFT("causal mask (top-left)"),
  /** {@link CausalMode#BOTTOM_RIGHT}. */
  CAUSAL_BOTTOM_RIGHT("causal mask (bottom-right)"),
  /** A {@link DType#BOOL} tensor: true (non-zero) takes part. */
  BOOLEAN("boolean mask"),
  /** A floating-point tensor added to the scaled scores; -inf masks. */
  ADDITIVE("additive mask");

  private final String description;

  MaskKind(String description) {
    this.description = description;
  }

  /** Words for messages, e.g. "additive mask". */
  public String description() {
    return description;
  }
}
