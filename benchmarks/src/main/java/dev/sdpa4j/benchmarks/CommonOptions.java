package dev.sdpa4j.benchmarks;

import java.nio.file.Path;
import picocli.CommandLine.Option;

/** Options shared by the CPU commands: measurement settings, threads, output. */
public final class CommonOptions {
  @Option(names = "--warmup", defaultValue = "2",
      description = "least number of untimed calls before timing (default ${DEFAULT-VALUE})")
  int warmup;

  @Option(names = "--repeats", defaultValue = "5",
      description = "timed calls; the median is reported (default ${DEFAULT-VALUE})")
  int repeats;

  @Option(names = "--input-sets", defaultValue = "3",
      description = "input sets rotated between calls (default ${DEFAULT-VALUE})")
  int inputSets;

  @Option(names = "--memory-budget", defaultValue = "2g",
      description = "memory a case may use (inputs, outputs, score matrices); over it is recorded OOM "
          + "(default ${DEFAULT-VALUE})")
  String memoryBudget;

  @Option(names = "--max-call-seconds", defaultValue = "30",
      description = "skip a case predicted (from the previous L) to take longer per call (default ${DEFAULT-VALUE})")
  double maxCallSeconds;

  @Option(names = "--threads", description = "threads for eager and libtorch (default: available processors)")
  Integer threads;

  @Option(names = "--seed", defaultValue = "20261126", description = "input seed (default ${DEFAULT-VALUE})")
  long seed;

  @Option(names = "--out", defaultValue = "benchmarks/results",
      description = "output directory (default ${DEFAULT-VALUE})")
  Path out;

  @Option(names = "--note", defaultValue = "", description = "a remark stored with the results (e.g. machine load)")
  String note;

  int threads() {
    return threads != null ? threads : Runtime.getRuntime().availableProcessors();
  }

  Sweep.Settings settings() {
    return new Sweep.Settings(warmup, repeats, inputSets, Memory.parse(memoryBudget), maxCallSeconds, seed);
  }
}
