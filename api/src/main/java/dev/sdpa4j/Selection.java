package dev.sdpa4j;

import dev.sdpa4j.spi.AttentionProvider;
import java.util.List;
import java.util.Optional;

/**
 * The outcome of choosing a provider for a request: the chosen one (if any) and every provider's verdict, in the
 * order they were considered.
 *
 * @param chosen   the provider that will run the request; null when none accepts
 * @param verdicts each considered provider's verdict, in ranking order
 */
public record Selection(AttentionProvider chosen, List<Verdict> verdicts) {
  public Selection {
    verdicts = List.copyOf(verdicts);
  }

  public Optional<AttentionProvider> provider() {
    return Optional.ofNullable(chosen);
  }
}
