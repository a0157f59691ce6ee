package dev.sdpa4j;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.Test;

/** Every malformed call is refused with the argument named, before any provider runs, output untouched. */
class ValidationTest {
  private static final double POISON = 12345;
  private final FakeProvider provider = new FakeProvider("any", 0, FakeProvider.everything());
  private final ProviderRegistry registry = ProviderRegistry.of(provider);
  private final Tensor out = Tensors.filled(DType.FLOAT32, POISON, 2, 4, 8, 16);

  private static Tensor t(long... shape) {
    return Tensors.filled(DType.FLOAT32, 0.5, shape);
  }

  private void rejected(ThrowingCallable call, String argument, String... messageParts) {
    assertThatThrownBy(call).isInstanceOf(AttentionArgumentException.class)
        .satisfies(e -> assertThat(((AttentionArgumentException) e).argument()).isEqualTo(argument))
        .hasMessageContainingAll(messageParts);
    assertThat(provider.forwardCalls).hasValue(0);
    assertThat(Tensors.allEqual(out, POISON)).as("output untouched").isTrue();
  }

  private void run(Tensor q, Tensor k, Tensor v, Tensor o, AttentionOptions options) {
    registry.forward(AttentionRequest.create(q, k, v, o, null, options));
  }

  @Test
  void wrongRank() {
    rejected(() -> run(t(4, 8, 16), t(2, 4, 8, 16), t(2, 4, 8, 16), out, AttentionOptions.DEFAULTS),
        "query", "expected rank 4 [B, Hq, Lq, E], got shape [4, 8, 16]");
  }

  @Test
  void mismatchedBatch() {
    rejected(() -> run(t(2, 4, 8, 16), t(3, 4, 8, 16), t(2, 4, 8, 16), out, AttentionOptions.DEFAULTS),
        "key", "expected shape [2, 4, 8, 16] [B, Hkv, Lk, E], got [3, 4, 8, 16]");
  }

  @Test
  void mismatchedHeadDim() {
    rejected(() -> run(t(2, 4, 8, 16), t(2, 4, 8, 32), t(2, 4, 8, 16), out, AttentionOptions.DEFAULTS),
        "key", "expected shape [2, 4, 8, 16]");
  }

  @Test
  void mismatchedHeadsWithoutGqa() {
    rejected(() -> run(t(2, 4, 8, 16), t(2, 2, 8, 16), t(2, 2, 8, 16), out, AttentionOptions.DEFAULTS),
        "key", "query has 4 heads but key/value have 2; set enableGqa");
  }

  @Test
  void headsNotDivisible() {
    rejected(() -> run(t(2, 4, 8, 16), t(2, 3, 8, 16), t(2, 3, 8, 16), out,
        AttentionOptions.builder().enableGqa(true).build()), "key", "Hq % Hkv == 0, got Hq = 4, Hkv = 3");
  }

  @Test
  void valueLengthMismatch() {
    rejected(() -> run(t(2, 4, 8, 16), t(2, 4, 8, 16), t(2, 4, 9, 16), out, AttentionOptions.DEFAULTS),
        "value", "[B, Hkv, Lk, Ev]");
  }

  @Test
  void wrongOutputShape() {
    Tensor badOut = Tensors.filled(DType.FLOAT32, POISON, 2, 4, 8, 8);
    assertThatThrownBy(() -> run(t(2, 4, 8, 16), t(2, 4, 8, 16), t(2, 4, 8, 16), badOut, AttentionOptions.DEFAULTS))
        .isInstanceOf(AttentionArgumentException.class).hasMessageStartingWith("output: expected shape [2, 4, 8, 16]");
    assertThat(Tensors.allEqual(badOut, POISON)).isTrue();
  }

  @Test
  void mixedDtypes() {
    Tensor k16 = Tensors.filled(DType.FLOAT16, 0.5, 2, 4, 8, 16);
    rejected(() -> run(t(2, 4, 8, 16), k16, t(2, 4, 8, 16), out, AttentionOptions.DEFAULTS),
        "key", "expected dtype fp32 (the query's), got fp16");
  }

  @Test
  void nonBroadcastableMask() {
    Tensor mask = Tensors.filled(DType.BOOL, 1, 2, 1, 7, 8);
    rejected(() -> run(t(2, 4, 8, 16), t(2, 4, 8, 16), t(2, 4, 8, 16), out,
            AttentionOptions.builder().attnMask(mask).build()),
        "options.attnMask", "shape [2, 1, 7, 8] is not broadcastable to [B, Hq, Lq, Lk] = [2, 4, 8, 8]: size 7 against Lq = 8");
  }

  @Test
  void maskOfWrongDtype() {
    Tensor mask = Tensors.filled(DType.FLOAT16, 0, 8, 8);
    rejected(() -> run(t(2, 4, 8, 16), t(2, 4, 8, 16), t(2, 4, 8, 16), out,
        AttentionOptions.builder().attnMask(mask).build()), "options.attnMask", "expected dtype bool, fp32 or the query's (fp32), got fp16");
  }

  @Test
  void maskWithCausal() {
    Tensor mask = Tensors.filled(DType.BOOL, 1, 8, 8);
    assertThatThrownBy(() -> AttentionOptions.builder().attnMask(mask).isCausal(true).build())
        .isInstanceOf(AttentionArgumentException.class)
        .hasMessageStartingWith("options.attnMask: an explicit mask and causal masking are mutually exclusive");
  }

