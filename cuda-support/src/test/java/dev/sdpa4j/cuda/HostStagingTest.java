package dev.sdpa4j.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdpa4j.DType;
import dev.sdpa4j.Storage;
import dev.sdpa4j.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.api.Test;

class HostStagingTest {

  @Test
  void packAndUnpackFollowStrides() {
    long seed = System.nanoTime();
    System.out.println("HostStagingTest seed " + seed);
    Random rnd = new Random(seed);
    try (Arena arena = Arena.ofConfined()) {
      for (DType dt : new DType[] {DType.FLOAT16, DType.FLOAT32}) {
        // [B, L, H, E] memory seen as [B, H, L, E], and a transposed last dim (non-unit head stride)
        MemorySegment seg = arena.allocate(2L * 5 * 3 * 8 * dt.byteSize(), 16);
        Tensor blhe = Tensor.blhe(dt, new Storage.Host(seg), 2, 5, 3, 8);
        Tensor weird = Tensor.of(dt, new long[] {2, 3, 8, 5}, new long[] {120, 8, 1, 24}, new Storage.Host(seg));
        for (Tensor t : new Tensor[] {blhe, weird}) {
          long[] s = t.shape();
          for (long a = 0; a < s[0]; a++) {
            for (long b = 0; b < s[1]; b++) {
              for (long c = 0; c < s[2]; c++) {
                for (long d = 0; d < s[3]; d++) {
                  t.set(rnd.nextInt(100) - 50, a, b, c, d);
                }
              }
            }
          }
          MemorySegment packed = HostStaging.pack(t, arena);
          Tensor row = Tensor.host(packed, dt, s);
          for (long a = 0; a < s[0]; a++) {
            for (long b = 0; b < s[1]; b++) {
              for (long c = 0; c < s[2]; c++) {
                for (long d = 0; d < s[3]; d++) {
                  assertThat(row.get(a, b, c, d)).isEqualTo(t.get(a, b, c, d));
                }
              }
            }
          }
          MemorySegment other = arena.allocate(seg.byteSize(), 16);
          Tensor back = t.view(s, t.strides());
          Tensor target = Tensor.of(dt, s, t.strides(), new Storage.Host(other));
          HostStaging.unpack(packed, target);
          assertThat(other.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE))
              .isEqualTo(seg.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
          assertThat(back.shape()).isEqualTo(s);
        }
      }
    }
  }

  @Test
  void contiguousNativeTensorIsNotCopied() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor t = Tensor.allocate(arena, DType.FLOAT32, 2, 3, 4, 8);
      assertThat(HostStaging.pack(t, arena).address()).isEqualTo(t.hostSegment().address());
    }
  }
}
