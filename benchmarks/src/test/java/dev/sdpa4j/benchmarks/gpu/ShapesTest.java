package dev.sdpa4j.benchmarks.gpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdpa4j.benchmarks.BenchCase;
import dev.sdpa4j.benchmarks.Pass;
import dev.sdpa4j.benchmarks.Sweep;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The shared GPU shape lists parse, cover every part of the sweep, and count FLOPs and memory as documented. */
class ShapesTest {
  private static final Path FULL = moduleFile("gpu/shapes.json");
  private static final Path QUICK = moduleFile("gpu/shapes-quick.json");

  /**
   * A file of this module: relative to the working directory under Maven (the module) and from the repository
   * root when the tests run elsewhere (the GPU host's bundle).
   */
  private static Path moduleFile(String name) {
    Path here = Path.of(name);
    return Files.exists(here) ? here : Path.of("benchmarks").resolve(name);
  }

  @Test
  void fullListCoversEveryPart() throws Exception {
    List<BenchCase> all = Shapes.read(FULL);
    assertThat(all).hasSize(266);
    Map<String, Long> bySet = Map.of("inference", 72L, "training-fp16", 48L, "training-bf16", 48L, "decode", 8L,
        "figures", 30L, "figures-long", 18L, "figures-training", 30L, "figures-training-long", 12L);
    for (var e : bySet.entrySet()) {
      assertThat(Shapes.read(FULL, List.of(e.getKey()))).as(e.getKey()).hasSize(e.getValue().intValue());
    }
    // issue 8: bf16 and fp16 training steps, B·L = 16k, hidden 2048, with and without dropout 0.1
    List<BenchCase> training = Shapes.read(FULL, List.of("training-fp16", "training-bf16"));
    assertThat(training).allSatisfy(c -> {
      assertThat(c.pass()).isEqualTo(Pass.FORWARD_BACKWARD);
      assertThat(c.batch() * c.seqLen()).isEqualTo(16384);
      assertThat(c.heads() * c.headDim()).isEqualTo(2048);
    });
    assertThat(training.stream().map(BenchCase::dropout).collect(Collectors.toSet())).containsExactlyInAnyOrder(0.0,
        0.1);
    assertThat(training.stream().map(BenchCase::seqLen).collect(Collectors.toSet())).contains(512, 16384);
    assertThat(Shapes.read(FULL, List.of("decode"))).allSatisfy(c -> {
      assertThat(c.seqLen()).isEqualTo(1);
      assertThat(c.kvLen()).isBetween(4096, 65536);
      assertThat(c.selfAttention()).isFalse();
    });
  }

  @Test
  void quickListHasEverySet() throws Exception {
    List<BenchCase> quick = Shapes.read(QUICK);
    for (String set : List.of("inference", "training-fp16", "training-bf16", "decode", "figures")) {
      assertThat(Shapes.read(QUICK, List.of(set))).as(set).isNotEmpty();
    }
    assertThat(quick).anyMatch(c -> c.dropout() > 0).anyMatch(c -> !c.selfAttention());
  }

  @Test
  void optionalFieldsDefaultAndBadShapesAreNamed(@TempDir Path dir) throws Exception {
    Path f = dir.resolve("s.json");
    Files.writeString(f, "{\"shapes\":[{\"batch\":2,\"heads\":4,\"seqLen\":128,\"headDim\":64}]}");
    assertThat(Shapes.read(f)).containsExactly(new BenchCase(2, 4, 128, 128, 64, false, "fp16", Pass.FORWARD, 0));
    assertThat(Shapes.read(f, List.of("inference"))).hasSize(1);
    assertThat(Shapes.read(f, List.of("decode"))).isEmpty();
    Files.writeString(f, "{\"shapes\":[{\"batch\":2,\"heads\":4,\"headDim\":64}]}");
    assertThatThrownBy(() -> Shapes.read(f)).hasMessageContaining("seqLen");
  }

  @Test
  void flopsAndBytes() {
    BenchCase decode = new BenchCase(8, 16, 1, 16384, 128, false, "fp16", Pass.FORWARD, 0);
    assertThat(decode.flops()).isEqualTo(4.0 * 8 * 16 * 16384 * 128);
    assertThat(decode.tensorBytes()).isEqualTo(8L * 16 * 128 * 2);
    assertThat(decode.kvTensorBytes()).isEqualTo(8L * 16 * 16384 * 128 * 2);
    assertThat(decode.scoreBytes()).isEqualTo(8L * 16 * 16384 * 2);
    BenchCase train = new BenchCase(1, 32, 16384, 16384, 64, true, "bf16", Pass.FORWARD_BACKWARD, 0.1);
    assertThat(train.flops()).isEqualTo(4.0 * 32 * 16384 * 16384 * 64 / 2 * 3.5);
    // eager training with dropout holds S, P, Pd and dP
    assertThat(new CublasEagerCandidate(0).workingBytes(train)).isEqualTo(4 * 32L * 16384 * 16384 * 2);
    assertThat(new CublasEagerCandidate(0).workingBytes(train.withPass(Pass.FORWARD).withoutDropout()))
        .isEqualTo(2 * 32L * 16384 * 16384 * 2);
    // inputs (q, k, v, dO per set) + out, dq, dk, dv + fp32 LSE
    assertThat(Sweep.ioBytes(decode.withPass(Pass.FORWARD_BACKWARD), 2)).isEqualTo(
        2 * (2 * decode.tensorBytes() + 2 * decode.kvTensorBytes()) + 2 * decode.tensorBytes()
            + 2 * decode.kvTensorBytes() + 8L * 16 * 4);
    assertThat(decode.describe()).isEqualTo("B=8 H=16 Lq=1 Lk=16384 E=128 fp16 fwd");
    assertThat(train.describe()).endsWith("causal bf16 fwd+bwd dropout 0.10");
  }

  @Test
  void inputGeneratorIsDeterministicWithUnitVariance() {
    double sum = 0;
    double sq = 0;
    int n = 200_000;
    for (int i = 0; i < n; i++) {
      float v = GpuInputs.value(7, 1, i);
      assertThat(v).isBetween(-1.7320509f, 1.7320509f);
      sum += v;
      sq += v * v;
    }
    assertThat(sum / n).isCloseTo(0, org.assertj.core.data.Offset.offset(0.01));
    assertThat(sq / n).isCloseTo(1, org.assertj.core.data.Offset.offset(0.01));
    assertThat(GpuInputs.value(7, 1, 5)).isEqualTo(GpuInputs.value(7, 1, 5)).isNotEqualTo(GpuInputs.value(7, 2, 5));
    assertThat(GpuInputs.value(7, 1, 1L << 33)).isNotEqualTo(GpuInputs.value(7, 1, 0));
  }
}
