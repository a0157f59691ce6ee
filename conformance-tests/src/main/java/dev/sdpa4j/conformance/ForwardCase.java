package dev.sdpa4j.conformance;

import dev.sdpa4j.CausalMode;
import dev.sdpa4j.DType;
import dev.sdpa4j.DropoutResolution;
import dev.sdpa4j.DropoutSeed;
import dev.sdpa4j.MaskKind;
import java.util.Locale;

/**
 * One attention problem the kit runs: sizes, element type, masking, scale, dropout, layout and outputs. Its
 * {@link #name()} is the test's display name and the key of its random data.
 *
 * @param dtype         element type of query, key, value and output
 * @param batch         B
 * @param queryHeads    Hq
 * @param kvHeads       Hkv
 * @param queryLength   Lq
 * @param keyLength     Lk
 * @param headDim       E
 * @param valueHeadDim  Ev
 * @param mask          the tensor mask, or null
 * @param causal        causal masking ({@link CausalMode#NONE} with a tensor mask)
 * @param scale         an explicit scale, or null for {@code 1/sqrt(E)}
 * @param dropoutP      dropout probability, 0 for none
 * @param dropoutSeed   the explicit dropout seed, or null to let the request draw one
 * @param dropoutResolution the dropout mask's resolution
 * @param layout        how query, key, value and output lie in memory
 * @param lse           whether the LSE output is requested
 * @param training      whether the forward is a training one (then {@code lse} is true)
 * @param deterministic whether the options ask for bit-reproducible results
 */
