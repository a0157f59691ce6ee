package dev.sdpa4j.benchmarks.gpu;

import dev.sdpa4j.Platform;
import dev.sdpa4j.ProviderRegistry;
import dev.sdpa4j.ProviderStatus;
import dev.sdpa4j.benchmarks.BenchCase;
import dev.sdpa4j.benchmarks.Candidate;
import dev.sdpa4j.benchmarks.CpuProviders;
import dev.sdpa4j.benchmarks.Measurement;
import dev.sdpa4j.benchmarks.Memory;
import dev.sdpa4j.benchmarks.Sweep;
import dev.sdpa4j.benchmarks.report.ResultFiles;
import dev.sdpa4j.benchmarks.report.RunInfo;
import dev.sdpa4j.spi.DeviceInfo;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * sdpa4j's device providers on the GPU host, on the shape list shared with {@code pytorch_peer.py}: every available
 * provider with a CUDA device runs on device tensors, timed with CUDA events. Writes {@code <name>-<date>.json/.csv}
 * for {@code gpu-compare}.
 */
@Command(name = "gpu", mixinStandardHelpOptions = true,
    description = "Time every available CUDA provider on the shared GPU shape list; write JSON and CSV.")
public final class GpuCommand implements Callable<Integer> {
  @Option(names = "--shapes", defaultValue = "benchmarks/gpu/shapes.json", description = "shape list (JSON)")
  Path shapes;

  @Option(names = "--providers", split = ",", description = "providers to run (default: every available CUDA one)")
  List<String> providers = new ArrayList<>();

  @Option(names = "--device", defaultValue = "0", description = "CUDA device ordinal (default ${DEFAULT-VALUE})")
  int device;

  @Option(names = "--warmup", defaultValue = "5", description = "warm-up calls (default ${DEFAULT-VALUE})")
  int warmup;

  @Option(names = "--repeats", defaultValue = "20", description = "timed calls (default ${DEFAULT-VALUE})")
  int repeats;

  @Option(names = "--input-sets", defaultValue = "2", description = "input sets rotated (default ${DEFAULT-VALUE})")
  int inputSets;

  @Option(names = "--memory-budget", defaultValue = "70g",
      description = "device memory a case may use (default ${DEFAULT-VALUE})")
  String memoryBudget;

  @Option(names = "--out", defaultValue = "benchmarks/results", description = "output directory")
  Path out;

  @Option(names = "--name", defaultValue = "gpu-sdpa4j", description = "file name stem (default ${DEFAULT-VALUE})")
  String name;

  @Override
  public Integer call() throws Exception {
    List<BenchCase> cases = Shapes.read(shapes);
    List<Candidate> candidates = new ArrayList<>();
    Map<String, Object> devices = new LinkedHashMap<>();
    for (ProviderStatus s : ProviderRegistry.discovered().statuses()) {
      if (!s.available() || s.provider() == null || (!providers.isEmpty() && !providers.contains(s.name()))) {
        continue;
      }
      for (DeviceInfo d : s.provider().devices()) {
        if (d.device().platform() == Platform.CUDA && d.device().index() == device) {
          candidates.add(new CudaProviderCandidate(s.provider(), device));
          devices.put(s.name(), d.name() + " (" + d.description() + ", " + Memory.format(d.memoryBytes()) + ")");
        }
      }
    }
    if (candidates.isEmpty()) {
      System.err.println("no available CUDA provider on cuda:" + device + "; discovery: " + CpuProviders.discovery());
      return 2;
    }
    Sweep.Settings settings = new Sweep.Settings(warmup, repeats, inputSets, Memory.parse(memoryBudget), 60, 20261126);
    List<Measurement> ms = new Sweep(settings).run(candidates, cases);
    RunInfo info = RunInfo.collect().with("command", "gpu").with("device", "cuda:" + device)
        .with("deviceNames", devices).with("driver", "CUDA driver " + CudaDriverApi.driverVersion())
        .with("settings", settings).with("providers", CpuProviders.discovery())
        .with("shapes", shapes.toString());
    Path base = out.resolve(name + "-" + info.day());
    ResultFiles.write(base, info, ms);
    System.out.println("wrote " + base + ".json and .csv");
    return 0;
  }
}
