package dev.sdpa4j.benchmarks.report;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.sdpa4j.benchmarks.BenchCase;
import dev.sdpa4j.benchmarks.Measurement;
import dev.sdpa4j.benchmarks.Pass;
import dev.sdpa4j.benchmarks.Status;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Result files: JSON ({@code {"run": {...}, "measurements": [...]}}) and CSV (a header, {@code # key: value}
 * comment lines with the run's metadata, then one row per measurement), both with the same flat row per
 * measurement. Missing numbers are JSON {@code null} and empty CSV cells. {@link #readJson} reads a JSON file back.
 */
public final class ResultFiles {
  /** The columns of a measurement row, in order. */
  public static final List<String> COLUMNS = List.of("implementation", "kind", "device", "dtype", "pass", "batch",
      "heads", "seqLen", "kvLen", "headDim", "causal", "dropout", "status", "medianMs", "minMs", "repeats", "gflops",
      "flops", "memoryBytes", "memoryMethod", "note");

  private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private ResultFiles() {}

  /** One measurement as an ordered map of {@link #COLUMNS}; NaN becomes null. */
  public static Map<String, Object> row(Measurement m) {
    BenchCase c = m.benchCase();
    Map<String, Object> r = new LinkedHashMap<>();
    r.put("implementation", m.implementation());
    r.put("kind", m.kind());
    r.put("device", m.device());
    r.put("dtype", c.dtype());
    r.put("pass", c.pass().label());
    r.put("batch", c.batch());
    r.put("heads", c.heads());
    r.put("seqLen", c.seqLen());
    r.put("kvLen", c.kvLen());
    r.put("headDim", c.headDim());
    r.put("causal", c.causal());
    r.put("dropout", c.dropout());
    r.put("status", m.status().name());
    r.put("medianMs", num(m.medianMs()));
    r.put("minMs", num(m.minMs()));
    r.put("repeats", m.repeats());
    r.put("gflops", num(m.gflops()));
    r.put("flops", c.flops());
    r.put("memoryBytes", m.memoryBytes() < 0 ? null : m.memoryBytes());
    r.put("memoryMethod", m.memoryMethod());
    r.put("note", m.note());
    return r;
  }

  private static Double num(double v) {
    return Double.isNaN(v) ? null : v;
  }

  /** Writes {@code base.json} and {@code base.csv}; returns both paths. */
  public static List<Path> write(Path base, RunInfo info, List<Measurement> ms) throws IOException {
    Files.createDirectories(base.toAbsolutePath().getParent());
    Path json = Path.of(base + ".json");
    Path csv = Path.of(base + ".csv");
    Map<String, Object> doc = new LinkedHashMap<>();
    doc.put("run", info.values());
    doc.put("measurements", ms.stream().map(ResultFiles::row).toList());
    JSON.writeValue(json.toFile(), doc);
    StringBuilder s = new StringBuilder();
    for (var e : info.values().entrySet()) {
      s.append("# ").append(e.getKey()).append(": ").append(String.valueOf(e.getValue()).replace('\n', ' '))
          .append('\n');
    }
    s.append(String.join(",", COLUMNS)).append('\n');
    for (Measurement m : ms) {
      s.append(row(m).values().stream().map(ResultFiles::csvCell).collect(Collectors.joining(","))).append('\n');
    }
    Files.writeString(csv, s);
    return List.of(json, csv);
  }

  private static String csvCell(Object v) {
    if (v == null) {
      return "";
    }
    String t = String.valueOf(v);
    if (t.contains(",") || t.contains("\"") || t.contains("\n")) {
      return "\"" + t.replace("\"", "\"\"") + "\"";
    }
    return t;
  }

  /** A result file read back: its run metadata and measurements. */
  public record Loaded(Map<String, Object> run, List<Measurement> measurements) {}

  /** Reads a JSON file written by {@link #write}. */
  @SuppressWarnings("unchecked")
  public static Loaded readJson(Path file) throws IOException {
    JsonNode root = JSON.readTree(file.toFile());
    Map<String, Object> run = JSON.convertValue(root.get("run"), LinkedHashMap.class);
    List<Measurement> ms = new ArrayList<>();
    for (JsonNode r : root.get("measurements")) {
      ms.add(fromRow(r));
    }
    return new Loaded(run, ms);
  }

  /**
   * A measurement from a row with {@link #COLUMNS} (missing numbers → NaN / -1; a row without {@code kvLen} is
   * self-attention, one without {@code dropout} has none: the files of earlier versions).
   */
  public static Measurement fromRow(JsonNode r) {
    int lq = r.get("seqLen").asInt();
    BenchCase c = new BenchCase(r.get("batch").asInt(), r.get("heads").asInt(), lq,
        r.hasNonNull("kvLen") ? r.get("kvLen").asInt() : lq, r.get("headDim").asInt(), r.get("causal").asBoolean(),
        r.get("dtype").asText(), Pass.ofLabel(r.get("pass").asText()),
        r.hasNonNull("dropout") ? r.get("dropout").asDouble() : 0);
    return new Measurement(r.get("implementation").asText(), text(r, "kind", "peer"), text(r, "device", ""), c,
        Status.valueOf(r.get("status").asText()), dbl(r, "medianMs"), dbl(r, "minMs"),
        r.has("repeats") ? r.get("repeats").asInt() : 0, dbl(r, "gflops"),
        r.hasNonNull("memoryBytes") ? r.get("memoryBytes").asLong() : -1, text(r, "memoryMethod", ""),
        text(r, "note", ""));
  }

  private static String text(JsonNode r, String key, String dflt) {
    return r.hasNonNull(key) ? r.get(key).asText() : dflt;
  }

  private static double dbl(JsonNode r, String key) {
    return r.hasNonNull(key) ? r.get(key).asDouble() : Double.NaN;
  }
}
