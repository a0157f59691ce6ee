package dev.sdpa4j.cli;

import dev.sdpa4j.DType;
import dev.sdpa4j.MaskKind;
import dev.sdpa4j.ProviderRegistry;
import dev.sdpa4j.ProviderStatus;
import dev.sdpa4j.spi.Capabilities;
import dev.sdpa4j.spi.DeviceInfo;
import java.io.PrintWriter;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** {@code sdpa4j info}: every provider found, available or not and why, its devices and capabilities. */
@Command(name = "info", description = "List every provider found, whether it is available and why, its devices and capabilities.")
final class InfoCommand implements Callable<Integer> {
  @Spec
  CommandSpec spec;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    Runtime rt = Runtime.getRuntime();
    out.printf("sdpa4j on Java %s (%s %s, %d cores, max heap %d MiB)%n", Runtime.version(),
        System.getProperty("os.name"), System.getProperty("os.arch"), rt.availableProcessors(), rt.maxMemory() >> 20);
    List<ProviderStatus> statuses = ProviderRegistry.discovered().statuses().stream()
        .sorted(Comparator.comparingInt(ProviderStatus::priority).reversed()
            .thenComparingInt(ProviderStatus::discoveryIndex))
        .toList();
    out.printf("%d provider(s) found, in ranking order (the first that accepts a request runs it):%n", statuses.size());
    for (ProviderStatus s : statuses) {
      out.printf("%n  %-12s %s%n", s.name(), s.available() ? "available, priority " + s.priority()
          : "UNAVAILABLE: " + s.reason());
      out.printf("  %-12s class %s%n", "", s.className());
      if (s.provider() == null || !s.available()) {
        continue;
      }
      for (DeviceInfo d : s.provider().devices()) {
        out.printf("    device %s: %s%s%s%n", d.device(), d.name(), d.description().isEmpty() ? "" : ", " + d.description(),
            d.memoryBytes() > 0 ? String.format(Locale.ROOT, ", %.1f GiB", d.memoryBytes() / (double) (1L << 30)) : "");
        for (String line : describe(d.capabilities())) {
          out.println("      " + line);
        }
      }
    }
    out.flush();
    return 0;
  }

  /** Capabilities as a few human-readable lines. */
  static List<String> describe(Capabilities c) {
    String headDims = "head dim " + c.minHeadDim() + ".." + c.maxHeadDim()
        + (c.headDimMultiple() > 1 ? " (multiples of " + c.headDimMultiple() + ")" : "")
        + (c.valueDimMayDiffer() ? ", value dim may differ (up to " + c.maxValueHeadDim() + ")" : ", value dim = head dim");
    String masks = c.maskKinds().stream().sorted().map(MaskKind::description).collect(Collectors.joining(", "));
    String dropout = c.dropout() ? c.dropoutResolutions().stream().sorted()
        .map(r -> r.name().toLowerCase(Locale.ROOT)).collect(Collectors.joining("/", "yes (", " mask)")) : "no";
    String features = "dropout " + dropout + ", backward " + yes(c.backward()) + ", GQA " + yes(c.groupedQuery())
        + ", custom scale " + yes(c.customScale()) + ", LSE " + yes(c.logSumExp()) + ", deterministic "
        + c.determinism().name().toLowerCase(Locale.ROOT).replace('_', ' ');
    String memory = "memory: " + c.memory().stream().map(p -> p.name().toLowerCase(Locale.ROOT)).sorted()
        .collect(Collectors.joining(", "))
        + (c.unitHeadDimStride() ? "; head dim stride must be 1" : "; any strides")
        + (c.minComputeCapability() != null ? "; compute capability >= " + c.minComputeCapability() : "");
    return List.of("dtypes " + c.dtypes().stream().sorted().map(DType::shortName).collect(Collectors.joining(", "))
        + "; " + headDims, "masks: " + masks, features, memory);
  }

  private static String yes(boolean b) {
    return b ? "yes" : "no";
  }
}
