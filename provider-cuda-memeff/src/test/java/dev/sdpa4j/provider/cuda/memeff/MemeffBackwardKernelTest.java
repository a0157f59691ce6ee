package dev.sdpa4j.provider.cuda.memeff;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdpa4j.DType;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

class MemeffBackwardKernelTest {
  /** sm_86 and sm_89 let a block opt in to 99 KiB of shared memory; every kernel must fit there. */
  private static final int SM86_SHARED = 99 * 1024;

  @Test
  void everyKernelFitsTheSmallestSharedMemoryOfTheSupportedArchitectures() {
    for (DType dt : new DType[] {DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16}) {
      for (int e : new int[] {4, 64, 128, 256, 512}) {
        for (int ev : new int[] {4, 64, 128, 512}) {
          MemeffBackwardKernel k = MemeffBackwardKernel.select(dt, e, ev);
          assertThat(k.dkdvSharedBytes()).as(k.toString()).isLessThanOrEqualTo(SM86_SHARED);
          assertThat(k.dqSharedBytes()).as(k.toString()).isLessThanOrEqualTo(SM86_SHARED);
          assertThat(k.atomicDq()).isEqualTo(dt != DType.FLOAT32 && Math.max(e, ev) <= 128);
          if (k.atomicDq()) {
            assertThat(k.dkdvqSharedBytes()).as(k.toString()).isLessThanOrEqualTo(SM86_SHARED);
          }
          assertThat(k.dkdvThreads()).isBetween(32, 256);
          assertThat(k.dqThreads()).isBetween(32, 256);
          assertThat(k.dim()).isGreaterThanOrEqualTo(Math.max(e, ev));
          // the dK/dV products step over the query tile, the dQ product over the key tile, k at a time
          int step = dt == DType.FLOAT32 ? 8 : 16;
          assertThat(k.dkdvBlockM() % step).isZero();
          assertThat(k.dqBlockN() % step).isZero();
          assertThat(k.columns() % 16).isZero();
        }
      }
    }
  }

  @Test
  void headDimsRoundUpAndChunksCoverTheWiderOfEAndEv() {
    MemeffBackwardKernel k = MemeffBackwardKernel.select(DType.BFLOAT16, 80, 48);
    assertThat(k.dkdvName()).isEqualTo("memeff_bwd_dkdv_bf16_d128");
    assertThat(k.dqName()).isEqualTo("memeff_bwd_dq_bf16_d128");
    assertThat(k.preName()).isEqualTo("memeff_bwd_pre_bf16");
    assertThat(k.dkdvqName(80, 48)).isEqualTo("memeff_bwd_dkdvq_bf16_d128");
    assertThat(k.dkdvqName(128, 128)).isEqualTo("memeff_bwd_dkdvqf_bf16_d128");
    assertThat(k.dkdvqName(128, 120)).isEqualTo("memeff_bwd_dkdvq_bf16_d128");
    assertThat(k.convertName()).isEqualTo("memeff_bwd_dqconv_bf16");
    MemeffBackwardKernel wide = MemeffBackwardKernel.select(DType.FLOAT16, 64, 512);
    assertThat(wide.dim()).isEqualTo(512);
    assertThat(wide.dkdvChunks(64, 512)).isEqualTo(4);
    assertThat(wide.dqChunks(64)).isEqualTo(1);
    MemeffBackwardKernel f32 = MemeffBackwardKernel.select(DType.FLOAT32, 200, 8);
    assertThat(f32.dqName()).isEqualTo("memeff_bwd_dq_f32_d256");
    assertThat(f32.dkdvChunks(200, 8)).isEqualTo(4);
    assertThat(k.keyTiles(1)).isEqualTo(1);
    assertThat(k.keyTiles(k.dkdvBlockN() + 1)).isEqualTo(2);
    assertThat(k.queryTiles(k.dqBlockM())).isEqualTo(1);
    assertThatThrownBy(() -> MemeffBackwardKernel.select(DType.FLOAT64, 64, 64))
        .isInstanceOf(IllegalArgumentException.class);
  }

  /** The Java table must mirror the MEMEFF_BWD lines of the CUDA source, which the build packages. */
  @Test
  void tableMatchesTheCudaSource() throws IOException {
    String src;
    try (InputStream in = getClass().getResourceAsStream("/dev/sdpa4j/cuda/memeff_bwd/memeff_bwd.cu")) {
      assertThat(in).as("the packaged kernel source").isNotNull();
      src = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
    // MEMEFF_BWD(DT, T, 64, 64, 64, 64, 2, 64, 64, 2) for fp16/bf16, MEMEFF_BWD(f32, float, 64, 64, ...) for fp32
    Pattern line = Pattern.compile("MEMEFF_BWD\\((DT, T|f32, float), (\\d+), (\\d+), (\\d+), (\\d+), (\\d+), (\\d+), "
        + "(\\d+), (\\d+)\\)");
    Matcher m = line.matcher(src);
    Set<String> seen = new HashSet<>();
    while (m.find()) {
      DType[] types = m.group(1).startsWith("f32") ? new DType[] {DType.FLOAT32}
          : new DType[] {DType.FLOAT16, DType.BFLOAT16};
      int d = Integer.parseInt(m.group(2));
      for (DType dt : types) {
        MemeffBackwardKernel k = MemeffBackwardKernel.select(dt, d, d);
        assertThat(new int[] {k.dim(), k.columns(), k.dkdvBlockM(), k.dkdvBlockN(), k.dkdvStages(), k.dqBlockM(),
            k.dqBlockN(), k.dqStages()}).as(k.dkdvName()).containsExactly(d, Integer.parseInt(m.group(3)),
            Integer.parseInt(m.group(4)), Integer.parseInt(m.group(5)), Integer.parseInt(m.group(6)),
            Integer.parseInt(m.group(7)), Integer.parseInt(m.group(8)), Integer.parseInt(m.group(9)));
        seen.add(k.dkdvName());
      }
    }
    assertThat(seen).hasSize(12);
    // MEMEFF_BWD_ATOMIC(DT, T, 128, 128, 32, 64, 2) or MEMEFF_BWD_ATOMIC_MINB(DT, T, 64, 64, 32, 64, 2, 3): the atomic
    // kernels share the deterministic ones' dK/dV tiles
    Matcher a = Pattern.compile(
        "MEMEFF_BWD_ATOMIC(?:_MINB)?\\(DT, T, (\\d+), (\\d+), (\\d+), (\\d+), (\\d+)(?:, \\d+)?\\)").matcher(src);
    int atomic = 0;
    while (a.find()) {
      int d = Integer.parseInt(a.group(1));
      for (DType dt : new DType[] {DType.FLOAT16, DType.BFLOAT16}) {
        MemeffBackwardKernel k = MemeffBackwardKernel.select(dt, d, d);
        assertThat(k.atomicDq()).isTrue();
        assertThat(new int[] {k.dim(), k.columns(), k.dkdvBlockM(), k.dkdvBlockN(), k.dkdvStages()})
            .as(k.dkdvqName(d, d)).containsExactly(d, Integer.parseInt(a.group(2)), Integer.parseInt(a.group(3)),
                Integer.parseInt(a.group(4)), Integer.parseInt(a.group(5)));
      }
      atomic++;
    }
    assertThat(atomic).isEqualTo(2);
  }
}
