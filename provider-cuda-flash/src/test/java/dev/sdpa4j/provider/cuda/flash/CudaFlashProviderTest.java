package dev.sdpa4j.provider.cuda.flash;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.DType;
import dev.sdpa4j.DropoutResolution;
import dev.sdpa4j.MaskKind;
import dev.sdpa4j.Platform;
import dev.sdpa4j.ProviderRegistry;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.cuda.CudaDriver;
import dev.sdpa4j.spi.Capabilities;
import dev.sdpa4j.spi.Determinism;
import java.lang.foreign.Arena;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Declarations and refusals; runs everywhere. */
class CudaFlashProviderTest {

  @Test
  void declaresItself() {
    CudaFlashProvider p = new CudaFlashProvider();
    assertThat(p.name()).isEqualTo("cuda-flash");
    assertThat(p.priority()).isEqualTo(300);
    assertThat(p.availability()).isEqualTo(CudaDriver.availability(CudaFlashProvider.MIN_COMPUTE_CAPABILITY));
    if (!p.availability().available()) {
      assertThat(p.devices()).isEmpty();
      assertThat(p.availability().reason()).isNotBlank();
    }
  }

  @Test
  void isDiscoveredByTheRegistry() {
    assertThat(ProviderRegistry.load(CudaFlashProviderTest.class.getClassLoader()).statuses())
        .anySatisfy(s -> assertThat(s.name()).isEqualTo("cuda-flash"));
  }

  @Test
  void capabilitiesRefuseWhatTheKernelsDoNotDo() {
    Capabilities c = CudaFlashProvider.capabilities();
    assertThat(c.maskKinds()).containsExactlyInAnyOrder(MaskKind.NONE, MaskKind.CAUSAL_TOP_LEFT,
        MaskKind.CAUSAL_BOTTOM_RIGHT);
    assertThat(c.memory()).containsExactlyInAnyOrder(Platform.CUDA, Platform.HOST);
    assertThat(c.backward()).isTrue();
    assertThat(c.dropout()).isTrue();
    assertThat(c.dropoutResolutions()).containsExactlyInAnyOrder(DropoutResolution.WORD, DropoutResolution.BYTE);
    assertThat(c.determinism()).isEqualTo(Determinism.ON_REQUEST);
    try (Arena arena = Arena.ofConfined()) {
      Tensor q = Tensor.allocate(arena, DType.FLOAT16, 1, 2, 4, 264);
      Tensor o = Tensor.allocate(arena, DType.FLOAT16, 1, 2, 4, 264);
      Tensor mask = Tensor.allocate(arena, DType.FLOAT16, 4, 4);
      Tensor lse = Tensor.allocate(arena, DType.FLOAT32, 1, 2, 4);
      AttentionRequest r = AttentionRequest.create(q, q, q, o, lse,
          AttentionOptions.builder().attnMask(mask).dropoutP(0.1).training(true).build());
      List<String> reasons = c.reasonsAgainst(r);
      assertThat(reasons).contains("head dim 264 > 256", "additive mask not supported")
          .noneMatch(x -> x.contains("dropout") || x.contains("backward") || x.contains("determinis"));
      Tensor f = Tensor.allocate(arena, DType.FLOAT32, 1, 2, 4, 64);
      Tensor fo = Tensor.allocate(arena, DType.FLOAT32, 1, 2, 4, 64);
      assertThat(c.reasonsAgainst(AttentionRequest.create(f, f, f, fo, null, AttentionOptions.builder().build())))
          .containsExactly("dtype fp32 not supported (supported: fp16, bf16)");
      Tensor h = Tensor.allocate(arena, DType.BFLOAT16, 1, 2, 4, 40);
      Tensor ho = Tensor.allocate(arena, DType.BFLOAT16, 1, 2, 4, 40);
      assertThat(c.reasonsAgainst(AttentionRequest.create(h, h, h, ho, null,
          AttentionOptions.builder().isCausal(true).scale(0.5).build()))).isEmpty();
    }
  }

  @Test
  void unavailableProviderRefusesEverythingWithTheReason() {
    CudaFlashProvider p = new CudaFlashProvider();
    org.junit.jupiter.api.Assumptions.assumeFalse(p.availability().available(), "a GPU is present");
    try (Arena arena = Arena.ofConfined()) {
      Tensor q = Tensor.allocate(arena, DType.FLOAT16, 1, 1, 4, 64);
      Tensor o = Tensor.allocate(arena, DType.FLOAT16, 1, 1, 4, 64);
      assertThat(p.notSupportedReasons(AttentionRequest.create(q, q, q, o, null, AttentionOptions.builder().build())))
          .containsExactly("provider unavailable: " + p.availability().reason());
    }
  }
}
