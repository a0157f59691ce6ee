package dev.sdpa4j;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdpa4j.spi.AttentionProvider;
import dev.sdpa4j.spi.Availability;
import dev.sdpa4j.spi.Capabilities;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class ProviderRegistryTest {
  private static final Capabilities FP32_ONLY = Capabilities.builder().dtypes(DType.FLOAT32).headDims(1, 128, 1).build();

  @AfterEach
  void clearProperties() {
    System.clearProperty(ProviderRegistry.PROVIDERS_PROPERTY);
    System.clearProperty(ProviderRegistry.EXCLUDE_PROPERTY);
  }

  private static AttentionRequest request(DType dtype, AttentionOptions options) {
    return AttentionRequest.create(Tensors.filled(dtype, 1, 1, 2, 4, 8), Tensors.filled(dtype, 1, 1, 2, 4, 8),
        Tensors.filled(dtype, 1, 1, 2, 4, 8), Tensors.filled(dtype, 0, 1, 2, 4, 8), null, options);
  }

  private static AttentionRequest fp32() {
    return request(DType.FLOAT32, AttentionOptions.DEFAULTS);
  }

  @Test
  void highestPriorityThatAcceptsWins() {
    var low = new FakeProvider("low", 1, FakeProvider.everything());
    var high = new FakeProvider("high", 5, FakeProvider.everything());
    var registry = ProviderRegistry.of(low, high);
    AttentionResult result = registry.forward(fp32());
    assertThat(result.provider()).isEqualTo("high");
    assertThat(Tensors.allEqual(result.output(), 5)).isTrue();
    assertThat(low.forwardCalls).hasValue(0);
  }

  @Test
  void tiesKeepDiscoveryOrder() {
    var first = new FakeProvider("first", 3, FakeProvider.everything());
    var second = new FakeProvider("second", 3, FakeProvider.everything());
    assertThat(ProviderRegistry.of(first, second).choose(fp32()).name()).isEqualTo("first");
    assertThat(ProviderRegistry.of(second, first).choose(fp32()).name()).isEqualTo("second");
  }

  @Test
  void providerThatRefusesIsSkippedWithItsReasons() {
    var picky = new FakeProvider("picky", 9, FP32_ONLY);
    var general = new FakeProvider("general", 1, FakeProvider.everything());
    Selection s = ProviderRegistry.of(picky, general).select(request(DType.FLOAT16, AttentionOptions.DEFAULTS));
    assertThat(s.chosen()).isSameAs(general);
    assertThat(s.verdicts().get(0).provider()).isEqualTo("picky");
    assertThat(s.verdicts().get(0).reasons()).containsExactly("dtype fp16 not supported (supported: fp32)",
        "use provider general, which accepts this request");
  }

  @Test
  void refusalsNameTheProvidersThatWouldAcceptButNotForbiddenOnes() {
    var picky = new FakeProvider("picky", 9, FP32_ONLY);
    var one = new FakeProvider("one", 2, FakeProvider.everything());
    var two = new FakeProvider("two", 1, FakeProvider.everything());
    var three = new FakeProvider("three", 0, FakeProvider.everything());
    var registry = ProviderRegistry.of(picky, one, two, three);
    try (var scope = Sdpa.forbidProviders("three")) {
      Selection s = registry.select(request(DType.FLOAT16, AttentionOptions.DEFAULTS));
      assertThat(s.chosen()).isSameAs(one);
      assertThat(s.verdicts().get(0).reasons()).last().isEqualTo("use provider one or two, which accept this request");
      assertThat(s.verdicts().get(2).reasons()).containsExactly("a higher-ranked provider was chosen");
    }
  }

  @Test
  void scopedAllowListBeatsPriorityAndRestoresOnClose() {
    var a = new FakeProvider("a", 1, FakeProvider.everything());
    var b = new FakeProvider("b", 9, FakeProvider.everything());
    var registry = ProviderRegistry.of(a, b);
    try (var scope = Sdpa.useProviders("a", "b")) {
      assertThat(registry.choose(fp32()).name()).isEqualTo("a");
      try (var inner = Sdpa.forbidProviders("a")) {
        assertThat(registry.choose(fp32()).name()).isEqualTo("b");
      }
      assertThat(registry.choose(fp32()).name()).isEqualTo("a");
    }
    assertThat(registry.choose(fp32()).name()).isEqualTo("b");
  }

  @Test
  void scopeIsPerThread() throws Exception {
    var a = new FakeProvider("a", 1, FakeProvider.everything());
    var b = new FakeProvider("b", 9, FakeProvider.everything());
    var registry = ProviderRegistry.of(a, b);
    try (var scope = Sdpa.useProviders("a")) {
      String[] other = new String[1];
      Thread t = Thread.ofPlatform().start(() -> other[0] = registry.choose(fp32()).name());
      t.join();
      assertThat(other[0]).isEqualTo("b");
      assertThat(registry.choose(fp32()).name()).isEqualTo("a");
    }
  }

  @Test
  void systemPropertyAllowListAndExclusion() {
    var a = new FakeProvider("a", 1, FakeProvider.everything());
    var b = new FakeProvider("b", 9, FakeProvider.everything());
    var registry = ProviderRegistry.of(a, b);
    System.setProperty(ProviderRegistry.PROVIDERS_PROPERTY, "a,b");
    assertThat(registry.choose(fp32()).name()).isEqualTo("a");
    System.clearProperty(ProviderRegistry.PROVIDERS_PROPERTY);
    System.setProperty(ProviderRegistry.EXCLUDE_PROPERTY, "b");
    assertThat(registry.choose(fp32()).name()).isEqualTo("a");
  }

  @Test
  void scopeBeatsSystemProperty() {
    var a = new FakeProvider("a", 1, FakeProvider.everything());
    var b = new FakeProvider("b", 9, FakeProvider.everything());
    var registry = ProviderRegistry.of(a, b);
    System.setProperty(ProviderRegistry.PROVIDERS_PROPERTY, "a");
    try (var scope = Sdpa.useProviders("b")) {
      assertThat(registry.choose(fp32()).name()).isEqualTo("b");
    }
  }

  @Test
  void forcedProviderThatRefusesFailsWithReasonsAndNamesUnknownProviders() {
    var picky = new FakeProvider("picky", 1, FP32_ONLY);
    var general = new FakeProvider("general", 9, FakeProvider.everything());
    var registry = ProviderRegistry.of(picky, general);
    try (var scope = Sdpa.useProviders("picky", "nonesuch")) {
      assertThatThrownBy(() -> registry.forward(request(DType.BFLOAT16, AttentionOptions.DEFAULTS)))
          .isInstanceOf(NoSuitableProviderException.class)
          .hasMessageContaining("query [1, 2, 4, 8], key [1, 2, 4, 8], value [1, 2, 4, 8] bf16")
          .hasMessageContaining("picky: dtype bf16 not supported (supported: fp32); use provider general, which accepts this request")
          .hasMessageContaining("nonesuch: named in the provider scope but not found (found: picky, general)")
          .hasMessageContaining("general: not in the allow-list of the provider scope [picky, nonesuch]");
    }
    assertThat(general.forwardCalls).hasValue(0);
  }

  @Test
  void unsatisfiableRequestListsEveryProvidersReasons() {
    var small = new FakeProvider("small", 2, FP32_ONLY);
    var noMasks = new FakeProvider("no-masks", 1, Capabilities.builder().dtypes(DType.FLOAT16).headDims(16, 256, 8).build());
    var down = new FakeProvider("down", 7, FakeProvider.everything(), Availability.unavailable("no device: test"), 0);
    var options = AttentionOptions.builder().isCausal(true).dropoutP(0.1).scale(0.5).build();
    var request = request(DType.FLOAT16, options);
    assertThatThrownBy(() -> ProviderRegistry.of(small, noMasks, down).forward(request))
        .isInstanceOf(NoSuitableProviderException.class)
        .hasMessageContaining("causal mask (top-left), dropout p=0.1, scale=0.5")
        .hasMessageContaining("down: unavailable: no device: test")
        .hasMessageContaining("small: dtype fp16 not supported (supported: fp32); causal mask (top-left) not supported; "
            + "dropout not supported (p = 0.1); custom scale not supported")
        .hasMessageContaining("no-masks: head dim 8 < 16; causal mask (top-left) not supported")
        .satisfies(e -> assertThat(((NoSuitableProviderException) e).verdicts()).hasSize(3));
  }

  @Test
  void aDropoutResolutionNotReproducedIsRefusedWithTheSupportedOnes() {
    var wordOnly = new FakeProvider("word-only", 1, FakeProvider.everything());
    var bytes = new FakeProvider("bytes", 0, Capabilities.builder().dtypes(DType.FLOAT32).dropoutResolutions(
        DropoutResolution.WORD, DropoutResolution.BYTE).build());
    var options = AttentionOptions.builder().dropoutP(0.1).dropoutResolution(DropoutResolution.BYTE).build();
    Selection s = ProviderRegistry.of(wordOnly, bytes).select(request(DType.FLOAT32, options));
    assertThat(s.provider().map(AttentionProvider::name)).contains("bytes");
    assertThat(s.verdicts()).contains(new Verdict("word-only", List.of(
        "dropout at BYTE resolution not supported (supported: WORD)", "use provider bytes, which accepts this request")));
    assertThat(request(DType.FLOAT32, options).dropoutMask()).isEqualTo(Dropout.Mask.of(0.1, DropoutResolution.BYTE));
  }

  @Test
  void noProvidersAtAllSaysWhatToAdd() {
    assertThatThrownBy(() -> ProviderRegistry.of().forward(fp32()))
        .hasMessageContaining("add a provider jar such as sdpa4j-provider-math");
  }

  @Test
  void trainingRequiresBackwardCapability() {
    var inferenceOnly = new FakeProvider("inference-only", 5, FP32_ONLY);
    var trainer = new FakeProvider("trainer", 1, FakeProvider.everything());
    var options = AttentionOptions.builder().training(true).build();
    var request = AttentionRequest.create(Tensors.filled(DType.FLOAT32, 1, 1, 1, 4, 8),
        Tensors.filled(DType.FLOAT32, 1, 1, 1, 4, 8), Tensors.filled(DType.FLOAT32, 1, 1, 1, 4, 8),
        Tensors.filled(DType.FLOAT32, 0, 1, 1, 4, 8), Tensors.filled(DType.FLOAT32, 0, 1, 1, 4), options);
    Selection s = ProviderRegistry.of(inferenceOnly, trainer).select(request);
    assertThat(s.chosen()).isSameAs(trainer);
    assertThat(s.verdicts().get(0).reasons()).containsExactly("backward (training) not supported",
        "log-sum-exp output not supported", "use provider trainer, which accepts this request");
  }

  @Test
  void providerWhoseChecksThrowIsRejectedNotFatal() {
    var broken = new FakeProvider("broken", 9, FakeProvider.everything()) {
      @Override
      public List<String> notSupportedReasons(AttentionRequest request) {
        throw new IllegalStateException("boom");
      }
    };
    var fine = new FakeProvider("fine", 1, FakeProvider.everything());
    Selection s = ProviderRegistry.of(broken, fine).select(fp32());
    assertThat(s.chosen()).isSameAs(fine);
    assertThat(s.verdicts().get(0).reasons().get(0)).contains("notSupportedReasons failed", "boom");
  }
}
