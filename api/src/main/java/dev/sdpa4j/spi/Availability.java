package dev.sdpa4j.spi;

import java.util.Objects;

/**
 * Whether a provider can run on this machine, and if not, why ("no CUDA driver: libcuda.so.1 not found").
 *
 * @param available true when the provider can take requests
 * @param reason    why not, in words a user can act on; empty when available
 */
public record Availability(boolean available, String reason) {
  private static final Availability AVAILABLE = new Availability(true, "");

  public Availability {
    Objects.requireNonNull(reason, "reason");
    if (!available && reason.isBlank()) {
      throw new IllegalArgumentException("an unavailable provider must say why");
    }
  }

  public static Availability ok() {
    return AVAILABLE;
  }

  public static Availability unavailable(String reason) {
    return new Availability(false, reason);
  }
}
