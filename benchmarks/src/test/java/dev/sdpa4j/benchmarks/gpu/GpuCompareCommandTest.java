package dev.sdpa4j.benchmarks.gpu;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdpa4j.benchmarks.BenchMain;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * The GPU comparison on files shaped like the real ones (the rows {@code pytorch_peer.py} writes, with nulls where a
 * backend did not run): ratios are computed per shape, a shape where sdpa4j is slower is called behind, and the
 * eager baseline's OOM shows in the post's table.
 */
class GpuCompareCommandTest {

  private static String row(String impl, String kind, int l, String status, Double ms, Long mem) {
    double flops = 4.0 * 4 * 16 * l * l * 64;
    return "{\"implementation\":\"" + impl + "\",\"kind\":\"" + kind + "\",\"device\":\"cuda:0\",\"dtype\":\"fp16\","
        + "\"pass\":\"fwd\",\"batch\":4,\"heads\":16,\"seqLen\":" + l + ",\"headDim\":64,\"causal\":false,"
        + "\"status\":\"" + status + "\",\"medianMs\":" + ms + ",\"minMs\":" + ms + ",\"repeats\":" + (ms == null ? 0 : 20)
        + ",\"gflops\":" + (ms == null ? null : flops / (ms * 1e6)) + ",\"flops\":" + flops + ",\"memoryBytes\":" + mem
        + ",\"memoryMethod\":\"m\",\"note\":\"\"}";
  }

  @Test
  void ratioTablesFromBothFiles(@TempDir Path dir) throws Exception {
    Path mine = dir.resolve("gpu-sdpa4j.json");
    Files.writeString(mine, "{\"run\":{\"date\":\"2026-11-26T17:00:00Z\",\"device\":\"cuda:0\"},\"measurements\":["
        + row("cuda-flash", "fused", 1024, "OK", 0.10, 8_000_000L) + ","
        + row("cuda-flash", "fused", 2048, "OK", 0.50, 16_000_000L) + ","
        + row("eager-cublas", "eager", 1024, "OK", 0.40, 400_000_000L) + ","
        + row("eager-cublas", "eager", 2048, "OK", 1.50, 1_600_000_000L) + "]}");
    Path torch = dir.resolve("gpu-torch.json");
    Files.writeString(torch, "{\"run\":{\"date\":\"2026-11-26T17:05:00Z\",\"torch\":\"2.11.0\"},\"measurements\":["
        + row("torch-flash", "peer", 1024, "OK", 0.20, 8_000_000L) + ","
        + row("torch-flash", "peer", 2048, "OK", 0.40, 16_000_000L) + ","
        + row("torch-eager", "eager", 1024, "OK", 0.30, 600_000_000L) + ","
        + row("torch-eager", "eager", 2048, "OOM", null, null) + "]}");
    int rc = new CommandLine(new BenchMain()).execute("gpu-compare", "--sdpa4j", mine.toString(), "--torch",
        torch.toString(), "--out", dir.toString());
    assertThat(rc).isZero();
    String md = Files.readString(dir.resolve("gpu-comparison-2026-11-26.md"));
    assertThat(md).contains("## cuda-flash vs torch-flash")
        .contains("| fwd fp16 | 4 | 16 | 64 | 1024 | no | 0.10 | 0.20 |").contains("2.00× | at or above torch-flash")
        .contains("0.80× | **behind torch-flash**")
        .contains("| 64 | 3.00× (75.0×) | OOM |")
        // the cuBLAS eager baseline of the sdpa4j run: speedup (memory saving) per head dim and length
        .contains("## cuda-flash against the eager baseline eager-cublas")
        .contains("| 64 | 4.00× (50.0×) | 3.00× (100×) |")
        .contains("| cuda-flash | torch-flash | 2 | 1.26× | 0.80× | 2.00× | 1 of 2 |")
        .contains("| torch-eager | fwd fp16 | 4 | 16 | 64 | 2048 | no | OOM |");
    if (dev.sdpa4j.benchmarks.report.Report.FIGURES) {
      for (String f : List.of("cuda-flash-vs-eager-cublas-b4-h16-fp16-fwd-speedup",
          "cuda-flash-vs-eager-cublas-b4-h16-fp16-fwd-memory", "tflops-b4-h16-fp16-fwd")) {
        for (String ext : List.of(".png", ".svg")) {
          Path p = dir.resolve("figures/gpu-comparison-2026-11-26-" + f + ext);
          assertThat(p).exists();
          assertThat(Files.size(p)).isPositive();
        }
      }
    }
  }
}
