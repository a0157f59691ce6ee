package dev.sdpa4j.provider.opencl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdpa4j.ProviderException;
import org.jocl.CL;
import org.jocl.CLException;
import org.junit.jupiter.api.Test;

class ClStatusTest {
  @Test
  void everyFailureNamesItsStatusAndCall() {
    assertThatThrownBy(() -> ClStatus.check(CL.CL_OUT_OF_RESOURCES, "clEnqueueNDRangeKernel(attn_fwd)"))
        .isInstanceOf(ProviderException.class)
        .hasMessageContaining("CL_OUT_OF_RESOURCES")
        .hasMessageContaining("(-5)")
        .hasMessageContaining("clEnqueueNDRangeKernel(attn_fwd)")
        .hasMessageContaining("out of device memory");
    assertThatThrownBy(() -> ClStatus.check(CL.CL_INVALID_KERNEL_ARGS, "clEnqueueNDRangeKernel(attn_dq)"))
        .isInstanceOf(OpenClException.class)
        .hasMessageContaining("CL_INVALID_KERNEL_ARGS")
        .hasMessageNotContaining("out of device memory")
        .satisfies(e -> {
          OpenClException ce = (OpenClException) e;
          assertThat(ce.status()).isEqualTo(CL.CL_INVALID_KERNEL_ARGS);
          assertThat(ce.statusName()).isEqualTo("CL_INVALID_KERNEL_ARGS");
          assertThat(ce.call()).isEqualTo("clEnqueueNDRangeKernel(attn_dq)");
        });
    assertThatCode(() -> ClStatus.check(CL.CL_SUCCESS, "clFinish")).doesNotThrowAnyException();
  }

  @Test
  void outOfMemoryStatusesSaySo() {
    for (int status : new int[] {CL.CL_MEM_OBJECT_ALLOCATION_FAILURE, CL.CL_OUT_OF_HOST_MEMORY,
        CL.CL_OUT_OF_RESOURCES, CL.CL_INVALID_BUFFER_SIZE}) {
      assertThat(ClStatus.isOutOfMemory(status)).as(ClStatus.name(status)).isTrue();
    }
    assertThat(ClStatus.isOutOfMemory(CL.CL_INVALID_VALUE)).isFalse();
  }

  @Test
  void unknownStatusesAreNamedAsSuch() {
    assertThat(ClStatus.name(-9999)).contains("-9999");
    assertThat(ClStatus.name(CL.CL_BUILD_PROGRAM_FAILURE)).isEqualTo("CL_BUILD_PROGRAM_FAILURE");
  }

  @Test
  void joclExceptionsBecomeProviderExceptions() {
    assertThatThrownBy(() -> ClStatus.call("clFlush", () -> {
      throw new CLException("CL_INVALID_COMMAND_QUEUE", CL.CL_INVALID_COMMAND_QUEUE);
    })).isInstanceOf(OpenClException.class).hasMessageContaining("CL_INVALID_COMMAND_QUEUE")
        .hasMessageContaining("clFlush");
    assertThatThrownBy(() -> ClStatus.create("clCreateBuffer", err -> {
      err[0] = CL.CL_MEM_OBJECT_ALLOCATION_FAILURE;
      return null;
    })).isInstanceOf(OpenClException.class).hasMessageContaining("CL_MEM_OBJECT_ALLOCATION_FAILURE")
        .hasMessageContaining("out of device memory");
  }
}
