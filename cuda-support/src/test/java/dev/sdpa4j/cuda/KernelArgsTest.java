package dev.sdpa4j.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

class KernelArgsTest {
  @Test
  void argumentsKeepOrderSizeAndNativeByteOrder() {
    KernelArgs a = KernelArgs.builder().pointer(0x1234_5678_9abcL).i32(-7).f32(1.5f).struct(new byte[] {1, 2, 3})
        .build();
    assertThat(a.values()).hasSize(4);
    assertThat(ByteBuffer.wrap(a.values().get(0)).order(ByteOrder.nativeOrder()).getLong()).isEqualTo(0x1234_5678_9abcL);
    assertThat(ByteBuffer.wrap(a.values().get(1)).order(ByteOrder.nativeOrder()).getInt()).isEqualTo(-7);
    assertThat(ByteBuffer.wrap(a.values().get(2)).order(ByteOrder.nativeOrder()).getFloat()).isEqualTo(1.5f);
    assertThat(a.values().get(3)).containsExactly(1, 2, 3);
  }
}
