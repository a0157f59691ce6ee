package dev.sdpa4j.benchmarks.gpu;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdpa4j.benchmarks.BenchCase;
import dev.sdpa4j.benchmarks.Pass;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

/**
 * The GPU shape list, one JSON file read by both the Java side and {@code pytorch_peer.py}:
 * {@code {"shapes": [{"set": "inference", "batch": 8, "heads": 32, "seqLen": 2048, "headDim": 64, "causal": false,
 * "dtype": "fp16", "pass": "fwd"}, ...]}}. Optional fields: {@code kvLen} (default {@code seqLen}), {@code pass}
 * ({@code fwd}), {@code dropout} (0), {@code causal} (false), {@code dtype} (fp16), {@code set} (the part of the sweep
 * the shape belongs to, e.g. {@code inference}, {@code training-fp16}, {@code decode}, {@code figures}: see
 * {@code benchmarks/gpu/make_shapes.py}; default {@code inference}).
 */
public final class Shapes {
  private Shapes() {}

  /** Every shape of the file. */
  public static List<BenchCase> read(Path file) throws IOException {
    return read(file, List.of());
  }

  /** The shapes of the named sets ({@code sets} empty: every shape), in file order. */
  public static List<BenchCase> read(Path file, Collection<String> sets) throws IOException {
    JsonNode root = new ObjectMapper().readTree(file.toFile());
    JsonNode arr = root.has("shapes") ? root.get("shapes") : root;
    List<BenchCase> out = new ArrayList<>();
    for (JsonNode s : arr) {
      if (!sets.isEmpty() && !sets.contains(s.path("set").asText("inference"))) {
        continue;
      }
      int lq = required(s, "seqLen");
      out.add(new BenchCase(required(s, "batch"), required(s, "heads"), lq, s.path("kvLen").asInt(lq),
          required(s, "headDim"), s.path("causal").asBoolean(false), s.path("dtype").asText("fp16"),
          Pass.ofLabel(s.path("pass").asText("fwd")), s.path("dropout").asDouble(0)));
    }
    return out;
  }

  private static int required(JsonNode s, String key) {
    if (!s.hasNonNull(key) || !s.get(key).canConvertToInt()) {
      throw new IllegalArgumentException("shape " + s + " has no integer " + key);
    }
    return s.get(key).asInt();
  }
}
