package dev.sdpa4j.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.SequencedMap;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Where a provider's kernels are packaged: a resource folder holding per-architecture cubins
 * ({@code sm_80.cubin}, {@code sm_86.cubin}, {@code sm_89.cubin}, {@code sm_90a.cubin}), a portable PTX
 * ({@code compute_80.ptx}) and the CUDA C++ source for NVRTC, with the headers it includes by quoted name
 * ({@code #include "x.cuh"}) packaged beside it: NVRTC has no include path, so {@link #headers(byte[])} hands them over.
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

  private static final Pattern QUOTED_INCLUDE = Pattern.compile("(?m)^\\s*#\\s*include\\s+\"([^\"]+)\"");

  /**
   * The headers {@code text} includes by quoted name, and the headers those include, read from {@link #resourceDir}:
   * name to contents, in the order first met. Angle-bracket includes are left to NVRTC.
   *
   * @throws CudaException when an included header is not packaged (names the header and who includes it)
   */
  public SequencedMap<String, String> headers(byte[] text) {
    SequencedMap<String, String> found = new LinkedHashMap<>();
    Deque<Map.Entry<String, String>> todo = new ArrayDeque<>();
    todo.add(Map.entry(sourceFile, new String(text, StandardCharsets.UTF_8)));
    while (!todo.isEmpty()) {
      Map.Entry<String, String> file = todo.poll();
      Matcher m = QUOTED_INCLUDE.matcher(file.getValue());
      while (m.find()) {
        String header = m.group(1);
        if (found.containsKey(header)) {
          continue;
        }
        byte[] bytes = read(header).orElseThrow(() -> new CudaException("loading kernels '" + name + "'", -1,
            "NO_HEADER", "header " + header + " included by " + file.getKey() + " is not packaged in " + resourceDir));
        String contents = new String(bytes, StandardCharsets.UTF_8);
        found.put(header, contents);
        todo.add(Map.entry(header, contents));
      }
    }
    return found;
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
