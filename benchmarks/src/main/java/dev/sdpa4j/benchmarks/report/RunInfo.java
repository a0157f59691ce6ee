package dev.sdpa4j.benchmarks.report;

import java.io.IOException;
import java.io.InputStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import jdk.incubator.vector.FloatVector;

/**
 * Where and when a run happened, written at the top of every result file: machine (CPU model, cores, memory), JVM,
 * the git commit (and whether the tree was dirty), the date, and anything the run adds (settings, providers,
 * peers). The commit is the one this module was built from ({@link #BUILD_COMMIT_RESOURCE}, written by the build),
 * since the run may happen where there is no checkout or a stale one (the GPU host); without that resource it is
 * what {@code git} says in the working directory.
 *
 * @param values ordered key → value (strings, numbers, lists, maps)
 */
public record RunInfo(Map<String, Object> values) {

  public RunInfo {
    values = new LinkedHashMap<>(values);
  }

  /** The class-path resource with the build's {@code git.commit.id} and {@code git.dirty}. */
  public static final String BUILD_COMMIT_RESOURCE = "/dev/sdpa4j/benchmarks/git.properties";

  /** The machine, JVM, the commit built and the date. */
  public static RunInfo collect() {
    Map<String, Object> v = new LinkedHashMap<>();
    v.put("date", Instant.now().truncatedTo(ChronoUnit.SECONDS).toString());
    Properties build = buildCommit();
    if (build.containsKey("git.commit.id")) {
      v.put("commit", build.getProperty("git.commit.id"));
      v.put("dirty", build.getProperty("git.dirty", "unknown"));
    } else {
      v.put("commit", git("rev-parse", "HEAD"));
      String status = git("status", "--porcelain", "--untracked-files=no");
      v.put("dirty", status.startsWith("unknown") ? status : String.valueOf(!status.isBlank()));
    }
    v.put("cpuModel", cpuModel());
    v.put("cores", Runtime.getRuntime().availableProcessors());
    v.put("memoryBytes", memTotal());
    v.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version") + " "
        + System.getProperty("os.arch"));
    v.put("jvm", System.getProperty("java.vm.name") + " " + System.getProperty("java.runtime.version") + " ("
        + System.getProperty("java.vm.vendor") + ")");
    v.put("jvmArgs", ManagementFactory.getRuntimeMXBean().getInputArguments());
    v.put("maxHeapBytes", Runtime.getRuntime().maxMemory());
    v.put("vectorSpecies", FloatVector.SPECIES_PREFERRED.toString());
    return new RunInfo(v);
  }

  /** A copy with one more entry. */
  public RunInfo with(String key, Object value) {
    Map<String, Object> v = new LinkedHashMap<>(values);
    v.put(key, value);
    return new RunInfo(v);
  }

  public Object get(String key) {
    return values.get(key);
  }

  /** The date part of {@code date}: {@code 2026-11-26}. */
  public String day() {
    return String.valueOf(values.get("date")).substring(0, 10);
  }

  static String cpuModel() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
        if (line.startsWith("model name")) {
          return line.substring(line.indexOf(':') + 1).trim();
        }
      }
    } catch (IOException | RuntimeException e) {
      return System.getProperty("os.arch");
    }
    return System.getProperty("os.arch");
  }

  static long memTotal() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
        if (line.startsWith("MemTotal:")) {
          return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
        }
      }
    } catch (IOException | RuntimeException e) {
      return -1;
    }
    return -1;
  }

  /** Output of a read-only git command in the working directory, or {@code unknown (...)}. */
  /** The build's commit record, empty when the module was built outside a git checkout. */
  static Properties buildCommit() {
    Properties p = new Properties();
    try (InputStream in = RunInfo.class.getResourceAsStream(BUILD_COMMIT_RESOURCE)) {
      if (in != null) {
        p.load(in);
      }
    } catch (IOException e) {
      p.clear();
    }
    return p;
  }

  static String git(String... args) {
    try {
      Process p = new ProcessBuilder(concat("git", args)).redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
      if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) {
        return "unknown (git " + String.join(" ", args) + " failed)";
      }
      return out;
    } catch (IOException e) {
      return "unknown (no git)";
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "unknown (interrupted)";
    }
  }

  private static List<String> concat(String first, String[] rest) {
    List<String> l = new java.util.ArrayList<>();
    l.add(first);
    l.addAll(List.of(rest));
    return l;
  }
}
