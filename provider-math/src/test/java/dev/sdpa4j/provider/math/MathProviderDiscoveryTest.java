package dev.sdpa4j.provider.math;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.DType;
import dev.sdpa4j.DropoutResolution;
import dev.sdpa4j.MaskKind;
import dev.sdpa4j.Sdpa;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.spi.AttentionProvider;
import dev.sdpa4j.spi.Capabilities;
import dev.sdpa4j.spi.Determinism;
import java.lang.foreign.Arena;
import java.util.ServiceLoader;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The provider is found by ServiceLoader, declares what it does, and serves the front door. */
class MathProviderDiscoveryTest {

  @Test
  void serviceLoaderFindsTheMathProvider() {
    assertThat(ServiceLoader.load(AttentionProvider.class).stream().map(ServiceLoader.Provider::type))
        .contains(MathProvider.class);
    MathProvider p = new MathProvider();
    assertThat(p.name()).isEqualTo("math");
    assertThat(p.priority()).isZero();
    assertThat(p.availability().available()).isTrue();
  }

  @Test
  void capabilitiesCoverEveryFeature() {
    Capabilities c = new MathProvider().devices().getFirst().capabilities();
    assertThat(c.dtypes()).containsExactlyInAnyOrder(DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16, DType.FLOAT64);
    assertThat(c.maskKinds()).containsExactlyInAnyOrder(MaskKind.values());
    assertThat(c.maxHeadDim()).isEqualTo(1024);
    assertThat(c.maxValueHeadDim()).isEqualTo(1024);
    assertThat(c.valueDimMayDiffer()).isTrue();
    assertThat(c.dropoutResolutions()).containsExactlyInAnyOrder(DropoutResolution.values());
    assertThat(c.backward() && c.groupedQuery() && c.customScale() && c.logSumExp()).isTrue();
    assertThat(c.unitHeadDimStride()).isFalse();
    assertThat(c.determinism()).isEqualTo(Determinism.ALWAYS);
  }

  @Test
  void refusesOnlyWhatItCannotDo() {
    try (Arena arena = Arena.ofConfined()) {
      SplittableRandom rnd = new SplittableRandom(5);
      Tensor q = Fixtures.tensor(arena, DType.FLOAT32, false, 1, 1, 2, 1030, rnd);
      Tensor v = Fixtures.tensor(arena, DType.FLOAT32, false, 1, 1, 2, 8, rnd);
      AttentionRequest r = AttentionRequest.create(q, q, v, Tensor.allocate(arena, DType.FLOAT32, 1, 1, 2, 8), null,
          AttentionOptions.DEFAULTS);
      assertThat(new MathProvider().notSupportedReasons(r)).containsExactly("head dim 1030 > 1024");
    }
  }

  @Test
  void theFrontDoorRunsOnMath() {
    try (Arena arena = Arena.ofShared(); var _ = Sdpa.useProviders("math")) {
      SplittableRandom rnd = new SplittableRandom(9);
      Tensor q = Fixtures.tensor(arena, DType.BFLOAT16, false, 2, 4, 33, 64, rnd);
      Tensor k = Fixtures.tensor(arena, DType.BFLOAT16, false, 2, 2, 40, 64, rnd);
      Tensor v = Fixtures.tensor(arena, DType.BFLOAT16, false, 2, 2, 40, 64, rnd);
      var result = Sdpa.scaledDotProductAttention(q, k, v, AttentionOptions.builder().enableGqa(true).build());
      assertThat(result.provider()).isEqualTo("math");
      Fixtures.assertClose("output", Fixtures.values(result.output()),
          ReferenceAttention.forward(result.request(), DType.FLOAT64).output(), 1.6e-2, 1.6e-2);
    }
  }
}
