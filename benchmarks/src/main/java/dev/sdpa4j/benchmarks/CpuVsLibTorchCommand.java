package dev.sdpa4j.benchmarks;

import dev.sdpa4j.benchmarks.report.Report;
import dev.sdpa4j.benchmarks.report.ResultFiles;
import dev.sdpa4j.benchmarks.report.RunInfo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * Issue 3's table: an sdpa4j CPU provider (default {@code math}) against libtorch's CPU SDPA in the same JVM, same
 * thread count, fp32, B=1, H=8, E=64 and 128, L=1024..4096, causal and not. Writes
 * {@code cpu-<provider>-vs-libtorch-<date>.md/.json/.csv} and a GFLOP/s figure.
 */
@Command(name = "cpu-vs-libtorch", mixinStandardHelpOptions = true,
    description = "An sdpa4j CPU provider against libtorch's scaled_dot_product_attention, side by side (issue 3).")
public final class CpuVsLibTorchCommand implements Callable<Integer> {
  @Mixin
  CommonOptions common;

  @Option(names = "--provider", defaultValue = "math", description = "the sdpa4j provider (default ${DEFAULT-VALUE})")
  String provider;

  @Option(names = "--head-dims", split = ",", defaultValue = "64,128", description = "head dims E")
  List<Integer> headDims;

  @Option(names = "--seq-lens", split = ",", defaultValue = "1024,2048,3072,4096", description = "sequence lengths L")
  List<Integer> seqLens;

  @Option(names = "--heads", defaultValue = "8", description = "heads H (default ${DEFAULT-VALUE})")
  int heads;

  @Option(names = "--batch", defaultValue = "1", description = "batch B (default ${DEFAULT-VALUE})")
  int batch;

  @Option(names = "--passes", split = ",", defaultValue = "fwd", description = "fwd and/or fwd+bwd")
  List<String> passes;

  @Override
  public Integer call() throws Exception {
    List<Candidate> candidates = new ArrayList<>(CpuProviders.candidates(List.of(provider)));
    candidates.add(Peers.libtorch(common.threads()));
    List<BenchCase> cases = new ArrayList<>();
    for (String p : passes) {
      for (boolean causal : new boolean[] {false, true}) {
        for (int e : headDims) {
          for (int l : seqLens) {
            cases.add(new BenchCase(batch, heads, l, e, causal, "fp32", Pass.ofLabel(p)));
          }
        }
      }
    }
    Sweep.Settings settings = common.settings();
    List<Measurement> ms = new Sweep(settings).run(candidates, cases);
    RunInfo info = RunInfo.collect().with("command", "cpu-vs-libtorch").with("device", "cpu")
        .with("threads", common.threads()).with("settings", settings).with("providers", CpuProviders.discovery())
        .with("libtorch", Peers.libtorchDescription()).with("note", common.note);
    String stem = "cpu-" + provider + "-vs-libtorch-" + info.day();
    Path base = common.out.resolve(stem);
    ResultFiles.write(base, info, ms);
    Report r = new Report(ms);
    StringBuilder s = new StringBuilder();
    s.append("# ").append(provider).append(" vs libtorch on the CPU, ").append(info.day()).append("\n\n");
    s.append("FLOPs counted as 4·B·H·L²·E (halved for causal); median of ").append(settings.repeats())
        .append(" calls after ").append(settings.warmup()).append(" warm-up calls, ").append(settings.inputSets())
        .append(" input sets rotated; both in one JVM with ").append(common.threads()).append(" threads.\n\n");
    s.append(Meta.markdown(info)).append('\n');
    r.ratioSummary(provider, "libtorch").ifPresent(g -> s.append(String.format(Locale.ROOT,
        "**%s / libtorch GFLOP/s: geometric mean %.2f×, min %.2f×, max %.2f× over %d shapes.** %s%n%n", provider,
        g[0], g[1], g[2], (int) g[3], g[1] >= 1.0 ? "At or above libtorch on every shape."
            : "Behind libtorch where the ratio is below 1.00 (marked in bold).")));
    s.append(r.versusPeer(provider, "libtorch")).append('\n');
    s.append(r.gflopsFigures(common.out.resolve("figures"), stem, common.out.toAbsolutePath(),
        List.of(provider, "libtorch")));
    Files.writeString(Path.of(base + ".md"), s);
    System.out.println(s);
    System.out.println("wrote " + base + ".md, .json, .csv");
    return 0;
  }
}
