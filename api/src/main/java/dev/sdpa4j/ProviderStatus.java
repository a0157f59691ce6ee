package dev.sdpa4j;

import dev.sdpa4j.spi.AttentionProvider;
import java.util.Optional;

/**
 * What discovery found: a provider, or the failure to load one.
 *
 * @param name           the provider's name, or its class name when it failed to load
 * @param className      the implementing class as registered
 * @param provider       the instance; null when loading failed
 * @param available      whether it can take requests
 * @param reason         why not; empty when available
 * @param priority       its rank (higher wins)
 * @param discoveryIndex its position in discovery order
 */
public record ProviderStatus(String name, String className, AttentionProvider provider, boolean available,
                             String reason, int priority, int discoveryIndex) {

  public Optional<AttentionProvider> instance() {
    return Optional.ofNullable(provider);
  }
}
