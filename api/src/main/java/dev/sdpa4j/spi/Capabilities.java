package dev.sdpa4j.spi;

import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.AttentionShape;
import dev.sdpa4j.DType;
import dev.sdpa4j.DropoutResolution;
import dev.sdpa4j.MaskKind;
import dev.sdpa4j.Platform;
import dev.sdpa4j.Tensor;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * What a provider supports on one device, as data. {@link #reasonsAgainst} turns it into the reasons a request is
 * refused; providers add reasons of their own (sizes, memory) in {@link AttentionProvider#notSupportedReasons}.
 *
 * @param dtypes               element types of query, key, value and output
 * @param minHeadDim           smallest query/key head dim E
 * @param maxHeadDim           largest E
 * @param headDimMultiple      E (and Ev) must be a multiple of this
 * @param valueDimMayDiffer    whether Ev may differ from E
 * @param maxValueHeadDim      largest Ev
 * @param maskKinds            the kinds of masking supported; {@link MaskKind#NONE} is listed too
 * @param dropoutResolutions   the dropout mask resolutions reproduced ({@code p > 0}); empty: no dropout
 * @param backward             whether the backward pass is supported
 * @param groupedQuery         whether {@code Hq != Hkv} is supported
 * @param customScale          whether a scale other than {@code 1/sqrt(E)} is supported
 * @param logSumExp            whether the LSE output is supported
 * @param unitHeadDimStride    whether the last dimension of query, key, value and output must have stride 1
 * @param memory               where the tensors may be; {@link Platform#HOST} on a device provider means it copies
 * @param determinism          whether results are bit-reproducible
 * @param minComputeCapability the lowest CUDA compute capability, or null for non-CUDA providers
 */
public record Capabilities(Set<DType> dtypes, int minHeadDim, int maxHeadDim, int headDimMultiple,
                           boolean valueDimMayDiffer, int maxValueHeadDim, Set<MaskKind> maskKinds,
                           Set<DropoutResolution> dropoutResolutions,
                           boolean backward, boolean groupedQuery, boolean customScale, boolean logSumExp,
                           boolean unitHeadDimStride, Set<Platform> memory, Determinism determinism,
                           ComputeCapability minComputeCapability) {

  public Capabilities {
    dtypes = Set.copyOf(dtypes);
    maskKinds = Set.copyOf(maskKinds);
    dropoutResolutions = Set.copyOf(dropoutResolutions);
    memory = Set.copyOf(memory);
    Objects.requireNonNull(determinism, "determinism");
    if (minHeadDim < 1 || maxHeadDim < minHeadDim || headDimMultiple < 1 || maxValueHeadDim < 1) {
      throw new IllegalArgumentException("inconsistent head-dim limits");
    }
  }

  /** Whether dropout ({@code p > 0}) is supported at some resolution. */
  public boolean dropout() {
    return !dropoutResolutions.isEmpty();
  }

  /** A builder starting from: fp32, E in 1..256 any multiple, Ev = E, no mask, nothing else, host memory. */
  public static Builder builder() {
    return new Builder();
  }

  /**
   * Every reason these capabilities refuse {@code request}, in words a user can act on; empty when accepted.
   */
  public List<String> reasonsAgainst(AttentionRequest request) {
    List<String> reasons = new ArrayList<>();
    AttentionShape s = request.shape();
    if (!dtypes.contains(request.dtype())) {
      reasons.add("dtype " + request.dtype().shortName() + " not supported (supported: " + names(dtypes) + ")");
    }
    if (s.headDim() < minHeadDim) {
      reasons.add("head dim " + s.headDim() + " < " + minHeadDim);
    }
    if (s.headDim() > maxHeadDim) {
      reasons.add("head dim " + s.headDim() + " > " + maxHeadDim);
    }
    if (s.headDim() % headDimMultiple != 0) {
      reasons.add("head dim " + s.headDim() + " is not a multiple of " + headDimMultiple);
    }
    if (s.valueHeadDim() != s.headDim()) {
      if (!valueDimMayDiffer) {
        reasons.add("value head dim " + s.valueHeadDim() + " != query head dim " + s.headDim() + " not supported");
      } else {
        if (s.valueHeadDim() > maxValueHeadDim) {
          reasons.add("value head dim " + s.valueHeadDim() + " > " + maxValueHeadDim);
        }
        if (s.valueHeadDim() % headDimMultiple != 0) {
          reasons.add("value head dim " + s.valueHeadDim() + " is not a multiple of " + headDimMultiple);
        }
      }
    }
    if (!maskKinds.contains(request.maskKind())) {
      reasons.add(request.maskKind().description() + " not supported");
    }
    if (request.dropoutP() > 0) {
      DropoutResolution asked = request.options().dropoutResolution();
      if (dropoutResolutions.isEmpty()) {
        reasons.add("dropout not supported (p = " + request.dropoutP() + ")");
      } else if (!dropoutResolutions.contains(asked)) {
        reasons.add("dropout at " + asked + " resolution not supported (supported: " + dropoutResolutions.stream()
            .sorted().map(Enum::name).collect(Collectors.joining(", ")) + ")");
      }
    }
    if (request.options().training() && !backward) {
      reasons.add("backward (training) not supported");
    }
    if (s.queryHeads() != s.kvHeads() && !groupedQuery) {
      reasons.add("grouped-query attention (Hq = " + s.queryHeads() + ", Hkv = " + s.kvHeads() + ") not supported");
    }
    if (request.customScale() && !customScale) {
      reasons.add("custom scale not supported");
    }
    if (request.lse().isPresent() && !logSumExp) {
      reasons.add("log-sum-exp output not supported");
    }
    if (unitHeadDimStride) {
      for (var t : new Tensor[] {request.query(), request.key(), request.value(), request.output()}) {
        if (t.stride(3) != 1) {
          reasons.add("the head dimension must have stride 1, got strides " + java.util.Arrays.toString(t.strides()));
          break;
        }
      }
    }
    if (!memory.contains(request.device().platform())) {
      reasons.add("tensors in " + request.device().platform().name().toLowerCase(java.util.Locale.ROOT)
          + " memory not supported (supported: " + memory.stream().map(p -> p.name().toLowerCase(java.util.Locale.ROOT))
          .sorted().collect(Collectors.joining(", ")) + ")");
    }
    if (request.options().deterministic() && determinism == Determinism.NEVER) {
      reasons.add("deterministic results not supported");
    }
    return reasons;
  }

  private static String names(Set<DType> types) {
    return types.stream().sorted().map(DType::shortName).collect(Collectors.joining(", "));
  }

  /** Builds {@link Capabilities}. */
  public static final class Builder {
    private Set<DType> dtypes = EnumSet.of(DType.FLOAT32);
    private int minHeadDim = 1;
    private int maxHeadDim = 256;
    private int headDimMultiple = 1;
    private boolean valueDimMayDiffer;
    private int maxValueHeadDim = 256;
    private Set<MaskKind> maskKinds = EnumSet.of(MaskKind.NONE);
    private Set<DropoutResolution> dropoutResolutions = EnumSet.noneOf(DropoutResolution.class);
    private boolean backward;
    private boolean groupedQuery;
    private boolean customScale;
    private boolean logSumExp;
    private boolean unitHeadDimStride;
    private Set<Platform> memory = EnumSet.of(Platform.HOST);
    private Determinism determinism = Determinism.ALWAYS;
    private ComputeCapability minComputeCapability;

    private Builder() {}

    public Builder dtypes(DType... types) {
      this.dtypes = EnumSet.copyOf(List.of(types));
      return this;
    }

    /** Head dims E in {@code [min, max]}, multiples of {@code multiple}. */
    public Builder headDims(int min, int max, int multiple) {
      this.minHeadDim = min;
      this.maxHeadDim = max;
      this.headDimMultiple = multiple;
      return this;
    }

    /** Ev may differ from E, up to {@code maxValueHeadDim}. */
    public Builder valueDimMayDiffer(int maxValueHeadDim) {
      this.valueDimMayDiffer = true;
      this.maxValueHeadDim = maxValueHeadDim;
      return this;
    }

    public Builder maskKinds(MaskKind... kinds) {
      this.maskKinds = EnumSet.copyOf(List.of(kinds));
      this.maskKinds.add(MaskKind.NONE);
      return this;
    }

    /** Dropout at {@link DropoutResolution#WORD} resolution (the default mask) when true; none when false. */
    public Builder dropout(boolean v) {
      return v ? dropoutResolutions(DropoutResolution.WORD) : dropoutResolutions();
    }

    /** Dropout at exactly these mask resolutions; none for an empty list. */
    public Builder dropoutResolutions(DropoutResolution... resolutions) {
      this.dropoutResolutions = EnumSet.noneOf(DropoutResolution.class);
      this.dropoutResolutions.addAll(List.of(resolutions));
      return this;
    }

    public Builder backward(boolean v) {
      this.backward = v;
      return this;
    }

    public Builder groupedQuery(boolean v) {
      this.groupedQuery = v;
      return this;
    }

    public Builder customScale(boolean v) {
      this.customScale = v;
      return this;
    }

    public Builder logSumExp(boolean v) {
      this.logSumExp = v;
      return this;
    }

    public Builder unitHeadDimStride(boolean v) {
      this.unitHeadDimStride = v;
      return this;
    }

    public Builder memory(Platform... platforms) {
      this.memory = EnumSet.copyOf(List.of(platforms));
      return this;
    }

    public Builder determinism(Determinism d) {
      this.determinism = d;
      return this;
    }

    public Builder minComputeCapability(ComputeCapability cc) {
      this.minComputeCapability = cc;
      return this;
    }

    public Capabilities build() {
      int maxEv = valueDimMayDiffer ? maxValueHeadDim : maxHeadDim;
      return new Capabilities(dtypes, minHeadDim, maxHeadDim, headDimMultiple, valueDimMayDiffer, maxEv, maskKinds,
          dropoutResolutions, backward, groupedQuery, customScale, logSumExp, unitHeadDimStride, memory, determinism,
          minComputeCapability);
    }
  }
}
