package dev.sdpa4j;

import java.util.Optional;
import java.util.OptionalDouble;

/**
 * The options of one attention call, PyTorch's {@code scaled_dot_product_attention} arguments and more. Immutable;
 * build with {@link #builder()}. {@link #DEFAULTS} is no mask, no dropout, scale {@code 1/sqrt(E)}.
 */
public final class AttentionOptions {
  /** No mask, no dropout, the default scale, inference only. */
  public static final AttentionOptions DEFAULTS = builder().build();

  private final Tensor attnMask;
  private final CausalMode causal;
  private final Double scale;
  private final double dropoutP;
  private final DropoutSeed dropoutSeed;
  private final DropoutResolution dropoutResolution;
  private final boolean enableGqa;
  private final boolean returnLse;
  private final boolean training;
  private final boolean deterministic;
  private final long stream;

  private AttentionOptions(Builder b) {
    this.attnMask = b.attnMask;
    this.causal = b.causal;
    this.scale = b.scale;
    this.dropoutP = b.dropoutP;
    this.dropoutSeed = b.dropoutSeed;
    this.dropoutResolution = b.dropoutResolution;
    this.enableGqa = b.enableGqa;
    this.returnLse = b.returnLse;
    this.training = b.training;
    this.deterministic = b.deterministic;
    this.stream = b.stream;
  }

  public static Builder builder() {
    return new Builder();
  }

  /** A builder holding these options, to change some. */
  public Builder toBuilder() {
    Builder b = new Builder();
    b.attnMask = attnMask;
    b.causal = causal;
    b.scale = scale;
    b.dropoutP = dropoutP;
    b.dropoutSeed = dropoutSeed;
    b.dropoutResolution = dropoutResolution;
    b.enableGqa = enableGqa;
    b.returnLse = returnLse;
    b.training = training;
    b.deterministic = deterministic;
    b.stream = stream;
    return b;
  }

  /** The mask, boolean ({@link DType#BOOL}, true takes part) or additive (float), broadcastable to [B, Hq, Lq, Lk]. */
  public Optional<Tensor> attnMask() {
    return Optional.ofNullable(attnMask);
  }

  public CausalMode causal() {
    return causal;
  }

  /** The scale applied to {@code Q·K^T}; empty means {@code 1/sqrt(E)}. */
  public OptionalDouble scale() {
    return scale == null ? OptionalDouble.empty() : OptionalDouble.of(scale);
  }

  public double dropoutP() {
    return dropoutP;
  }

  /** The dropout seed and offset; empty means one is drawn per call and returned in the result. */
  public Optional<DropoutSeed> dropoutSeed() {
    return Optional.ofNullable(dropoutSeed);
  }

  /** How finely the dropout mask resolves {@link #dropoutP()}; {@link DropoutResolution#WORD} unless set. */
  public DropoutResolution dropoutResolution() {
    return dropoutResolution;
  }

  /** Whether {@code Hq} may be a multiple of {@code Hkv} (grouped-query attention). */
  public boolean enableGqa() {
    return enableGqa;
  }

  /** Whether the log-sum-exp {@code [B, Hq, Lq]} (fp32) is wanted. Implied by {@link #training()}. */
  public boolean returnLse() {
    return returnLse || training;
  }

  /** Whether a backward pass will follow: the chosen provider must support backward, and the LSE is kept. */
  public boolean training() {
    return training;
  }

  /** Whether the call must give the same bits run to run (providers that cannot promise it refuse). */
  public boolean deterministic() {
    return deterministic;
  }

  /**
   * The native handle of the caller's CUDA stream ({@code CUstream}) or OpenCL command queue
   * ({@code cl_command_queue}) for device tensors; 0 means the provider's own. Ignored for host tensors.
   */
  public long stream() {
    return stream;
  }

  /** Builds {@link AttentionOptions}; {@link #build()} rejects contradictory settings. */
  public static final class Builder {
    private Tensor attnMask;
    private CausalMode causal = CausalMode.NONE;
    private Double scale;
    private double dropoutP;
    private DropoutSeed dropoutSeed;
    private DropoutResolution dropoutResolution = DropoutResolution.WORD;
    private boolean enableGqa;
    private boolean returnLse;
    private boolean training;
    private boolean deterministic;
    private long stream;

    private Builder() {}

    /** A boolean or additive mask; see {@link AttentionOptions#attnMask()}. Null clears it. */
    public Builder attnMask(Tensor mask) {
      this.attnMask = mask;
      return this;
    }

    /** PyTorch's {@code is_causal}: {@link CausalMode#TOP_LEFT} when true. */
    public Builder isCausal(boolean causal) {
      this.causal = causal ? CausalMode.TOP_LEFT : CausalMode.NONE;
      return this;
    }

    public Builder causal(CausalMode mode) {
      this.causal = java.util.Objects.requireNonNull(mode, "causal");
      return this;
    }

    public Builder scale(double scale) {
      this.scale = scale;
      return this;
    }

    public Builder dropoutP(double p) {
      this.dropoutP = p;
      return this;
    }

    public Builder dropoutSeed(DropoutSeed seed) {
      this.dropoutSeed = seed;
      return this;
    }

    public Builder dropoutSeed(long seed, long offset) {
      return dropoutSeed(new DropoutSeed(seed, offset));
    }

    /**
     * The resolution of the dropout mask: {@link DropoutResolution#BYTE} trades the exact probability for a quarter
     * of the random-number work (FlashAttention-2's mask); providers that do not reproduce it refuse the call.
     */
    public Builder dropoutResolution(DropoutResolution resolution) {
      this.dropoutResolution = java.util.Objects.requireNonNull(resolution, "dropoutResolution");
      return this;
    }

    public Builder enableGqa(boolean enable) {
      this.enableGqa = enable;
      return this;
    }

    public Builder returnLse(boolean returnLse) {
      this.returnLse = returnLse;
      return this;
    }

    public Builder training(boolean training) {
      this.training = training;
      return this;
    }

    public Builder deterministic(boolean deterministic) {
      this.deterministic = deterministic;
      return this;
    }

    public Builder stream(long stream) {
      this.stream = stream;
      return this;
    }

    /**
     * The options.
     *
     * @throws AttentionArgumentException for a mask together with causal masking, a dropout probability outside
     *     {@code [0, 1)} or one that its {@link DropoutResolution} rounds to zero, or a scale that is NaN or
     *     infinite
     */
    public AttentionOptions build() {
      if (attnMask != null && causal != CausalMode.NONE) {
        throw new AttentionArgumentException("options.attnMask",
            "an explicit mask and causal masking are mutually exclusive (as in PyTorch); fold the causal pattern into the mask");
      }
      if (!(dropoutP >= 0 && dropoutP < 1)) {
        throw new AttentionArgumentException("options.dropoutP", "expected a probability in [0, 1), got " + dropoutP);
      }
      if (dropoutP > 0 && Dropout.Mask.of(dropoutP, dropoutResolution).threshold() == 0) {
        throw new AttentionArgumentException("options.dropoutP", "p = " + dropoutP + " rounds to 0 at "
            + dropoutResolution + " resolution (multiples of 1/256): use p >= 1/512 or DropoutResolution.WORD");
      }
      if (scale != null && (scale.isNaN() || scale.isInfinite())) {
        throw new AttentionArgumentException("options.scale", "expected a finite number, got " + scale);
      }
      return new AttentionOptions(this);
    }
  }
}
