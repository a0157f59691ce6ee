package dev.sdpa4j.benchmarks.gpu;

import dev.sdpa4j.benchmarks.Measurement;
import dev.sdpa4j.benchmarks.report.Report;
import dev.sdpa4j.benchmarks.report.ResultFiles;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * sdpa4j's GPU results beside PyTorch's (the JSON of {@code pytorch_peer.py}), from one or more parts of a sweep:
 * for every sdpa4j provider, the ratio of its throughput to each PyTorch backend's on the same shapes (saying plainly
 * where sdpa4j is behind), its speedup and memory saving over the eager baselines (sdpa4j's cuBLAS
 * {@value CublasEagerCandidate#NAME} and PyTorch's {@code torch-eager}: the post's figures, one line per head dim
 * against sequence length), and TFLOP/s per implementation. Writes {@code <name>-<date>.md} and, where the runtime
 * has {@code java.desktop}, the figures as PNG and SVG under {@code <out>/figures}.
 */
@Command(name = "gpu-compare", mixinStandardHelpOptions = true,
    description = "Ratio tables and figures: sdpa4j GPU results against PyTorch's SDPA backends and the eager "
        + "baselines.")
public final class GpuCompareCommand implements Callable<Integer> {
  /** PyTorch's eager attention in pytorch_peer.py. */
  static final String TORCH_EAGER = "torch-eager";

  @Option(names = "--sdpa4j", required = true, split = ",", description = "JSON files written by the gpu command")
  List<Path> sdpa4j;

  @Option(names = "--torch", required = true, split = ",", description = "JSON files written by pytorch_peer.py")
  List<Path> torch;

  @Option(names = "--out", defaultValue = "benchmarks/results", description = "output directory")
  Path out;

  @Option(names = "--name", defaultValue = "gpu-comparison", description = "file name stem (default ${DEFAULT-VALUE})")
  String name;

  @Override
  public Integer call() throws Exception {
    List<Measurement> mine = new ArrayList<>();
    List<Measurement> theirs = new ArrayList<>();
    List<Map<String, Object>> myRuns = new ArrayList<>();
    List<Map<String, Object>> theirRuns = new ArrayList<>();
    for (Path p : sdpa4j) {
      ResultFiles.Loaded l = ResultFiles.readJson(p);
      mine.addAll(l.measurements());
      myRuns.add(l.run());
    }
    for (Path p : torch) {
      ResultFiles.Loaded l = ResultFiles.readJson(p);
      theirs.addAll(l.measurements());
      theirRuns.add(l.run());
    }
    List<Measurement> all = new ArrayList<>(mine);
    all.addAll(theirs);
    Report r = new Report(all, "TFLOP/s", 1000);
    String day = String.valueOf(myRuns.getFirst().get("date")).substring(0, 10);
    String stem = name + "-" + day;
    Path figs = out.resolve("figures");
    List<String> fused = mine.stream().filter(m -> m.kind().equals("fused")).map(Measurement::implementation)
        .distinct().toList();
    List<String> eagers = new ArrayList<>(mine.stream().filter(m -> m.kind().equals("eager"))
        .map(Measurement::implementation).distinct().toList());
    List<String> peers = theirs.stream().map(Measurement::implementation).distinct()
        .filter(p -> !p.equals(TORCH_EAGER)).toList();
    if (theirs.stream().anyMatch(m -> m.implementation().equals(TORCH_EAGER))) {
      eagers.add(TORCH_EAGER);
    }
    StringBuilder s = new StringBuilder("# sdpa4j against PyTorch on the GPU, " + day + "\n\n");
    for (Map<String, Object> run : myRuns) {
      s.append("sdpa4j run: ").append(describe(run)).append("\n\n");
    }
    for (Map<String, Object> run : theirRuns) {
      s.append("PyTorch run: ").append(describe(run)).append("\n\n");
    }
    s.append("Ratios are sdpa4j throughput / PyTorch throughput on the same shape (FLOPs 4·B·H·Lq·Lk·E, halved for "
        + "causal; a training step (fwd+bwd) counts 3.5× the forward): below 1.00 sdpa4j is **behind**. The pass "
        + "column names the dtype and the dropout probability (p=). A provider that refuses a shape is listed with "
        + "its reason under \"Not run\".\n");
    s.append("\n## Summary\n\n| sdpa4j | peer | shapes | geometric mean | min | max | behind on |\n"
        + "|---|---|---|---|---|---|---|\n");
    for (String o : fused) {
      for (String p : peers) {
        r.ratioSummary(o, p).ifPresent(g -> s.append(String.format(Locale.ROOT,
            "| %s | %s | %d | %.2f× | %.2f× | %.2f× | %d of %d |%n", o, p, (int) g[3], g[0], g[1], g[2],
            r.behindCount(o, p), (int) g[3])));
      }
    }
    for (String o : fused) {
      for (String p : peers) {
        if (r.ratioSummary(o, p).isEmpty()) {
          continue;
        }
        s.append("\n## ").append(o).append(" vs ").append(p).append("\n\n").append(r.versusPeer(o, p));
      }
      for (String e : eagers) {
        s.append("\n## ").append(o).append(" against the eager baseline ").append(e)
            .append(" (the post's figures)\n");
        s.append(r.fusedVsEager(o, e, figs, stem, out.toAbsolutePath()));
      }
    }
    List<String> impls = new ArrayList<>(fused);
    impls.addAll(eagers.stream().filter(e -> !e.equals(TORCH_EAGER)).toList());
    impls.addAll(peers);
    s.append("\n## Throughput per implementation\n\n").append(r.gflopsFigures(figs, stem, out.toAbsolutePath(), impls));
    s.append("\n## Where memory runs out\n\n").append(r.memoryLimits());
    s.append("\n## Not run\n\n").append(r.notRun());
    Path md = out.resolve(stem + ".md");
    Files.createDirectories(out);
    Files.writeString(md, s);
    System.out.println(s);
    System.out.println("wrote " + md);
    return 0;
  }

  private static String describe(Map<String, Object> run) {
    StringBuilder s = new StringBuilder();
    for (String k : List.of("date", "commit", "dirty", "sets", "device", "deviceNames", "gpu", "torch", "cuda",
        "driver", "note")) {
      if (run.containsKey(k) && !String.valueOf(run.get(k)).isEmpty()) {
        s.append(k).append(' ').append(run.get(k)).append("; ");
      }
    }
    return s.toString();
  }
}
