package dev.sdpa4j.benchmarks;

import dev.sdpa4j.Platform;
import dev.sdpa4j.ProviderRegistry;
import dev.sdpa4j.ProviderStatus;
import dev.sdpa4j.benchmarks.cpu.ProviderCandidate;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The discovered providers that run on the host, and what discovery said about every provider. */
public final class CpuProviders {
  private CpuProviders() {}

  /** Available providers with a host device, as candidates; restricted to {@code names} when not empty. */
  public static List<Candidate> candidates(List<String> names) {
    List<Candidate> out = new ArrayList<>();
    for (ProviderStatus s : ProviderRegistry.discovered().statuses()) {
      if (!s.available() || s.provider() == null || (!names.isEmpty() && !names.contains(s.name()))) {
        continue;
      }
      boolean host = s.provider().devices().stream().anyMatch(d -> d.device().platform() == Platform.HOST);
      if (host) {
        out.add(new ProviderCandidate(s.provider()));
      }
    }
    for (String n : names) {
      if (out.stream().noneMatch(c -> c.name().equals(n))) {
        throw new IllegalArgumentException("provider " + n + " is not an available CPU provider here; found: "
            + discovery());
      }
    }
    return out;
  }

  /** Every discovered provider: name → "available" or the reason it is not. */
  public static Map<String, String> discovery() {
    Map<String, String> m = new LinkedHashMap<>();
    for (ProviderStatus s : ProviderRegistry.discovered().statuses()) {
      m.put(s.name(), s.available() ? "available" : "unavailable: " + s.reason());
    }
    return m;
  }
}
