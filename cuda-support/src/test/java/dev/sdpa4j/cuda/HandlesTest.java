package dev.sdpa4j.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class HandlesTest {
  @Test
  void pointersCarryTheGivenAddress() {
    assertThat(Handles.at(0x7f00_1234_5000L).address()).isEqualTo(0x7f00_1234_5000L);
    assertThat(Handles.stream(0x2).address()).isEqualTo(0x2);
    assertThat(Handles.context(0xdead_b000L).address()).isEqualTo(0xdead_b000L);
  }
}
