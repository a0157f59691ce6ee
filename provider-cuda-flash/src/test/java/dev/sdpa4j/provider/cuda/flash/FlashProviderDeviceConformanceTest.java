package dev.sdpa4j.provider.cuda.flash;

import dev.sdpa4j.conformance.AttentionProviderConformanceKit;
import dev.sdpa4j.conformance.TensorMemory;
import dev.sdpa4j.cuda.testing.CudaTensorMemory;
import dev.sdpa4j.spi.AttentionProvider;

/** The conformance kit on CUDA device tensors (zero-copy, and the aligned-copy path for padded layouts). */
class FlashProviderDeviceConformanceTest extends AttentionProviderConformanceKit {
  private final CudaFlashProvider provider = new CudaFlashProvider();

  @Override
  protected AttentionProvider provider() {
    return provider;
  }

  @Override
  protected TensorMemory memory() {
    return new CudaTensorMemory(provider.device(0).context());
  }
}
