package dev.sdpa4j.benchmarks;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;

/** Memory probes: bytes allocated on the Java heap by all threads, and the process's peak resident set (Linux). */
public final class Memory {
  private static final com.sun.management.ThreadMXBean THREADS =
      (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
  private static final Path STATUS = Path.of("/proc/self/status");
  private static final Path CLEAR_REFS = Path.of("/proc/self/clear_refs");

  private Memory() {}

  /** Bytes allocated on the heap by every thread since the JVM started (monotonic). */
  public static long heapAllocatedBytes() {
    return THREADS.getTotalThreadAllocatedBytes();
  }

  /**
   * Resets the process's peak resident set to its current size ({@code echo 5 > /proc/self/clear_refs}); returns
   * false where that is not possible (then {@link #residentPeakBytes} keeps the all-time peak).
   */
  public static boolean resetResidentPeak() {
    try {
      Files.writeString(CLEAR_REFS, "5");
      return true;
    } catch (IOException | UnsupportedOperationException | SecurityException e) {
      return false;
    }
  }

  /** {@code VmHWM}, the peak resident set in bytes, or -1 off Linux. */
  public static long residentPeakBytes() {
    return statusKb("VmHWM:");
  }

  /** {@code VmRSS}, the resident set in bytes, or -1 off Linux. */
  public static long residentBytes() {
    return statusKb("VmRSS:");
  }

  private static long statusKb(String key) {
    try {
      for (String line : Files.readAllLines(STATUS)) {
        if (line.startsWith(key)) {
          return Long.parseLong(line.substring(key.length()).trim().split("\\s+")[0]) * 1024;
        }
      }
    } catch (IOException | RuntimeException e) {
      return -1;
    }
    return -1;
  }

  /** Bytes as text: {@code 512 MiB}, {@code 1.5 GiB}. */
  public static String format(long bytes) {
    if (bytes < 0) {
      return "n/a";
    }
    if (bytes < 1024) {
      return bytes + " B";
    }
    String[] units = {"KiB", "MiB", "GiB", "TiB"};
    double v = bytes;
    int u = -1;
    while (v >= 1024 && u < units.length - 1) {
      v /= 1024;
      u++;
    }
    String number = String.format(java.util.Locale.ROOT, v >= 100 ? "%.0f" : "%.1f", v);
    return number + " " + units[u];
  }

  /** Parses {@code 512m}, {@code 4g}, {@code 1024k} or a plain byte count. */
  public static long parse(String text) {
    String t = text.trim().toLowerCase(java.util.Locale.ROOT);
    long mult = 1;
    if (t.endsWith("ib")) {
      t = t.substring(0, t.length() - 2);
    } else if (t.endsWith("b")) {
      t = t.substring(0, t.length() - 1);
    }
    switch (t.isEmpty() ? ' ' : t.charAt(t.length() - 1)) {
      case 'k' -> mult = 1L << 10;
      case 'm' -> mult = 1L << 20;
      case 'g' -> mult = 1L << 30;
      case 't' -> mult = 1L << 40;
      default -> mult = 1;
    }
    if (mult != 1) {
      t = t.substring(0, t.length() - 1);
    }
    try {
      return Math.round(Double.parseDouble(t) * mult);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("not a memory size: " + text + " (expected e.g. 512m, 4g)");
    }
  }
}
