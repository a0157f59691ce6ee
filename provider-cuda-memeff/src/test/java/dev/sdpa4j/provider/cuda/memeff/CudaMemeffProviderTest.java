package dev.sdpa4j.provider.cuda.memeff;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.DType;
import dev.sdpa4j.MaskKind;
import dev.sdpa4j.Platform;
import dev.sdpa4j.ProviderRegistry;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.spi.Capabilities;
import dev.sdpa4j.spi.Determinism;
import java.lang.foreign.Arena;
import org.junit.jupiter.api.Test;

/** Declarations and refusals; runs without a GPU. */
class CudaMemeffProviderTest {
  private final CudaMemeffProvider provider = new CudaMemeffProvider();

  @Test
  void declaresItselfAndWhatItSupports() {
    assertThat(provider.name()).isEqualTo("cuda-memeff");
    assertThat(provider.priority()).isEqualTo(200);
    Capabilities c = CudaMemeffProvider.capabilities();
    assertThat(c.dtypes()).containsExactlyInAnyOrder(DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16);
    assertThat(c.maskKinds()).contains(MaskKind.BOOLEAN, MaskKind.ADDITIVE, MaskKind.CAUSAL_TOP_LEFT,
        MaskKind.CAUSAL_BOTTOM_RIGHT, MaskKind.NONE);
    assertThat(c.maxHeadDim()).isEqualTo(512);
    assertThat(c.maxValueHeadDim()).isEqualTo(512);
    assertThat(c.valueDimMayDiffer()).isTrue();
    assertThat(c.dropout()).isTrue();
    assertThat(c.backward()).isTrue();
    assertThat(c.logSumExp()).isTrue();
    assertThat(c.determinism()).isEqualTo(Determinism.ON_REQUEST);
    assertThat(c.unitHeadDimStride()).isFalse();
    assertThat(c.memory()).containsExactlyInAnyOrder(Platform.CUDA, Platform.HOST);
    assertThat(c.minComputeCapability()).isEqualTo(CudaMemeffProvider.MIN_COMPUTE_CAPABILITY);
  }

  @Test
  void unavailableWithoutADriverSaysWhyAndIsListedByTheRegistry() {
    var a = provider.availability();
    if (!a.available()) {
      assertThat(a.reason()).isNotBlank();
      assertThat(provider.devices()).isEmpty();
    }
    assertThat(ProviderRegistry.discovered().statuses()).anySatisfy(s -> assertThat(s.name()).isEqualTo("cuda-memeff"));
  }

  @Test
  void headDimsInMultiplesOfFourAreAcceptedForEveryDtype() {
    try (Arena arena = Arena.ofConfined()) {
      for (DType dt : new DType[] {DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16}) {
        Tensor q = Tensor.allocate(arena, dt, 1, 2, 5, 12);
        Tensor k = Tensor.allocate(arena, dt, 1, 2, 7, 12);
        Tensor v = Tensor.allocate(arena, dt, 1, 2, 7, 20);
        Tensor o = Tensor.allocate(arena, dt, 1, 2, 5, 20);
        var r = AttentionRequest.create(q, k, v, o, null, AttentionOptions.DEFAULTS);
        assertThat(CudaMemeffProvider.capabilities().reasonsAgainst(r)).isEmpty();
        assertThat(CudaMemeffProvider.shapeReasons(r)).isEmpty();
      }
      Tensor q = Tensor.allocate(arena, DType.FLOAT16, 1, 2, 5, 10);
      Tensor o = Tensor.allocate(arena, DType.FLOAT16, 1, 2, 5, 10);
      var odd = AttentionRequest.create(q, q, q, o, null, AttentionOptions.DEFAULTS);
      assertThat(CudaMemeffProvider.capabilities().reasonsAgainst(odd)).contains("head dim 10 is not a multiple of 4");
    }
  }
}
