package dev.sdpa4j;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import org.junit.jupiter.api.Test;

class TensorTest {
  @Test
  void blheViewAddressesTheInterleavedLayout() {
    long b = 2, l = 3, h = 4, e = 5;
    Tensor raw = Tensor.allocate(Arena.ofAuto(), DType.FLOAT32, b, l, h, e);
    for (long i = 0; i < raw.elementCount(); i++) {
      DType.FLOAT32.write(raw.hostSegment(), i * 4, i);
    }
    Tensor view = Tensor.blhe(DType.FLOAT32, raw.storage(), b, l, h, e);
    assertThat(view.shape()).containsExactly(b, h, l, e);
    assertThat(view.get(1, 2, 0, 3)).isEqualTo(raw.get(1, 0, 2, 3));
    assertThat(view.isContiguous()).isFalse();
    assertThat(view.isNonOverlapping()).isTrue();
    assertThat(view.elementSpan()).isEqualTo(raw.elementCount());
    assertThat(view.permute(0, 2, 1, 3).isContiguous()).isTrue();
  }

  @Test
  void overlapDetection() {
    Tensor t = Tensor.allocate(Arena.ofAuto(), DType.FLOAT32, 4, 4);
    assertThat(t.view(new long[] {4, 4}, new long[] {4, 1}).isNonOverlapping()).isTrue();
    assertThat(t.view(new long[] {4, 4}, new long[] {1, 1}).isNonOverlapping()).isFalse();
    assertThat(t.view(new long[] {4, 4}, new long[] {0, 1}).isNonOverlapping()).isFalse();
    assertThat(t.view(new long[] {1, 4}, new long[] {0, 1}).isNonOverlapping()).isTrue();
  }

  @Test
  void rejectsBadShapes() {
    Storage s = new Storage.Host(Arena.ofAuto().allocate(64));
    assertThatThrownBy(() -> Tensor.of(DType.FLOAT32, new long[] {2, 0}, new long[] {1, 1}, s))
        .hasMessageContaining("every dimension must be >= 1");
    assertThatThrownBy(() -> Tensor.of(DType.FLOAT32, new long[] {2, 2}, new long[] {-1, 1}, s))
        .hasMessageContaining("strides must be >= 0");
    assertThatThrownBy(() -> Tensor.of(DType.FLOAT32, new long[] {1, 1, 1, 1, 1}, new long[] {1, 1, 1, 1, 1}, s))
        .hasMessageContaining("rank must be 1..4");
  }

  @Test
  void halfPrecisionConversionsRoundToNearestEven() {
    assertThat(DType.BFLOAT16.round(1.0 + 1.0 / 256)).isEqualTo(1.0);
    assertThat(DType.BFLOAT16.round(1.0 + 3.0 / 256)).isEqualTo(1.0 + 4.0 / 256);
    assertThat(DType.FLOAT16.round(65504)).isEqualTo(65504);
    assertThat(DType.FLOAT16.round(1e6)).isInfinite();
    assertThat(DType.BFLOAT16.round(Double.NaN)).isNaN();
    Tensor t = Tensor.allocate(Arena.ofAuto(), DType.BFLOAT16, 2);
    t.set(-3.140625, 1);
    assertThat(t.get(1)).isEqualTo(-3.140625);
  }

  @Test
  void deviceBufferIsNotReadableOnTheHost() {
    Tensor t = Tensor.contiguous(DType.FLOAT16, new Storage.DeviceBuffer(Device.cuda(0), 0x1000, 0, 64), 32);
    assertThat(t.device()).hasToString("cuda:0");
    assertThatThrownBy(t::hostSegment).hasMessageContaining("cuda:0 memory");
  }
}
