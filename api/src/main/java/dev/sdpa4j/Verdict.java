package dev.sdpa4j;

import java.util.List;

/**
 * One provider's answer to one request.
 *
 * @param provider the provider's name
 * @param reasons  why it refuses; empty when it accepts
 */
public record Verdict(String provider, List<String> reasons) {
  public Verdict {
    reasons = List.copyOf(reasons);
  }

  public boolean accepted() {
    return reasons.isEmpty();
  }

  @Override
  public String toString() {
    return provider + (accepted() ? ": accepts" : ": " + String.join("; ", reasons));
  }
}
