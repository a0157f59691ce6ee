package dev.sdpa4j.cuda;

import java.util.Objects;

/**
 * A {@link KernelModule} loaded on first use (packaged cubin, else NVRTC, else PTX) and then shared by every thread:
 * providers hold one per device so that discovery and {@code notSupportedReasons} never load kernels.
 */
public final class LazyKernelModule {
  private final CudaContext context;
  private final KernelSource source;
  private volatile KernelModule module;

  public LazyKernelModule(CudaContext context, KernelSource source) {
    this.context = Objects.requireNonNull(context, "context");
    this.source = Objects.requireNonNull(source, "source");
  }

  /** The module, loading it on the first call. */
  public KernelModule get() {
    KernelModule m = module;
    if (m == null) {
      synchronized (this) {
        m = module;
        if (m == null) {
          m = KernelModule.load(context, source);
          module = m;
        }
      }
    }
    return m;
  }
}
