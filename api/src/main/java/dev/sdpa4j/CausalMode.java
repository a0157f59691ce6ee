package dev.sdpa4j;

/**
 * Causal masking, and how the causal diagonal is aligned when {@code Lq != Lk}.
 */
public enum CausalMode {
  /** No causal masking. */
  NONE,
  /** Query {@code i} sees keys {@code j <= i}: PyTorch's {@code is_causal=True}. */
  TOP_LEFT,
  /**
   * Query {@code i} sees keys {@code j <= i + Lk - Lq}: the last query sees every key, as with a KV cache
   * (FlashAttention's convention). Identical to {@link #TOP_LEFT} when {@code Lq == Lk}.
   */
  BOTTOM_RIGHT;

  /** True when key {@code j} takes part for query {@code i}. */
  public boolean allows(long i, long j, long lq, long lk) {
    return switch (this) {
      case NONE -> true;
      case TOP_LEFT -> j <= i;
      case BOTTOM_RIGHT -> j <= i + lk - lq;
    };
  }
}
