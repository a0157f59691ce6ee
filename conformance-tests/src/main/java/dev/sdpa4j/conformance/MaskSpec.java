package dev.sdpa4j.conformance;

import dev.sdpa4j.DType;
import dev.sdpa4j.MaskKind;

/**
 * A tensor mask of a case: boolean or additive, its element type, the shape it broadcasts from, and whether some
 * rows are masked entirely.
 *
 * @param kind            {@link MaskKind#BOOLEAN} or {@link MaskKind#ADDITIVE}
 * @param dtype           {@link DType#BOOL} for boolean masks; fp32 or the inputs' type for additive ones
 * @param broadcast       the shape the mask is given in
 * @param fullyMaskedRows whether some query rows get no key at all: rows {@code i % 3 == 1} where the mask has a
 *                        query dimension; otherwise every key of the last batch ({@code [B,1,1,Lk]}), of head 0
 *                        ({@code [1,Hq,1,Lk]}) or of all rows ({@code [Lk]})
 */
record MaskSpec(MaskKind kind, DType dtype, Broadcast broadcast, boolean fullyMaskedRows) {

  /** The shapes a mask is given in, broadcast to {@code [B, Hq, Lq, Lk]}. */
  enum Broadcast {
    FULL("[B,Hq,Lq,Lk]"),
    QUERY_KEY("[Lq,Lk]"),
    PER_BATCH("[B,1,Lq,Lk]"),
    KEY_PADDING("[B,1,1,Lk]"),
    PER_HEAD("[1,Hq,1,Lk]"),
    KEYS("[Lk]");

    private final String label;

    Broadcast(String label) {
      this.label = label;
    }

    long[] shape(long b, long hq, long lq, long lk) {
      return switch (this) {
        case FULL -> new long[] {b, hq, lq, lk};
        case QUERY_KEY -> new long[] {lq, lk};
        case PER_BATCH -> new long[] {b, 1, lq, lk};
        case KEY_PADDING -> new long[] {b, 1, 1, lk};
        case PER_HEAD -> new long[] {1, hq, 1, lk};
        case KEYS -> new long[] {lk};
      };
    }

    /** Whether the mask has a query dimension, so rows can be masked one by one. */
    boolean hasRows() {
      return this == FULL || this == QUERY_KEY || this == PER_BATCH;
    }
  }

  static MaskSpec bool(Broadcast broadcast) {
    return new MaskSpec(MaskKind.BOOLEAN, DType.BOOL, broadcast, false);
  }

  static MaskSpec additive(DType dtype, Broadcast broadcast) {
    return new MaskSpec(MaskKind.ADDITIVE, dtype, broadcast, false);
  }

  MaskSpec withFullyMaskedRows() {
    return new MaskSpec(kind, dtype, broadcast, true);
  }

  String label() {
    return (kind == MaskKind.BOOLEAN ? "bool" : "additive " + dtype.shortName()) + " mask " + broadcast.label
        + (fullyMaskedRows ? " with fully masked rows" : "");
  }
}
