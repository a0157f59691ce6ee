package dev.sdpa4j.provider.cuda.memeff;

import dev.sdpa4j.conformance.AttentionProviderConformanceKit;
import dev.sdpa4j.conformance.TensorMemory;
import dev.sdpa4j.cuda.testing.CudaTensorMemory;
import dev.sdpa4j.spi.AttentionProvider;

/**
 * The conformance kit on CUDA device tensors: the zero-copy path, every layout (padded, {@code [B, L, H, E]},
 * head-dim-strided) and broadcast mask read in place through its strides; skipped without a GPU.
 */
class MemeffProviderDeviceConformanceTest extends AttentionProviderConformanceKit {
  private final CudaMemeffProvider provider = new CudaMemeffProvider();

  @Override
  protected AttentionProvider provider() {
    return provider;
  }

  @Override
  protected TensorMemory memory() {
    return new CudaTensorMemory(provider.device(0).context());
  }
}