record ForwardCase(DType dtype, long batch, long queryHeads, long kvHeads, long queryLength, long keyLength,
                   long headDim, long valueHeadDim, MaskSpec mask, CausalMode causal, Double scale, double dropoutP,
                   DropoutSeed dropoutSeed, DropoutResolution dropoutResolution, Layout layout, boolean lse,
                   boolean training, boolean deterministic) {

  ForwardCase {
    if (mask != null && causal != CausalMode.NONE) {
      throw new IllegalArgumentException("a case has a tensor mask or causal masking, not both");
    }
    if (training && !lse) {
      throw new IllegalArgumentException("training needs the LSE");
    }
  }

  /** B=2, Hq=Hkv=3, Lq=Lk=17, E=Ev={@code headDim}, no mask, default scale, contiguous. */
  static ForwardCase base(DType dtype, long headDim, boolean lse) {
    return new ForwardCase(dtype, 2, 3, 3, 17, 17, headDim, headDim, null, CausalMode.NONE, null, 0, null,
        DropoutResolution.WORD, Layout.CONTIGUOUS, lse, false, false);
  }

  MaskKind maskKind() {
    if (mask != null) {
      return mask.kind();
    }
    return switch (causal) {
      case NONE -> MaskKind.NONE;
      case TOP_LEFT -> MaskKind.CAUSAL_TOP_LEFT;
      case BOTTOM_RIGHT -> MaskKind.CAUSAL_BOTTOM_RIGHT;
    };
  }

  ForwardCase dtype(DType t) {
    return new ForwardCase(t, batch, queryHeads, kvHeads, queryLength, keyLength, headDim, valueHeadDim, mask, causal,
        scale, dropoutP, dropoutSeed, dropoutResolution, layout, lse, training, deterministic);
  }

  ForwardCase heads(long b, long hq, long hkv) {
    return new ForwardCase(dtype, b, hq, hkv, queryLength, keyLength, headDim, valueHeadDim, mask, causal, scale,
        dropoutP, dropoutSeed, dropoutResolution, layout, lse, training, deterministic);
  }

  ForwardCase lengths(long lq, long lk) {
    return new ForwardCase(dtype, batch, queryHeads, kvHeads, lq, lk, headDim, valueHeadDim, mask, causal, scale,
        dropoutP, dropoutSeed, dropoutResolution, layout, lse, training, deterministic);
  }

  ForwardCase dims(long e, long ev) {
    return new ForwardCase(dtype, batch, queryHeads, kvHeads, queryLength, keyLength, e, ev, mask, causal, scale,
        dropoutP, dropoutSeed, dropoutResolution, layout, lse, training, deterministic);
  }

  ForwardCase mask(MaskSpec m) {
    return new ForwardCase(dtype, batch, queryHeads, kvHeads, queryLength, keyLength, headDim, valueHeadDim, m,
        CausalMode.NONE, scale, dropoutP, dropoutSeed, dropoutResolution, layout, lse, training, deterministic);
  }

  ForwardCase causal(CausalMode mode) {
    return new ForwardCase(dtype, batch, queryHeads, kvHeads, queryLength, keyLength, headDim, valueHeadDim, null,
        mode, scale, dropoutP, dropoutSeed, dropoutResolution, layout, lse, training, deterministic);
  }

  /** The same case with masking of {@code kind}: a causal mode, or a tensor mask in the given spec. */
  ForwardCase masking(MaskKind kind, MaskSpec tensorMask) {
    return switch (kind) {
      case NONE -> causal(CausalMode.NONE);
      case CAUSAL_TOP_LEFT -> causal(CausalMode.TOP_LEFT);
      case CAUSAL_BOTTOM_RIGHT -> causal(CausalMode.BOTTOM_RIGHT);
      case BOOLEAN, ADDITIVE -> mask(tensorMask);
    };
  }

  ForwardCase scale(Double s) {
    return new ForwardCase(dtype, batch, queryHeads, kvHeads, queryLength, keyLength, headDim, valueHeadDim, mask,
        causal, s, dropoutP, dropoutSeed, dropoutResolution, layout, lse, training, deterministic);
  }

  ForwardCase dropout(double p, DropoutSeed seed) {
    return new ForwardCase(dtype, batch, queryHeads, kvHeads, queryLength, keyLength, headDim, valueHeadDim, mask,
        causal, scale, p, seed, dropoutResolution, layout, lse, training, deterministic);
  }

  /** The same case with its dropout mask at {@code r}. */
  ForwardCase dropoutResolution(DropoutResolution r) {
    return new ForwardCase(dtype, batch, queryHeads, kvHeads, queryLength, keyLength, headDim, valueHeadDim, mask,
        causal, scale, dropoutP, dropoutSeed, r, layout, lse, training, deterministic);
  }

  ForwardCase layout(Layout l) {
    return new ForwardCase(dtype, batch, queryHeads, kvHeads, queryLength, keyLength, headDim, valueHeadDim, mask,
        causal, scale, dropoutP, dropoutSeed, dropoutResolution, l, lse, training, deterministic);
  }

  ForwardCase lse(boolean wanted) {
    return new ForwardCase(dtype, batch, queryHeads, kvHeads, queryLength, keyLength, headDim, valueHeadDim, mask,
        causal, scale, dropoutP, dropoutSeed, dropoutResolution, layout, wanted, training && wanted, deterministic);
  }

  ForwardCase training(boolean t) {
    return new ForwardCase(dtype, batch, queryHeads, kvHeads, queryLength, keyLength, headDim, valueHeadDim, mask,
        causal, scale, dropoutP, dropoutSeed, dropoutResolution, layout, lse || t, t, deterministic);
  }

  ForwardCase deterministic(boolean d) {
    return new ForwardCase(dtype, batch, queryHeads, kvHeads, queryLength, keyLength, headDim, valueHeadDim, mask,
        causal, scale, dropoutP, dropoutSeed, dropoutResolution, layout, lse, training, d);
  }

  /** Work of one run, {@code B·Hq·Lq·Lk·(E + Ev)}, to keep grids within budget. */
  double cost() {
    return (double) batch * queryHeads * queryLength * keyLength * (headDim + valueHeadDim);
  }

  /** The display name, e.g. {@code fp16 B=2 Hq=4 Hkv=2 Lq=29 Lk=11 E=64 Ev=64, causal (bottom-right), blhe, lse}. */
  String name() {
    StringBuilder s = new StringBuilder(dtype.shortName());
    s.append(" B=").append(batch).append(" Hq=").append(queryHeads).append(" Hkv=").append(kvHeads)
        .append(" Lq=").append(queryLength).append(" Lk=").append(keyLength)
        .append(" E=").append(headDim).append(" Ev=").append(valueHeadDim);
    if (mask != null) {
      s.append(", ").append(mask.label());
    } else if (causal != CausalMode.NONE) {
      s.append(", causal ").append(causal == CausalMode.TOP_LEFT ? "top-left" : "bottom-right");
    }
    if (scale != null) {
      s.append(", scale=").append(scale);
    }
    if (dropoutP > 0) {
      s.append(", dropout p=").append(dropoutP);
      s.append(dropoutSeed == null ? " (drawn seed)"
          : String.format(Locale.ROOT, " seed=%d offset=%d", dropoutSeed.seed(), dropoutSeed.offset()));
      if (dropoutResolution != DropoutResolution.WORD) {
        s.append(", ").append(dropoutResolution.name().toLowerCase(Locale.ROOT)).append(" mask");
      }
    }
    if (layout != Layout.CONTIGUOUS) {
      s.append(", ").append(layout.label());
    }
    if (training) {
      s.append(", training");
    } else if (lse) {
      s.append(", lse");
    }
    if (deterministic) {
      s.append(", deterministic");
    }
    return s.toString();
  }
}
