package dev.sdpa4j.provider.opencl;

import dev.sdpa4j.conformance.AttentionProviderConformanceKit;
import dev.sdpa4j.spi.AttentionProvider;

/** The shared conformance kit against the {@code opencl} provider on its best device (host tensors). */
class OpenClProviderConformanceTest extends AttentionProviderConformanceKit {
  @Override
  protected AttentionProvider provider() {
    return Fixtures.PROVIDER;
  }
}
