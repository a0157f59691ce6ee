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
 * sdpa4j's GPU results beside PyTorch's (the JSON of {@code pytorch_peer.py}): for every sdpa4j provider, the ratio
 * of its throughput to each PyTorch backend's on the same shapes, and its speedup and memory saving over PyTorch's
 * eager attention (the post's figures). Writes {@code <name>-<date>.md} and figures, and prints the tables.
 */
@Command(name = "gpu-compare", mixinStandardHelpOptions = true,
    description = "Ratio tables and figures: sdpa4j GPU results against PyTorch's SDPA backends and eager attention.")
public final class GpuCompareCommand implements Callable<Integer> {
  @Option(names = "--sdpa4j", required = true, description = "JSON written by the gpu command")
  Path sdpa4j;

  @Option(names = "--torch", required = true, description = "JSON written by pytorch_peer.py")
  Path torch;

  @Option(names = "--out", defaultValue = "benchmarks/results", description = "output directory")
  Path out;

  @Option(names = "--name", defaultValue = "gpu-comparison", description = "file name stem (default ${DEFAULT-VALUE})")
  String name;

  @Override
  public Integer call() throws Exception {
    ResultFiles.Loaded mine = ResultFiles.readJson(sdpa4j);
    ResultFiles.Loaded theirs = ResultFiles.readJson(torch);
    List<Measurement> all = new ArrayList<>(mine.measurements());
    all.addAll(theirs.measurements());
    Report r = new Report(all);
    String day = String.valueOf(mine.run().get("date")).substring(0, 10);
    String stem = name + "-" + day;
    Path figs = out.resolve("figures");
    List<String> ours = mine.measurements().stream().map(Measurement::implementation).distinct().toList();
    List<String> peers = theirs.measurements().stream().map(Measurement::implementation).distinct().toList();
    StringBuilder s = new StringBuilder("# sdpa4j against PyTorch on the GPU, " + day + "\n\n");
    s.append("sdpa4j run: ").append(describe(mine.run())).append("\n\nPyTorch run: ").append(describe(theirs.run()))
        .append("\n\nRatios are sdpa4j throughput / PyTorch throughput on the same shape (FLOPs 4·B·H·L²·E, halved "
            + "for causal; training 3.5× forward): below 1.00 sdpa4j is behind.\n");
    for (String o : ours) {
      for (String p : peers) {
        if (p.equals("torch-eager")) {
          continue;
        }
        s.append("\n## ").append(o).append(" vs ").append(p).append("\n\n");
        r.ratioSummary(o, p).ifPresent(g -> s.append(String.format(Locale.ROOT,
            "Geometric mean %.2f×, min %.2f×, max %.2f× over %d shapes.%n%n", g[0], g[1], g[2], (int) g[3])));
        s.append(r.versusPeer(o, p));
      }
      if (peers.contains("torch-eager")) {
        s.append("\n## ").append(o).append(" against PyTorch eager attention (the post's figures)\n");
        s.append(r.fusedVsEager(o, "torch-eager", figs, stem, out.toAbsolutePath()));
      }
    }
    List<String> impls = new ArrayList<>(ours);
    impls.addAll(peers);
    s.append("\n## Throughput per implementation\n\n").append(r.gflopsFigures(figs, stem, out.toAbsolutePath(), impls));
    s.append("\n## Where memory runs out\n\n").append(r.memoryLimits());
    Path md = out.resolve(stem + ".md");
    Files.createDirectories(out);
    Files.writeString(md, s);
    System.out.println(s);
    System.out.println("wrote " + md);
    return 0;
  }

  private static String describe(Map<String, Object> run) {
    StringBuilder s = new StringBuilder();
    for (String k : List.of("date", "commit", "dirty", "device", "deviceNames", "gpu", "torch", "cuda", "driver")) {
      if (run.containsKey(k)) {
        s.append(k).append(' ').append(run.get(k)).append("; ");
      }
    }
    return s.toString();
  }
}