  @Test
  void dropoutOutsideUnitInterval() {
    for (double p : new double[] {-0.1, 1.0, 1.5, Double.NaN}) {
      assertThatThrownBy(() -> AttentionOptions.builder().dropoutP(p).build())
          .isInstanceOf(AttentionArgumentException.class)
          .hasMessage("options.dropoutP: expected a probability in [0, 1), got " + p);
    }
  }

  @Test
  void byteResolutionRefusesAProbabilityThatRoundsToZero() {
    assertThatThrownBy(() -> AttentionOptions.builder().dropoutP(0.001).dropoutResolution(DropoutResolution.BYTE)
        .build())
        .isInstanceOf(AttentionArgumentException.class)
        .hasMessage("options.dropoutP: p = 0.001 rounds to 0 at BYTE resolution (multiples of 1/256): use p >= 1/512"
            + " or DropoutResolution.WORD");
    assertThat(AttentionOptions.builder().dropoutP(0.001).build().dropoutResolution()).isEqualTo(DropoutResolution.WORD);
    assertThat(AttentionOptions.builder().dropoutP(0.002).dropoutResolution(DropoutResolution.BYTE).build()
        .toBuilder().build().dropoutResolution()).isEqualTo(DropoutResolution.BYTE);
  }

  @Test
  void nanOrInfiniteScale() {
    for (double s : new double[] {Double.NaN, Double.POSITIVE_INFINITY}) {
      assertThatThrownBy(() -> AttentionOptions.builder().scale(s).build())
          .isInstanceOf(AttentionArgumentException.class).hasMessage("options.scale: expected a finite number, got " + s);
    }
  }

  @Test
  void storageTooSmallForShape() {
    Tensor q = Tensor.of(DType.FLOAT32, new long[] {2, 4, 8, 16}, Tensor.contiguousStrides(2, 4, 8, 16),
        new Storage.Host(Arena.ofAuto().allocate(100)));
    rejected(() -> run(q, t(2, 4, 8, 16), t(2, 4, 8, 16), out, AttentionOptions.DEFAULTS),
        "query", "reaches 4096 bytes but its storage holds 100");
  }

  @Test
  void overlappingOutput() {
    Tensor overlapping = out.view(new long[] {2, 4, 8, 16}, new long[] {0, 16, 16, 1});
    rejected(() -> run(t(2, 4, 8, 16), t(2, 4, 8, 16), t(2, 4, 8, 16), overlapping, AttentionOptions.DEFAULTS),
        "output", "make elements overlap");
  }

  @Test
  void outputAliasingAnInput() {
    Tensor q = t(2, 4, 8, 16);
    assertThatThrownBy(() -> run(q, t(2, 4, 8, 16), t(2, 4, 8, 16), q, AttentionOptions.DEFAULTS))
        .isInstanceOf(AttentionArgumentException.class).hasMessage("output: overlaps the memory of query; outputs must not alias inputs or each other");
  }

  @Test
  void lseRequiredForTraining() {
    rejected(() -> run(t(2, 4, 8, 16), t(2, 4, 8, 16), t(2, 4, 8, 16), out,
        AttentionOptions.builder().training(true).build()), "lse", "no lse tensor was given");
  }

  @Test
  void lseOfWrongShapeOrType() {
    Tensor lse = Tensors.filled(DType.FLOAT16, 0, 2, 4, 8);
    assertThatThrownBy(() -> AttentionRequest.create(t(2, 4, 8, 16), t(2, 4, 8, 16), t(2, 4, 8, 16), out, lse,
        AttentionOptions.DEFAULTS)).hasMessage("lse: expected fp32, got fp16");
    Tensor lse2 = Tensors.filled(DType.FLOAT32, 0, 2, 4, 7);
    assertThatThrownBy(() -> AttentionRequest.create(t(2, 4, 8, 16), t(2, 4, 8, 16), t(2, 4, 8, 16), out, lse2,
        AttentionOptions.DEFAULTS)).hasMessageStartingWith("lse: expected shape [2, 4, 8] [B, Hq, Lq], got [2, 4, 7]");
  }

  @Test
  void backwardNeedsTrainingForward() {
    AttentionResult result = registry.forward(AttentionRequest.create(t(1, 1, 2, 4), t(1, 1, 2, 4), t(1, 1, 2, 4),
        t(1, 1, 2, 4), null, AttentionOptions.DEFAULTS));
    assertThatThrownBy(() -> result.backward(t(1, 1, 2, 4)))
        .isInstanceOf(AttentionArgumentException.class).hasMessageContaining("training(true)");
  }

  @Test
  void validRequestResolvesDefaults() {
    Tensor mask = Tensors.filled(DType.BOOL, 1, 8);
    AttentionRequest r = AttentionRequest.create(t(2, 4, 8, 16), t(2, 2, 8, 16), t(2, 2, 8, 32),
        Tensors.filled(DType.FLOAT32, 0, 2, 4, 8, 32), null,
        AttentionOptions.builder().attnMask(mask).enableGqa(true).dropoutP(0.25).build());
    assertThat(r.scale()).isEqualTo(0.25);
    assertThat(r.customScale()).isFalse();
    assertThat(r.maskKind()).isEqualTo(MaskKind.BOOLEAN);
    assertThat(r.mask().orElseThrow().shape()).containsExactly(2, 4, 8, 8);
    assertThat(r.mask().orElseThrow().strides()).containsExactly(0, 0, 0, 1);
    assertThat(r.shape()).isEqualTo(new AttentionShape(2, 4, 2, 8, 8, 16, 32));
    assertThat(r.shape().kvHeadOf(3)).isEqualTo(1);
    assertThat(r.dropoutSeed()).isPresent();
    assertThat(r.dropoutSeed().orElseThrow().offset()).isZero();
  }
}
