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
import dev.sdpa4j.cuda.CudaDriver;
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
 * sdpa4j on the GPU host, on the shape list shared with {@code pytorch_peer.py}: every available CUDA provider on
 * device tensors (timed with CUDA events), the cuBLAS eager baseline ({@link CublasEagerCandidate}) and
 * {@code provider-opencl} on the OpenCL GPU devices (device buffers), forward and training steps, the whole list or
 * some of its sets. Writes {@code <name>-<date>.json/.csv} for {@code gpu-compare}.
 */
@Command(name = "gpu", mixinStandardHelpOptions = true,
    description = "Time every available CUDA provider, the cuBLAS eager baseline and OpenCL on the shared GPU shape "
        + "list; write JSON and CSV.")
public final class GpuCommand implements Callable<Integer> {
  /** Stack of the thread that runs the sweep (reserved, committed as used). */
  private static final long SWEEP_STACK_BYTES = 256L << 20;

  @Option(names = "--shapes", defaultValue = "benchmarks/gpu/shapes.json", description = "shape list (JSON)")
  Path shapes;

  @Option(names = "--sets", split = ",",
      description = "sets of the shape list to run (see benchmarks/gpu/make_shapes.py; default: all)")
  List<String> sets = new ArrayList<>();

  @Option(names = "--providers", split = ",",
      description = "providers to run (default: every available CUDA provider, and opencl on OpenCL GPUs)")
  List<String> providers = new ArrayList<>();

  @Option(names = "--opencl-sets", split = ",", defaultValue = "decode",
      description = "sets on which provider-opencl runs (default ${DEFAULT-VALUE}: with the quick set's inference "
          + "and figures shapes the JVM died of SIGSEGV on the H100 on 2026-11-26, cause not found yet)")
  List<String> openClSets;

  @Option(names = "--eager", negatable = true, defaultValue = "true", fallbackValue = "true",
      description = "run the cuBLAS eager baseline (default ${DEFAULT-VALUE}; --no-eager leaves it out)")
  boolean eager;

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

  @Option(names = "--max-call-seconds", defaultValue = "20",
      description = "skip a case predicted to take longer per call (default ${DEFAULT-VALUE})")
  double maxCallSeconds;

  @Option(names = "--out", defaultValue = "benchmarks/results", description = "output directory")
  Path out;

  @Option(names = "--name", defaultValue = "gpu-sdpa4j", description = "file name stem (default ${DEFAULT-VALUE})")
  String name;

  @Override
  public Integer call() throws Exception {
    List<BenchCase> cases = Shapes.read(shapes, sets);
    if (cases.isEmpty()) {
      System.err.println("no shape of the sets " + sets + " in " + shapes);
      return 2;
    }
    List<Candidate> candidates = new ArrayList<>();
    Map<String, Object> devices = new LinkedHashMap<>();
    for (ProviderStatus s : ProviderRegistry.discovered().statuses()) {
      if (!s.available() || s.provider() == null || (!providers.isEmpty() && !providers.contains(s.name()))) {
        continue;
      }
      for (DeviceInfo d : s.provider().devices()) {
        String described = d.name() + " (" + d.description() + ", " + Memory.format(d.memoryBytes()) + ")";
        if (d.device().platform() == Platform.CUDA && d.device().index() == device) {
          candidates.add(new CudaProviderCandidate(s.provider(), device));
          devices.put(s.name(), described);
        } else if (d.device().platform() == Platform.OPENCL && OpenClCandidate.isGpu(d.device().index())) {
          String n = candidates.stream().anyMatch(c -> c.name().equals(s.name())) ? s.name() + ":"
              + d.device().index() : s.name();
          candidates.add(new OpenClCandidate(s.provider(), d.device().index(), n));
          devices.put(n, described);
        }
      }
    }
    if (eager) {
      CublasEagerCandidate e = new CublasEagerCandidate(device);
      candidates.add(e);
      devices.put(e.name(), "cuBLAS (org.bytedeco:cuda) + softmax kernels: " + GpuDevice.of(device).kernelOrigin());
    }
    if (candidates.isEmpty()) {
      System.err.println("nothing to run on cuda:" + device + "; discovery: " + CpuProviders.discovery());
      return 2;
    }
    Sweep.Settings settings = new Sweep.Settings(warmup, repeats, inputSets, Memory.parse(memoryBudget),
        maxCallSeconds, 20261126, 0.1);
    // provider-opencl only on the cases of --opencl-sets: two sweeps, one with and one without it
    List<BenchCase> withOpenCl = new ArrayList<>(Shapes.read(shapes, openClSets));
    withOpenCl.retainAll(cases);
    List<BenchCase> rest = new ArrayList<>(cases);
    rest.removeAll(withOpenCl);
    List<Candidate> noOpenCl = candidates.stream().filter(c -> !(c instanceof OpenClCandidate)).toList();
    List<Measurement> ms = new ArrayList<>();
    // on a thread with a large stack: native code the drivers run on the calling thread (OpenCL's kernel compiler)
    // may recurse deeper than a Java thread's default 1 MiB, and a native stack overflow kills the JVM silently
    Throwable[] failure = new Throwable[1];
    Thread sweep = new Thread(null, () -> {
      try {
        if (!withOpenCl.isEmpty()) {
          ms.addAll(new Sweep(settings).run(candidates, withOpenCl));
        }
        if (!rest.isEmpty() && !noOpenCl.isEmpty()) {
          ms.addAll(new Sweep(settings).run(noOpenCl, rest));
        }
      } catch (RuntimeException | Error e) {
        failure[0] = e;
      }
    }, "gpu-sweep", SWEEP_STACK_BYTES);
    sweep.start();
    sweep.join();
    if (failure[0] != null) {
      throw new IllegalStateException("the sweep failed", failure[0]);
    }
    int v = CudaDriver.driverVersion();
    RunInfo info = RunInfo.collect().with("command", "gpu").with("device", "cuda:" + device)
        .with("deviceNames", devices).with("driver", "CUDA driver " + v / 1000 + "." + v % 1000 / 10)
        .with("settings", settings).with("providers", CpuProviders.discovery())
        .with("shapes", shapes.toString()).with("sets", sets.isEmpty() ? "all" : String.join(",", sets))
        .with("openClSets", String.join(",", openClSets))
        .with("note", System.getenv().getOrDefault("BENCH_NOTE", ""));
    Path base = out.resolve(name + "-" + info.day());
    ResultFiles.write(base, info, ms);
    System.out.println("wrote " + base + ".json and .csv");
    return 0;
  }
}
