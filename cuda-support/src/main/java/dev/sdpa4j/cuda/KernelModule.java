package dev.sdpa4j.cuda;

import static org.bytedeco.cuda.global.cudart.cuModuleGetFunction;
import static org.bytedeco.cuda.global.cudart.cuModuleLoadData;
import static org.bytedeco.cuda.global.cudart.cuModuleUnload;

import dev.sdpa4j.spi.ComputeCapability;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.SequencedMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import org.bytedeco.cuda.cudart.CUfunc_st;
import org.bytedeco.cuda.cudart.CUmod_st;
import org.bytedeco.javacpp.BytePointer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A loaded CUDA module of a provider's kernels, for one context. {@link #load} picks, in order:
 * <ol>
 *   <li>the packaged cubin for the device's exact compute capability ({@code sm_90a.cubin}, then
 *       {@code sm_90.cubin} on 9.0; {@code sm_86.cubin} on 8.6), unless the system property
 *       {@value #FORCE_NVRTC_PROPERTY} is {@code true};</li>
 *   <li>the packaged source compiled by NVRTC for exactly that architecture, cached on disk under
 *       {@value #CACHE_DIR_PROPERTY} (default {@code ~/.cache/sdpa4j/cuda}), keyed by a hash of source, the headers it
 *       includes, options, architecture and NVRTC version;</li>
 *   <li>the packaged {@code compute_80.ptx}, compiled by the driver (not when NVRTC is forced).</li>
 * </ol>
 * NVRTC is a first-use cost per machine and kernel file, then a cache hit: measured on an H100 host with NVRTC 13.0
 * for {@code sm_90a}, about 33 s for cuda-memeff's forward and 75 s for cuda-flash's backward (many specialisations).
 */
@SuppressWarnings("try") // context scopes are held for their effect (push/pop), not referenced
public final class KernelModule implements AutoCloseable {
  /** System property: {@code true} skips packaged cubins and compiles with NVRTC. */
  public static final String FORCE_NVRTC_PROPERTY = "sdpa4j.cuda.forceNvrtc";
  /** System property: the folder of the NVRTC cubin cache. */
  public static final String CACHE_DIR_PROPERTY = "sdpa4j.cuda.cacheDir";

  private static final Logger LOG = LoggerFactory.getLogger(KernelModule.class);

  /** How the module's code was obtained. */
  public enum Origin {
    /** A cubin packaged in the jar for this exact architecture. */
    PACKAGED_CUBIN,
    /** Compiled by NVRTC in this process (and written to the cache). */
    NVRTC_COMPILED,
    /** A cubin NVRTC compiled earlier, read from the disk cache. */
    NVRTC_CACHED,
    /** Packaged PTX compiled by the driver. */
    PTX_JIT
  }

  private final CudaContext context;
  private final CUmod_st module;
  private final Origin origin;
  private final String arch;
  private final ConcurrentHashMap<String, CudaFunction> functions = new ConcurrentHashMap<>();
  private final AtomicBoolean closed = new AtomicBoolean();

  private KernelModule(CudaContext context, CUmod_st module, Origin origin, String arch) {
    this.context = context;
    this.module = module;
    this.origin = origin;
    this.arch = arch;
  }

  /**
   * Loads {@code source}'s kernels for the context's device (see the class comment for the order).
   *
   * @throws CudaException when no path yields a loadable module (the message says what was tried)
   */
  public static KernelModule load(CudaContext context, KernelSource source) {
    ComputeCapability cc = context.device().computeCapability();
    String arch = nvrtcArch(cc);
    boolean force = Boolean.getBoolean(FORCE_NVRTC_PROPERTY);
    List<String> tried = new ArrayList<>();
    if (!force) {
      for (String name : cubinNames(cc)) {
        Optional<byte[]> cubin = source.read(name);
        if (cubin.isPresent()) {
          LOG.debug("{}: packaged {} for {}", source.name(), name, context.device().name());
          return new KernelModule(context, loadImage(context, cubin.get(), source.name() + "/" + name),
              Origin.PACKAGED_CUBIN, name.substring(0, name.indexOf('.')));
        }
        tried.add("no packaged " + name);
      }
    }
    try {
      return nvrtc(context, source, arch);
    } catch (CudaException e) {
      if (force) {
        throw e;
      }
      tried.add(e.getMessage());
    }
    if (cc.major() >= 8) {
      Optional<byte[]> ptx = source.read("compute_80.ptx");
      if (ptx.isPresent()) {
        LOG.warn("{}: running PTX compute_80 through the driver's JIT on {} ({})", source.name(),
            context.device().name(), tried);
        return new KernelModule(context, loadImage(context, ptx.get(), source.name() + "/compute_80.ptx"),
            Origin.PTX_JIT, "compute_80");
      }
      tried.add("no packaged compute_80.ptx");
    }
    throw new CudaException("loading kernels '" + source.name() + "' for compute capability " + cc, -1,
        "NO_KERNEL_IMAGE", String.join("; ", tried));
  }

  /** The packaged cubin names tried for {@code cc}, most specific first. */
  static List<String> cubinNames(ComputeCapability cc) {
    String plain = "sm_" + cc.major() + cc.minor();
    return cc.major() == 9 && cc.minor() == 0 ? List.of(plain + "a.cubin", plain + ".cubin") : List.of(plain + ".cubin");
  }

  /** The NVRTC architecture for {@code cc}: {@code sm_90a} on 9.0, else {@code sm_XY}. */
  static String nvrtcArch(ComputeCapability cc) {
    String plain = "sm_" + cc.major() + cc.minor();
    return cc.major() == 9 && cc.minor() == 0 ? plain + "a" : plain;
  }

  private static KernelModule nvrtc(CudaContext context, KernelSource source, String arch) {
    byte[] text = source.read(source.sourceFile()).orElseThrow(() -> new CudaException("loading kernels '"
        + source.name() + "'", -1, "NO_SOURCE", "resource " + source.resourceDir() + "/" + source.sourceFile()
        + " is missing"));
    SequencedMap<String, String> headers = source.headers(text);
    String version = Nvrtc.version();
    Path cache = cacheDir().resolve(source.name() + "-" + arch + "-"
        + key(text, headers, source.nvrtcOptions(), arch, version) + ".cubin");
    if (Files.isRegularFile(cache)) {
      try {
        byte[] cubin = Files.readAllBytes(cache);
        LOG.debug("{}: NVRTC cache hit {}", source.name(), cache);
        return new KernelModule(context, loadImage(context, cubin, cache.toString()), Origin.NVRTC_CACHED, arch);
      } catch (IOException | CudaException e) {
        LOG.warn("{}: ignoring unreadable cache entry {}: {}", source.name(), cache, e.toString());
      }
    }
    long t0 = System.nanoTime();
    byte[] cubin = Nvrtc.compile(new String(text, StandardCharsets.UTF_8), source.sourceFile(), arch,
        source.nvrtcOptions(), headers);
    LOG.info("{}: compiled {} for {} with NVRTC {} in {} ms", source.name(), source.sourceFile(), arch, version,
        (System.nanoTime() - t0) / 1_000_000);
    try {
      Files.createDirectories(cache.getParent());
      Path tmp = Files.createTempFile(cache.getParent(), cache.getFileName().toString(), ".tmp");
      Files.write(tmp, cubin);
      Files.move(tmp, cache, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      LOG.warn("{}: could not cache the NVRTC cubin at {}: {}", source.name(), cache, e.toString());
    }
    return new KernelModule(context, loadImage(context, cubin, "NVRTC " + arch), Origin.NVRTC_COMPILED, arch);
  }

  /** The NVRTC cache folder ({@value #CACHE_DIR_PROPERTY}, default {@code ~/.cache/sdpa4j/cuda}). */
  public static Path cacheDir() {
    String dir = System.getProperty(CACHE_DIR_PROPERTY);
    return dir != null ? Path.of(dir) : Path.of(System.getProperty("user.home"), ".cache", "sdpa4j", "cuda");
  }

  private static String key(byte[] text, SequencedMap<String, String> headers, List<String> options,
      String arch, String version) {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      md.update(text);
      headers.forEach((name, contents) -> md.update(("\u0000" + name + "\u0000" + contents)
          .getBytes(StandardCharsets.UTF_8)));
      md.update(String.join("\u0000", Nvrtc.DEFAULT_OPTIONS).getBytes(StandardCharsets.UTF_8));
      md.update(String.join("\u0000", options).getBytes(StandardCharsets.UTF_8));
      md.update((arch + "\u0000" + version).getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(md.digest(), 0, 12);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static CUmod_st loadImage(CudaContext context, byte[] image, String what) {
    CUmod_st module = new CUmod_st();
    try (CudaContext.Scope s = context.enter(); BytePointer data = new BytePointer(image.length + 1L)) {
      data.put(image).put(image.length, (byte) 0);
      CudaDriver.check(cuModuleLoadData(module, data), "cuModuleLoadData(" + what + ")");
    }
    return module;
  }

  public CudaContext context() {
    return context;
  }

  /** How the code was obtained. */
  public Origin origin() {
    return origin;
  }

  /** The architecture of the loaded code, e.g. {@code sm_90a} or {@code compute_80}. */
  public String arch() {
    return arch;
  }

  /**
   * The kernel named {@code name} (an {@code extern "C"} name).
   *
   * @throws CudaException ({@code CUDA_ERROR_NOT_FOUND}) when the module has no such kernel
   */
  public CudaFunction function(String name) {
    if (closed.get()) {
      throw new IllegalStateException("module unloaded");
    }
    return functions.computeIfAbsent(name, n -> {
      CUfunc_st f = new CUfunc_st();
      try (CudaContext.Scope s = context.enter()) {
        CudaDriver.check(cuModuleGetFunction(f, module, n), "cuModuleGetFunction(" + n + ")");
      }
      return new CudaFunction(this, n, f);
    });
  }

  /** Unloads the module (idempotent); its kernels must be finished. */
  @Override
  public void close() {
    if (closed.compareAndSet(false, true)) {
      try (CudaContext.Scope s = context.enter()) {
        CudaDriver.check(cuModuleUnload(module), "cuModuleUnload");
      }
    }
  }

  @Override
  public String toString() {
    return "KernelModule[" + origin + " " + arch + " on " + context.device().name() + "]";
  }
}
