package dev.sdpa4j.conformance;

import dev.sdpa4j.spi.AttentionProvider;

/** A provider correct by construction passes the kit: no check fails a correct provider. */
class ReferenceProviderConformanceTest extends AttentionProviderConformanceKit {
  @Override
  protected AttentionProvider provider() {
    return new ReferenceProvider();
  }
}
