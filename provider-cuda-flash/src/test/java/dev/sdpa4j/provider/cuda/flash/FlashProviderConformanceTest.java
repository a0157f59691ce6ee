package dev.sdpa4j.provider.cuda.flash;

import dev.sdpa4j.conformance.AttentionProviderConformanceKit;
import dev.sdpa4j.spi.AttentionProvider;

/** The conformance kit on host tensors (the staging path); skipped without a GPU. */
class FlashProviderConformanceTest extends AttentionProviderConformanceKit {
  @Override
  protected AttentionProvider provider() {
    return new CudaFlashProvider();
  }
}
