package dev.sdpa4j.provider.cuda.memeff;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdpa4j.DType;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

class MemeffKernelTest {
  /** sm_86 and sm_89 let a block opt in to 99 KiB of shared memory; every kernel must fit there. */
  private static final int SM86_SHARED = 99 * 1024;

  @Test
  void everyKernelFitsTheSmallestSharedMemoryOfTheSupportedArchitectures() {
    for (DType dt : new DType[] {DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16}) {
      for (int e : new int[] {4, 64, 128, 256, 512}) {
        for (int ev : new int[] {8, 64, 128, 512}) {
          MemeffKernel k = MemeffKernel.select(dt, e, ev);
          assertThat(k.tileBytes()).as(k.toString()).isLessThanOrEqualTo(SM86_SHARED);
          assertThat(k.threads()).isBetween(32, 256);
          assertThat(k.blockN() % (dt == DType.FLOAT32 ? 8 : 16)).isZero();
        }
      }
    }
  }

  @Test
  void headDimsRoundUpToTheNextInstantiation() {
    assertThat(MemeffKernel.select(DType.FLOAT16, 8, 8).name()).isEqualTo("memeff_fwd_f16_q64_v64");
    assertThat(MemeffKernel.select(DType.BFLOAT16, 80, 48).name()).isEqualTo("memeff_fwd_bf16_q128_v64");
    assertThat(MemeffKernel.select(DType.FLOAT32, 512, 200).name()).isEqualTo("memeff_fwd_f32_q512_v128");
    assertThat(MemeffKernel.select(DType.FLOAT16, 64, 64).name()).isEqualTo("memeff_fwd_f16_q64_v64f");
    assertThat(MemeffKernel.select(DType.BFLOAT16, 128, 128).name()).isEqualTo("memeff_fwd_bf16_q128_v128f");
    assertThat(MemeffKernel.select(DType.BFLOAT16, 128, 120).name()).isEqualTo("memeff_fwd_bf16_q128_v128");
    assertThat(MemeffKernel.select(DType.FLOAT32, 128, 128).name()).isEqualTo("memeff_fwd_f32_q128_v128");
    MemeffKernel k = MemeffKernel.select(DType.FLOAT16, 64, 512);
    assertThat(k.valueChunks(512)).isEqualTo(4);
    assertThat(k.valueChunks(136)).isEqualTo(2);
    assertThat(k.queryTiles(1)).isEqualTo(1);
    assertThat(k.queryTiles(65)).isEqualTo(2);
    assertThatThrownBy(() -> MemeffKernel.select(DType.FLOAT64, 64, 64)).isInstanceOf(IllegalArgumentException.class);
  }

  /** NVRTC gets the headers from the packaged folder: both kernel files include memeff_common.cuh, packaged beside. */
  @Test
  void packagedSourcesFindTheHeadersTheyInclude() {
    for (var source : java.util.List.of(MemeffDevice.KERNELS, MemeffDevice.BACKWARD_KERNELS)) {
      byte[] text = source.read(source.sourceFile()).orElseThrow();
      assertThat(source.headers(text).sequencedKeySet()).as(source.sourceFile()).containsExactly("memeff_common.cuh");
    }
  }

  /** The Java table must mirror the MEMEFF_KERNEL lines of the CUDA source, which the build packages. */
  @Test
  void tableMatchesTheCudaSource() throws IOException {
    String src;
    try (InputStream in = getClass().getResourceAsStream("/dev/sdpa4j/cuda/memeff/memeff_fwd.cu")) {
      assertThat(in).as("the packaged kernel source").isNotNull();
      src = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
    // MEMEFF_KERNEL(memeff_fwd_##DT##_q64_v64, T, 64, 64, 64, 64, 2) and the fp32 lines, some of them
    // MEMEFF_KERNEL_MINB(memeff_fwd_f32_q128_v128, float, 128, 128, 128, 16, 2, 2) (a trailing minimum of blocks per SM)
    Pattern line = Pattern.compile("MEMEFF_KERNEL(?:_MINB)?\\(memeff_fwd_(##DT##|f32)_q(\\d+)_v(\\d+), [^,]+, (\\d+), "
        + "(\\d+), (\\d+), (\\d+), (\\d+)(?:, \\d+)?\\)");
    Matcher m = line.matcher(src);
    int found = 0;
    while (m.find()) {
      DType[] types = m.group(1).equals("f32") ? new DType[] {DType.FLOAT32}
          : new DType[] {DType.FLOAT16, DType.BFLOAT16};
      int q = Integer.parseInt(m.group(2));
      int v = Integer.parseInt(m.group(3));
      for (DType dt : types) {
        MemeffKernel k = MemeffKernel.select(dt, q, v);
        assertThat(k.qDim()).isEqualTo(Integer.parseInt(m.group(4)));
        assertThat(k.vDim()).isEqualTo(Integer.parseInt(m.group(5)));
        assertThat(k.blockM()).as(k.name()).isEqualTo(Integer.parseInt(m.group(6)));
        assertThat(k.blockN()).as(k.name()).isEqualTo(Integer.parseInt(m.group(7)));
        assertThat(k.stages()).as(k.name()).isEqualTo(Integer.parseInt(m.group(8)));
      }
      found++;
    }
    assertThat(found).isEqualTo(16);
    // MEMEFF_KERNEL_FULL(memeff_fwd_##DT##_q128_v128f, T, 128, 128, 64, 64, 2): same tiles as the plain kernel
    Matcher f = Pattern.compile("MEMEFF_KERNEL_FULL\\(memeff_fwd_##DT##_q(\\d+)_v(\\d+)f, T, (\\d+), (\\d+), (\\d+), "
        + "(\\d+), (\\d+)\\)").matcher(src);
    int full = 0;
    while (f.find()) {
      int q = Integer.parseInt(f.group(1));
      for (DType dt : new DType[] {DType.FLOAT16, DType.BFLOAT16}) {
        MemeffKernel k = MemeffKernel.select(dt, q, Integer.parseInt(f.group(2)));
        assertThat(k.name()).endsWith("_q" + q + "_v" + f.group(2) + "f");
        assertThat(new int[] {k.qDim(), k.vDim(), k.blockM(), k.blockN(), k.stages()}).as(k.name()).containsExactly(
            Integer.parseInt(f.group(3)), Integer.parseInt(f.group(4)), Integer.parseInt(f.group(5)),
            Integer.parseInt(f.group(6)), Integer.parseInt(f.group(7)));
      }
      full++;
    }
    assertThat(full).isEqualTo(2);
  }
}
