package dev.sdpa4j.conformance;

/**
 * How query, key, value, output (and their gradients) lie in memory; each is a view of logical shape
 * {@code [B, H, L, D]}.
 */
enum Layout {
  /** Row-major {@code [B, H, L, D]}. */
  CONTIGUOUS("contiguous"),
  /** Memory {@code [B, L, H, D]} ({@link dev.sdpa4j.Tensor#blhe}), FlashAttention's layout. */
  BLHE("blhe"),
  /** Row-major with gaps: 3 spare elements after each row, 5 after each head. Outputs' gaps must stay untouched. */
  PADDED("padded"),
  /** Memory {@code [B, H, D, L]}: the head dimension is not the innermost (tested where stride 1 is not required). */
  HEAD_DIM_STRIDED("head-dim-strided");

  private final String label;

  Layout(String label) {
    this.label = label;
  }

  String label() {
    return label;
  }

  /** Element strides of a {@code [b, h, l, d]} view in this layout. */
  long[] strides(long b, long h, long l, long d) {
    return switch (this) {
      case CONTIGUOUS -> new long[] {h * l * d, l * d, d, 1};
      case BLHE -> new long[] {l * h * d, d, h * d, 1};
      case PADDED -> {
        long row = d + 3;
        long head = l * row + 5;
        yield new long[] {h * head, head, row, 1};
      }
      case HEAD_DIM_STRIDED -> new long[] {h * d * l, d * l, 1, l};
    };
  }

  /** Element strides of the LSE {@code [b, h, l]}: padded in {@link #PADDED}, else contiguous. */
  long[] lseStrides(long b, long h, long l) {
    return this == PADDED ? new long[] {h * (l + 2), l + 2, 1} : new long[] {h * l, l, 1};
  }
}
