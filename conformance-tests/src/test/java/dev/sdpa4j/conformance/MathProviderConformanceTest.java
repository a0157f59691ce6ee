package dev.sdpa4j.conformance;

import dev.sdpa4j.provider.math.MathProvider;
import dev.sdpa4j.spi.AttentionProvider;

/** The math provider against the kit (provider-math cannot host this test: the kit depends on provider-math). */
class MathProviderConformanceTest extends AttentionProviderConformanceKit {
  @Override
  protected AttentionProvider provider() {
    return new MathProvider();
  }
}
