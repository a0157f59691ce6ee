package dev.sdpa4j.provider.opencl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdpa4j.DType;
import dev.sdpa4j.ProviderException;
import dev.sdpa4j.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Optional;
import org.jocl.cl_command_queue;
import org.junit.jupiter.api.Test;

class BuffersTest {
  @Test
  void buffersLargerThanTheDeviceAllowsAreAClearError() {
    Fixtures.assumeOpenCl();
    ContextRuntime rt = ContextRuntime.create(ClDevice.discover().getFirst(), Optional.empty());
    cl_command_queue queue = rt.borrowQueue();
    try (Buffers buffers = new Buffers(rt, queue, true)) {
      long tooBig = rt.device().maxAllocBytes() + 1;
      assertThatThrownBy(() -> buffers.scratch(tooBig, "dsum"))
          .isInstanceOf(ProviderException.class)
          .hasMessageContaining("CL_INVALID_BUFFER_SIZE")
          .hasMessageContaining("out of device memory")
          .hasMessageContaining(tooBig + " bytes exceed the largest buffer");
    } finally {
      rt.releaseQueue(queue);
    }
  }

  /** A host output with gaps (and a heap one) comes back with its gaps untouched. */
  @Test
  void hostOutputsKeepTheirGaps() {
    Fixtures.assumeOpenCl();
    ContextRuntime rt = ContextRuntime.create(ClDevice.discover().getFirst(), Optional.empty());
    cl_command_queue queue = rt.borrowQueue();
    try (Arena arena = Arena.ofConfined()) {
      Tensor wide = Tensor.allocate(arena, DType.FLOAT32, 4, 6);
      Tensor heapWide = Tensor.host(MemorySegment.ofArray(new float[24]), DType.FLOAT32, 4, 6);
      for (Tensor w : new Tensor[] {wide, heapWide}) {
        for (int i = 0; i < 24; i++) {
          DType.FLOAT32.write(w.hostSegment(), 4L * i, i);
        }
        Tensor view = w.view(new long[] {4, 3}, new long[] {6, 2});
        try (Buffers buffers = new Buffers(rt, queue, true)) {
          Buffers.Bound b = buffers.output(view);
          assertThat(b.offset()).isZero();
          assertThat(b.strides4()).containsExactly(6, 2, 0, 0);
          buffers.finish();
        }
        for (int i = 0; i < 24; i++) {
          assertThat(DType.FLOAT32.read(w.hostSegment(), 4L * i)).isEqualTo(i);
        }
      }
    } finally {
      rt.releaseQueue(queue);
    }
  }
}
