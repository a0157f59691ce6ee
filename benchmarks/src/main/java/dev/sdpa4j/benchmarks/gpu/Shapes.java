package dev.sdpa4j.benchmarks.gpu;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdpa4j.benchmarks.BenchCase;
import dev.sdpa4j.benchmarks.Pass;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The GPU shape list, one JSON file read by both the Java side and {@code pytorch_peer.py}:
 * {@code {"shapes": [{"batch": 8, "heads": 32, "seqLen": 2048, "headDim": 64, "causal": false, "dtype": "fp16",
 * "pass": "fwd"}, ...]}}. {@code pass} is optional ({@code fwd}).
 */
public final class Shapes {
  private Shapes() {}

  public static List<BenchCase> read(Path file) throws IOException {
    JsonNode root = new ObjectMapper().readTree(file.toFile());
    JsonNode arr = root.has("shapes") ? root.get("shapes") : root;
    List<BenchCase> out = new ArrayList<>();
    for (JsonNode s : arr) {
      out.add(new BenchCase(s.get("batch").asInt(), s.get("heads").asInt(), s.get("seqLen").asInt(),
          s.get("headDim").asInt(), s.path("causal").asBoolean(false), s.path("dtype").asText("fp16"),
          Pass.ofLabel(s.path("pass").asText("fwd"))));
    }
    return out;
  }
}
