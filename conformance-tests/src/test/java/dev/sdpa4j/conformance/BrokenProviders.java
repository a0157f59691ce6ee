package dev.sdpa4j.conformance;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.CausalMode;
import dev.sdpa4j.DType;
import dev.sdpa4j.DropoutResolution;
import dev.sdpa4j.DropoutSeed;
import dev.sdpa4j.MaskKind;
import dev.sdpa4j.Platform;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.provider.math.ReferenceAttention;
import dev.sdpa4j.spi.AttentionProvider;
import dev.sdpa4j.spi.Capabilities;
import dev.sdpa4j.spi.Determinism;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.UnaryOperator;

/**
 * Providers with one deliberate bug each, built on {@link ReferenceProvider}, and a kit subclass for each. The kit
 * must fail every one of them ({@link KitSelfTest}). The kit subclasses are nested, so surefire does not run them
 * on their own.
 */
final class BrokenProviders {
  private BrokenProviders() {}

  /** fp32 only, every feature, head dims up to 64: small grids, so each self-test runs fast. */
  static Capabilities.Builder fp32() {
    return Capabilities.builder()
        .dtypes(DType.FLOAT32)
        .headDims(1, 64, 1)
        .valueDimMayDiffer(64)
        .maskKinds(MaskKind.values())
        .dropout(true)
        .backward(true)
        .groupedQuery(true)
        .customScale(true)
        .logSumExp(true)
        .unitHeadDimStride(false)
        .memory(Platform.HOST)
        .determinism(Determinism.ALWAYS);
  }

  /** The request with changed options, keeping the dropout seed it resolved. */
  static AttentionRequest withOptions(AttentionRequest r, UnaryOperator<AttentionOptions.Builder> change) {
    AttentionOptions.Builder b = r.options().toBuilder();
    r.dropoutSeed().ifPresent(b::dropoutSeed);
    return AttentionRequest.create(r.query(), r.key(), r.value(), r.output(), r.lse().orElse(null),
        change.apply(b).build());
  }

  /** Causal masking one key too wide: query i also sees key i + 1 (top-left). */
  static final class OffByOneCausal extends ReferenceProvider {
    OffByOneCausal() {
      super("off-by-one-causal", fp32().build());
    }

    @Override
    AttentionRequest computed(AttentionRequest r) {
      if (r.causal() == CausalMode.NONE) {
        return r;
      }
      long lq = r.shape().queryLength();
      long lk = r.shape().keyLength();
      Tensor mask = Tensor.allocate(Arena.ofAuto(), DType.BOOL, lq, lk);
      for (long i = 0; i < lq; i++) {
        for (long j = 0; j < lk; j++) {
          mask.set(r.causal().allows(i, Math.max(0, j - 1), lq, lk) ? 1 : 0, i, j);
        }
      }
      return withOptions(r, b -> b.causal(CausalMode.NONE).attnMask(mask));
    }
  }

  /** Ignores a custom scale: always 1/sqrt(E). */
  static final class IgnoresCustomScale extends ReferenceProvider {
    IgnoresCustomScale() {
      super("ignores-custom-scale", fp32().build());
    }

    @Override
    AttentionRequest computed(AttentionRequest r) {
      return r.customScale() ? withOptions(r, b -> b.scale(1 / Math.sqrt(r.shape().headDim()))) : r;
    }
  }

  /** Never writes the last query row of an output. */
  static final class UnwrittenTail extends ReferenceProvider {
    UnwrittenTail() {
      super("unwritten-tail", fp32().build());
    }

    @Override
    void writeElement(Tensor t, long[] index, double value) {
      if (t.rank() != 4 || index[2] != t.size(2) - 1) {
        t.set(value, index);
      }
    }
  }

  /** Writes each row's last element once more, one element further (into a gap, or past the end). */
  static final class Overrun extends ReferenceProvider {
    Overrun() {
      super("overrun", fp32().build());
    }

    @Override
    void writeElement(Tensor t, long[] index, double value) {
      t.set(value, index);
      long next = (t.offsetOf(index) + 1) * t.dtype().byteSize();
      if (index[index.length - 1] == t.size(-1) - 1 && next + t.dtype().byteSize() <= t.hostSegment().byteSize()) {
        t.dtype().write(t.hostSegment(), next, value);
      }
    }
  }

