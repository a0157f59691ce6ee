package dev.sdpa4j.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Function;

/**
 * Where a provider's kernels are packaged: a resource folder holding per-architecture cubins
 * ({@code sm_80.cubin}, {@code sm_86.cubin}, {@code sm_89.cubin}, {@code sm_90a.cubin}), a portable PTX
 * ({@code compute_80.ptx}) and the CUDA C++ source for NVRTC.
 *
 * @param name          a short name for messages and the disk cache, e.g. {@code flash}
 * @param resourceDir   the folder, e.g. {@code /dev/sdpa4j/cuda/flash}
 * @param sourceFile    the source file in that folder, e.g. {@code flash_fwd.cu}
 * @param nvrtcOptions  extra NVRTC options (the architecture is added by the loader)
 * @param opener        opens a resource by absolute name; pass {@code MyClass.class::getResourceAsStream} so that
 *                      the lookup runs in the provider's own module
 */
public record KernelSource(String name, String resourceDir, String sourceFile, List<String> nvrtcOptions,
                           Function<String, InputStream> opener) {
  public KernelSource {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(resourceDir, "resourceDir");
    Objects.requireNonNull(sourceFile, "sourceFile");
    nvrtcOptions = List.copyOf(nvrtcOptions);
    Objects.requireNonNull(opener, "opener");
  }

  /** The bytes of resource {@code file} in {@link #resourceDir}, if packaged. */
  public Optional<byte[]> read(String file) {
    try (InputStream in = opener.apply(resourceDir + "/" + file)) {
      return in == null ? Optional.empty() : Optional.of(in.readAllBytes());
    } catch (IOException e) {
      throw new UncheckedIOException("reading " + resourceDir + "/" + file, e);
    }
  }
}
