package dev.sdpa4j.benchmarks;

import dev.sdpa4j.benchmarks.report.RunInfo;

/** The run's metadata as a markdown list. */
final class Meta {
  private Meta() {}

  static String markdown(RunInfo info) {
    StringBuilder s = new StringBuilder();
    for (var e : info.values().entrySet()) {
      String v = String.valueOf(e.getValue());
      if (e.getKey().endsWith("Bytes") && e.getValue() instanceof Number n) {
        v = Memory.format(n.longValue());
      }
      if (!v.isBlank()) {
        s.append("- ").append(e.getKey()).append(": ").append(v.replace("\n", " ")).append('\n');
      }
    }
    return s.toString();
  }
}
