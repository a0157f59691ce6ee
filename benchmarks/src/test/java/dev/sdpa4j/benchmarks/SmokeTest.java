package dev.sdpa4j.benchmarks;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * A tiny CPU sweep end to end: JSON, CSV, markdown, PNG and SVG come out; the eager baseline's output is checked
 * against the provider's; eager runs out of the memory budget at the longest length while the provider runs there.
 */
class SmokeTest {

  @BeforeAll
  static void enableTestProvider() {
    System.setProperty(ReferenceBackedProvider.ENABLE, "true");
  }

  @Test
  void tinySweepWritesResultsAndFigures(@TempDir Path dir) throws Exception {
    // L=128, E=16, fwd+bwd: provider inputs+outputs 256 KiB fit 300k; eager adds 256 KiB of scores and does not
    int rc = new CommandLine(new BenchMain()).execute("cpu", "--head-dims", "8,16", "--seq-min", "32", "--seq-max",
        "128", "--heads", "2", "--passes", "fwd,fwd+bwd", "--providers", ReferenceBackedProvider.NAME,
        "--no-libtorch", "--warmup", "1", "--repeats", "2", "--memory-budget", "300k", "--threads", "2", "--out",
        dir.toString(), "--name", "smoke");
    assertThat(rc).isZero();

    List<Path> files;
    try (Stream<Path> s = Files.walk(dir)) {
      files = s.filter(Files::isRegularFile).toList();
    }
    List<String> names = files.stream().map(p -> p.getFileName().toString()).toList();
    assertThat(names).anyMatch(n -> n.startsWith("smoke-") && n.endsWith(".json"))
        .anyMatch(n -> n.startsWith("smoke-") && n.endsWith(".csv"))
        .anyMatch(n -> n.startsWith("smoke-") && n.endsWith(".md"))
        .anyMatch(n -> n.endsWith("-speedup.png")).anyMatch(n -> n.endsWith("-speedup.svg"))
        .anyMatch(n -> n.endsWith("-memory.png")).anyMatch(n -> n.contains("-gflops-"));
    for (Path p : files) {
      assertThat(Files.size(p)).as(p.toString()).isPositive();
    }

    Path json = files.stream().filter(p -> p.getFileName().toString().endsWith(".json")).findFirst().orElseThrow();
    JsonNode root = new ObjectMapper().readTree(json.toFile());
    assertThat(root.get("run").get("cores").asInt()).isPositive();
    assertThat(root.get("run").get("commit").asText()).isNotEmpty();
    List<String> eager128 = new ArrayList<>();
    for (JsonNode m : root.get("measurements")) {
      boolean longest = m.get("seqLen").asInt() == 128 && m.get("headDim").asInt() == 16
          && m.get("pass").asText().equals("fwd+bwd");
      if (longest && m.get("implementation").asText().equals("eager")) {
        eager128.add(m.get("status").asText());
      }
      if (longest && m.get("implementation").asText().equals(ReferenceBackedProvider.NAME)) {
        assertThat(m.get("status").asText()).isEqualTo("OK");
        assertThat(m.get("gflops").asDouble()).isPositive();
        assertThat(m.get("memoryBytes").asLong()).isPositive();
      }
      if (m.get("seqLen").asInt() == 32) {
        assertThat(m.get("status").asText()).as(m.toString()).isEqualTo("OK");
        if (m.get("implementation").asText().equals("eager")) {
          // the eager output is checked against the provider's, which ran first
          assertThat(m.get("note").asText()).startsWith("output vs " + ReferenceBackedProvider.NAME + ": max rel diff");
        }
      }
    }
    assertThat(eager128).containsExactly("OOM");
    String md = Files.readString(json.resolveSibling(json.getFileName().toString().replace(".json", ".md")));
    assertThat(md).contains("OOM").contains("speedup");
  }
}