  /** Claims bf16 but writes bf16 outputs as fp16 bit patterns. */
  static final class WrongBf16 extends ReferenceProvider {
    WrongBf16() {
      super("wrong-bf16", fp32().dtypes(DType.FLOAT32, DType.BFLOAT16).build());
    }

    @Override
    void writeElement(Tensor t, long[] index, double value) {
      if (t.dtype() == DType.BFLOAT16) {
        t.hostSegment().set(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.nativeOrder()),
            t.offsetOf(index) * 2, Float.floatToFloat16((float) value));
      } else {
        t.set(value, index);
      }
    }
  }

  /** Throws on requests it accepts whenever Lq != Lk. */
  static final class ThrowsOnAccepted extends ReferenceProvider {
    ThrowsOnAccepted() {
      super("throws-on-accepted", fp32().build());
    }

    @Override
    public void forward(AttentionRequest r) {
      if (r.shape().queryLength() != r.shape().keyLength()) {
        throw new IllegalStateException("Lq != Lk not implemented");
      }
      super.forward(r);
    }
  }

  /** Claims fp16 but refuses every fp16 request. */
  static final class RefusesClaim extends ReferenceProvider {
    RefusesClaim() {
      super("refuses-claim", fp32().dtypes(DType.FLOAT32, DType.FLOAT16).build());
    }

    @Override
    public List<String> notSupportedReasons(AttentionRequest r) {
      return r.dtype() == DType.FLOAT16 ? List.of("fp16 kernels are disabled") : super.notSupportedReasons(r);
    }
  }

  /** Claims no dropout, no backward, no grouped-query attention, yet accepts everything. */
  static final class AcceptsUnclaimed extends ReferenceProvider {
    AcceptsUnclaimed() {
      super("accepts-unclaimed", fp32().dropout(false).backward(false).groupedQuery(false).build());
    }

    @Override
    public List<String> notSupportedReasons(AttentionRequest r) {
      return List.of();
    }
  }

  /** Claims no dropout and refuses it by throwing from notSupportedReasons instead of giving a reason. */
  static final class ThrowsInsteadOfRefusing extends ReferenceProvider {
    ThrowsInsteadOfRefusing() {
      super("throws-instead-of-refusing", fp32().dropout(false).build());
    }

    @Override
    public List<String> notSupportedReasons(AttentionRequest r) {
      if (r.dropoutP() > 0) {
        throw new UnsupportedOperationException("dropout");
      }
      return super.notSupportedReasons(r);
    }
  }

  /** Claims bit-reproducible results, but every other call differs by one ulp. */
  static final class Nondeterministic extends ReferenceProvider {
    private final AtomicInteger calls = new AtomicInteger();

    Nondeterministic() {
      super("nondeterministic", fp32().build());
    }

    @Override
    public void forward(AttentionRequest r) {
      calls.incrementAndGet();
      super.forward(r);
    }

    @Override
    void writeElement(Tensor t, long[] index, double value) {
      t.set(calls.get() % 2 == 0 ? value : value + Math.ulp((float) value), index);
    }
  }

  /** Keeps its result in a shared field between computing and writing it: wrong under concurrency. */
  static final class NotThreadSafe extends ReferenceProvider {
    private ReferenceAttention.Forward shared;

    NotThreadSafe() {
      super("not-thread-safe", fp32().build());
    }

    @Override
    public void forward(AttentionRequest r) {
      shared = ReferenceAttention.forward(r, DType.FLOAT64);
      try {
        Thread.sleep(2);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      write(r.output(), shared.output());
      r.lse().ifPresent(l -> write(l, shared.lse()));
    }
  }

  /** Ignores the dropout offset (uses 0). */
  static final class IgnoresDropoutOffset extends ReferenceProvider {
    IgnoresDropoutOffset() {
      super("ignores-dropout-offset", fp32().build());
    }

    @Override
    AttentionRequest computed(AttentionRequest r) {
      return r.dropoutSeed().map(s -> withOptions(r, b -> b.dropoutSeed(new DropoutSeed(s.seed(), 0)))).orElse(r);
    }
  }

  /** Claims the BYTE dropout mask but draws the WORD one. */
  static final class WordMaskForBytes extends ReferenceProvider {
    WordMaskForBytes() {
      super("word-mask-for-bytes", fp32().dropoutResolutions(DropoutResolution.values()).build());
    }

    @Override
    AttentionRequest computed(AttentionRequest r) {
      return withOptions(r, b -> b.dropoutResolution(DropoutResolution.WORD));
    }
  }

  /** Writes the LSE in base 2. */
  static final class Log2Lse extends ReferenceProvider {
    Log2Lse() {
      super("log2-lse", fp32().build());
    }

    @Override
    void writeElement(Tensor t, long[] index, double value) {
      t.set(t.rank() == 3 ? value / Math.log(2) : value, index);
    }
  }

  /** Writes NaN (0/0) into rows in which every key is masked. */
  static final class NaNInMaskedRows extends ReferenceProvider {
    NaNInMaskedRows() {
      super("nan-in-masked-rows", fp32().build());
    }

    @Override
    public void forward(AttentionRequest r) {
      ReferenceAttention.Forward f = ReferenceAttention.forward(r, DType.FLOAT64);
      double[] out = f.output().clone();
      int ev = (int) r.shape().valueHeadDim();
      for (int row = 0; row < f.lse().length; row++) {
        if (f.lse()[row] == Double.NEGATIVE_INFINITY) {
          java.util.Arrays.fill(out, row * ev, (row + 1) * ev, Double.NaN);
        }
      }
      write(r.output(), out);
      r.lse().ifPresent(l -> write(l, f.lse()));
    }
  }

  /** Averages dK and dV over a grouped-query group instead of summing them. */
  static final class AveragedGqaGradients extends ReferenceProvider {
    AveragedGqaGradients() {
      super("averaged-gqa-gradients", fp32().build());
    }

    @Override
    public void backward(BackwardRequest r) {
      ReferenceAttention.Gradients g = ReferenceAttention.backward(r, DType.FLOAT64);
      double group = r.forward().shape().groupSize();
      write(r.gradQuery(), g.query());
      write(r.gradKey(), java.util.Arrays.stream(g.key()).map(x -> x / group).toArray());
      write(r.gradValue(), java.util.Arrays.stream(g.value()).map(x -> x / group).toArray());
    }
  }

  /** Maps query head h to key/value head h % Hkv instead of h / (Hq / Hkv). */
  static final class WrongGqaMapping extends ReferenceProvider {
    WrongGqaMapping() {
      super("wrong-gqa-mapping", fp32().build());
    }

    @Override
    AttentionRequest computed(AttentionRequest r) {
      if (r.shape().groupSize() == 1) {
        return r;
      }
      Tensor k = expand(r.key(), r.shape().queryHeads());
      Tensor v = expand(r.value(), r.shape().queryHeads());
      AttentionOptions.Builder b = r.options().toBuilder().enableGqa(false);
      r.dropoutSeed().ifPresent(b::dropoutSeed);
      return AttentionRequest.create(r.query(), k, v, r.output(), r.lse().orElse(null), b.build());
    }

    private static Tensor expand(Tensor t, long heads) {
      long[] s = t.shape();
      Tensor out = Tensor.allocate(Arena.ofAuto(), t.dtype(), s[0], heads, s[2], s[3]);
      for (long b = 0; b < s[0]; b++) {
        for (long h = 0; h < heads; h++) {
          for (long l = 0; l < s[2]; l++) {
            for (long e = 0; e < s[3]; e++) {
              out.set(t.get(b, h % s[1], l, e), b, h, l, e);
            }
          }
        }
      }
      return out;
    }
  }

  /** Wrong results for head dims above 64 (a tiling bug), while claiming up to 128. */
  static final class WrongAboveHeadDim64 extends ReferenceProvider {
    WrongAboveHeadDim64() {
      super("wrong-above-64", fp32().headDims(1, 128, 1).valueDimMayDiffer(128).build());
    }

    @Override
    void writeElement(Tensor t, long[] index, double value) {
      t.set(t.rank() == 4 && t.size(3) > 64 ? value * 1.5 : value, index);
    }
  }

  /** Writes into its query. */
  static final class WritesInput extends ReferenceProvider {
    WritesInput() {
      super("writes-input", fp32().build());
    }

    @Override
    public void forward(AttentionRequest r) {
      super.forward(r);
      r.query().set(0, 0, 0, 0, 0);
    }
  }

  /** Claims backward without the LSE output training needs. */
  static final class InconsistentDeclaration extends ReferenceProvider {
    InconsistentDeclaration() {
      super("inconsistent", fp32().logSumExp(false).build());
    }
  }

  /** Unavailable: every test must be skipped, none failed. */
  static final class Unavailable extends ReferenceProvider {
    Unavailable() {
      super("unavailable", fp32().build());
    }

    @Override
    public dev.sdpa4j.spi.Availability availability() {
      return dev.sdpa4j.spi.Availability.unavailable("no such device here");
    }
  }

  /** A kit over any provider (the nested subclasses below pick one). */
  abstract static class Kit extends AttentionProviderConformanceKit {
    private final AttentionProvider provider;

    Kit(AttentionProvider provider) {
      this.provider = provider;
    }

    @Override
    protected AttentionProvider provider() {
      return provider;
    }
  }

  static final class OffByOneCausalKit extends Kit {
    OffByOneCausalKit() {
      super(new OffByOneCausal());
    }
  }

  static final class IgnoresCustomScaleKit extends Kit {
    IgnoresCustomScaleKit() {
      super(new IgnoresCustomScale());
    }
  }

  static final class UnwrittenTailKit extends Kit {
    UnwrittenTailKit() {
      super(new UnwrittenTail());
    }
  }

  static final class OverrunKit extends Kit {
    OverrunKit() {
      super(new Overrun());
    }
  }

  static final class WrongBf16Kit extends Kit {
    WrongBf16Kit() {
      super(new WrongBf16());
    }
  }

  static final class ThrowsOnAcceptedKit extends Kit {
    ThrowsOnAcceptedKit() {
      super(new ThrowsOnAccepted());
    }
  }

  static final class RefusesClaimKit extends Kit {
    RefusesClaimKit() {
      super(new RefusesClaim());
    }
  }

  static final class AcceptsUnclaimedKit extends Kit {
    AcceptsUnclaimedKit() {
      super(new AcceptsUnclaimed());
    }
  }

  static final class ThrowsInsteadOfRefusingKit extends Kit {
    ThrowsInsteadOfRefusingKit() {
      super(new ThrowsInsteadOfRefusing());
    }
  }

  static final class NondeterministicKit extends Kit {
    NondeterministicKit() {
      super(new Nondeterministic());
    }
  }

  static final class NotThreadSafeKit extends Kit {
    NotThreadSafeKit() {
      super(new NotThreadSafe());
    }
  }

  static final class IgnoresDropoutOffsetKit extends Kit {
    IgnoresDropoutOffsetKit() {
      super(new IgnoresDropoutOffset());
    }
  }

  static final class WordMaskForBytesKit extends Kit {
    WordMaskForBytesKit() {
      super(new WordMaskForBytes());
    }
  }

  static final class Log2LseKit extends Kit {
    Log2LseKit() {
      super(new Log2Lse());
    }
  }

  static final class NaNInMaskedRowsKit extends Kit {
    NaNInMaskedRowsKit() {
      super(new NaNInMaskedRows());
    }
  }

  static final class AveragedGqaGradientsKit extends Kit {
    AveragedGqaGradientsKit() {
      super(new AveragedGqaGradients());
    }
  }

  static final class WrongGqaMappingKit extends Kit {
    WrongGqaMappingKit() {
      super(new WrongGqaMapping());
    }
  }

  static final class WrongAboveHeadDim64Kit extends Kit {
    WrongAboveHeadDim64Kit() {
      super(new WrongAboveHeadDim64());
    }
  }

  static final class WritesInputKit extends Kit {
    WritesInputKit() {
      super(new WritesInput());
    }
  }

  static final class InconsistentDeclarationKit extends Kit {
    InconsistentDeclarationKit() {
      super(new InconsistentDeclaration());
    }
  }

  static final class UnavailableKit extends Kit {
    UnavailableKit() {
      super(new Unavailable());
    }
  }

  /** Leaves the concurrency group out by overriding it without {@code @TestFactory}: the unsafe provider passes. */
  static final class WithoutConcurrencyKit extends Kit {
    WithoutConcurrencyKit() {
      super(new NotThreadSafe());
    }

    @Override
    public java.util.stream.Stream<org.junit.jupiter.api.DynamicNode> concurrency() {
      return java.util.stream.Stream.empty();
    }
  }

  /** The correct reference provider restricted like the broken ones: it must pass every group. */
  static final class CorrectKit extends Kit {
    CorrectKit() {
      super(new ReferenceProvider("correct", fp32().build()));
    }
  }
}
