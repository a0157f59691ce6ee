package dev.sdpa4j.benchmarks;

import dev.sdpa4j.benchmarks.gpu.GpuCommand;
import dev.sdpa4j.benchmarks.gpu.GpuCompareCommand;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The benchmark command: {@code cpu} (the CPU sweep: every CPU provider against the eager baseline and libtorch),
 * {@code cpu-vs-libtorch} (issue 3's table), {@code gpu} (device providers on the GPU host) and {@code gpu-compare}
 * (sdpa4j's GPU results beside PyTorch's). Run with {@code --add-modules jdk.incubator.vector
 * --enable-native-access=ALL-UNNAMED}.
 */
@Command(name = "sdpa4j-bench", mixinStandardHelpOptions = true, version = "sdpa4j-bench 0.1.0",
    description = "Benchmarks sdpa4j's providers against an eager baseline and against PyTorch.",
    subcommands = {CpuCommand.class, CpuVsLibTorchCommand.class, GpuCommand.class, GpuCompareCommand.class})
public final class BenchMain {

  public static void main(String[] args) {
    System.setProperty("java.awt.headless", "true");
    System.exit(new CommandLine(new BenchMain()).execute(args));
  }
}
