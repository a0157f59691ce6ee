package dev.sdpa4j.benchmarks;

import dev.sdpa4j.benchmarks.cpu.EagerCandidate;
import dev.sdpa4j.benchmarks.report.Report;
import dev.sdpa4j.benchmarks.report.ResultFiles;
import dev.sdpa4j.benchmarks.report.RunInfo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * The CPU sweep: head dims × sequence lengths (from {@code --seq-min}, doubling, up to the longest that fits the
 * memory budget or {@code --seq-max}) × batch sizes × passes × causal, for every CPU provider, the eager baseline
 * and libtorch. Writes {@code <name>-<date>.json/.csv/.md} and the figures under {@code figures/}.
 */
@Command(name = "cpu", mixinStandardHelpOptions = true,
    description = "Sweep every CPU provider against the eager baseline and libtorch; write JSON, CSV, markdown and "
        + "figures.")
public final class CpuCommand implements Callable<Integer> {
  @Mixin
  CommonOptions common;

  @Option(names = "--head-dims", split = ",", defaultValue = "8,16,32,64,128,256", description = "head dims E")
  List<Integer> headDims;

  @Option(names = "--seq-min", defaultValue = "256", description = "shortest L (default ${DEFAULT-VALUE})")
  int seqMin;

  @Option(names = "--seq-max", defaultValue = "0",
      description = "longest L; 0: the longest power-of-two multiple of --seq-min whose inputs and outputs fit the "
          + "budget")
  int seqMax;

  @Option(names = "--batch", split = ",", defaultValue = "1", description = "batch sizes B")
  List<Integer> batches;

  @Option(names = "--heads", defaultValue = "4", description = "heads H (default ${DEFAULT-VALUE})")
  int heads;

  @Option(names = "--passes", split = ",", defaultValue = "fwd,fwd+bwd", description = "fwd and/or fwd+bwd")
  List<String> passes;

  @Option(names = "--causal", split = ",", arity = "1", defaultValue = "false", description = "false and/or true")
  List<Boolean> causal;

  @Option(names = "--providers", split = ",", description = "CPU providers to run (default: every available one)")
  List<String> providers = new ArrayList<>();

  @Option(names = "--no-eager", description = "leave out the eager baseline")
  boolean noEager;

  @Option(names = "--no-libtorch", description = "leave out the libtorch peer")
  boolean noLibtorch;

  @Option(names = "--name", defaultValue = "cpu-sweep", description = "file name stem (default ${DEFAULT-VALUE})")
  String name;

  @Override
  public Integer call() throws Exception {
    Sweep.Settings settings = common.settings();
    List<Candidate> candidates = new ArrayList<>(CpuProviders.candidates(providers));
    String libtorch = "not run";
    if (!noEager) {
      candidates.add(new EagerCandidate(common.threads()));
    }
    if (!noLibtorch) {
      try {
        candidates.add(Peers.libtorch(common.threads()));
        libtorch = Peers.libtorchDescription();
      } catch (Peers.PeerUnavailableException e) {
        libtorch = e.getMessage();
        System.err.println("libtorch peer left out: " + e.getMessage());
      }
    }
    List<BenchCase> cases = cases(settings);
    System.err.printf("cpu sweep: %d cases × %s%n", cases.size(), candidates.stream().map(Candidate::name).toList());
    List<Measurement> ms = new Sweep(settings).run(candidates, cases);
    RunInfo info = RunInfo.collect().with("command", "cpu").with("device", "cpu").with("threads", common.threads())
        .with("settings", settings).with("providers", CpuProviders.discovery()).with("libtorch", libtorch)
        .with("note", common.note);
    Path base = common.out.resolve(name + "-" + info.day());
    ResultFiles.write(base, info, ms);
    Path md = Path.of(base + ".md");
    Files.writeString(md, markdown(info, ms, common.out, name + "-" + info.day()));
    System.out.println("wrote " + base + ".json, .csv, .md and figures under " + common.out.resolve("figures"));
    return 0;
  }

  List<BenchCase> cases(Sweep.Settings settings) {
    List<BenchCase> out = new ArrayList<>();
    for (String passLabel : passes) {
      Pass pass = Pass.ofLabel(passLabel);
      for (boolean c : causal) {
        for (int b : batches) {
          for (int e : headDims) {
            for (int l = seqMin; ; l *= 2) {
              BenchCase bc = new BenchCase(b, heads, l, e, c, "fp32", pass);
              boolean fits = seqMax > 0 ? l <= seqMax
                  : Sweep.ioBytes(bc, settings.inputSets()) <= settings.memoryBudget();
              if (!fits) {
                break;
              }
              out.add(bc);
            }
          }
        }
      }
    }
    return out;
  }

  static String markdown(RunInfo info, List<Measurement> ms, Path outDir, String stem) throws java.io.IOException {
    Report r = new Report(ms);
    Path figs = outDir.resolve("figures");
    StringBuilder s = new StringBuilder();
    s.append("# CPU sweep ").append(info.day()).append("\n\n").append(Meta.markdown(info)).append('\n');
    List<String> impls = r.implementations();
    for (String fused : ms.stream().filter(m -> m.kind().equals("fused")).map(Measurement::implementation).distinct()
        .toList()) {
      if (impls.contains("eager")) {
        s.append("\n## ").append(fused).append(" against eager\n");
        if (ms.stream().map(m -> m.benchCase().batch()).distinct().count() > 1) {
          s.append("\nBy batch size:\n\n").append(r.byBatch(fused, "eager"));
        } else {
          s.append(r.fusedVsEager(fused, "eager", figs, stem, outDir.toAbsolutePath()));
        }
      }
      if (impls.contains("libtorch")) {
        s.append("\n## ").append(fused).append(" against libtorch\n\n").append(r.versusPeer(fused, "libtorch"));
      }
    }
    s.append("\n## GFLOP/s per implementation\n\n")
        .append(r.gflopsFigures(figs, stem, outDir.toAbsolutePath(), impls));
    s.append("\n## Where memory runs out\n\n").append(r.memoryLimits());
    s.append("\n## Every measurement\n\n").append(r.fullTable());
    return s.toString();
  }
}
