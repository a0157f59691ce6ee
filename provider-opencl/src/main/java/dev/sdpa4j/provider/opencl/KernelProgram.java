package dev.sdpa4j.provider.opencl;

import static org.jocl.CL.CL_KERNEL_WORK_GROUP_SIZE;
import static org.jocl.CL.CL_PROGRAM_BINARIES;
import static org.jocl.CL.CL_PROGRAM_BINARY_SIZES;
import static org.jocl.CL.CL_PROGRAM_BUILD_LOG;

import dev.sdpa4j.DType;
import dev.sdpa4j.ProviderException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.concurrent.ConcurrentLinkedDeque;
import org.jocl.CL;
import org.jocl.Pointer;
import org.jocl.Sizeof;
import org.jocl.cl_context;
import org.jocl.cl_device_id;
import org.jocl.cl_kernel;
import org.jocl.cl_program;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The kernel family of {@code flash_attention.cl} compiled for one device, storage type and head-dim bound, with a
 * pool of kernel objects (a {@code cl_kernel} holds its arguments, so each concurrent call borrows its own).
 */
final class KernelProgram {
  static final String SOURCE_NAME = "flash_attention.cl";
  static final String SOURCE = loadSource();
  /** The system property holding extra OpenCL build options, appended to the provider's (e.g. {@code -cl-mad-enable}). */
  static final String EXTRA_OPTIONS_PROPERTY = "sdpa4j.opencl.buildOptions";

  private static final Logger LOG = LoggerFactory.getLogger(KernelProgram.class);

  private final cl_program program;
  private final TileTraits traits;
  private final ConcurrentLinkedDeque<Kernels> idle = new ConcurrentLinkedDeque<>();

  /** The four kernels of one borrower. */
  record Kernels(cl_kernel forward, cl_kernel preprocess, cl_kernel keyValueGrad, cl_kernel queryGrad) {}

  private KernelProgram(cl_program program, TileTraits traits) {
    this.program = program;
    this.traits = traits;
  }

  TileTraits traits() {
    return traits;
  }

  /** A set of kernels for the calling thread's exclusive use until {@link #release}. */
  Kernels borrow() {
    Kernels k = idle.poll();
    return k != null ? k : createKernels(program);
  }

  void release(Kernels kernels) {
    idle.push(kernels);
  }

  /**
   * The head-dim bound of the family that serves head dims up to {@code headDim} on {@code device}: on GPUs the
   * smallest of 64, 128, 256 (accumulators live in registers, so a tight bound matters); on CPUs always 256, as
   * one family per storage type builds faster than three and runs as fast.
   */
  static int headDimBucket(ClDevice device, long headDim) {
    if (device.isCpu()) {
      return 256;
    }
    return headDim <= 64 ? 64 : headDim <= 128 ? 128 : 256;
  }

  /** The build options of a family. */
  static String options(ClDevice device, DType dtype, int dmax, TileTraits traits) {
    int storage = switch (dtype) {
      case FLOAT32 -> 0;
      case FLOAT16 -> 1;
      case BFLOAT16 -> 2;
      default -> throw new IllegalArgumentException("no kernels for " + dtype);
    };
    String extra = System.getProperty(EXTRA_OPTIONS_PROPERTY, "").trim();
    return "-DSTORAGE=" + storage + " -DHAS_FP16=" + (device.fp16() ? 1 : 0) + " -DDMAX=" + dmax + " "
        + traits.buildOptions() + (extra.isEmpty() ? "" : " " + extra);
  }

  /**
   * Builds (or loads from {@code cache}) the family for {@code device} in {@code context}, shrinking the tiles
   * when the compiled kernels cannot run the preferred work-group size.
   */
  static KernelProgram build(cl_context context, ClDevice device, DType dtype, int dmax, Optional<BinaryCache> cache) {
    TileTraits traits = TileTraits.forDevice(device, dmax).orElseThrow(() -> new ProviderException(
        "no tile size fits head dims up to " + dmax + " on " + device.name() + " (local memory "
            + device.localMemBytes() + " bytes, work-group up to " + device.maxWorkGroup() + ")"));
    while (true) {
      String options = options(device, dtype, dmax, traits);
      cl_program program = compile(context, device, SOURCE, options, cache);
      Kernels probe = createKernels(program);
      long limit = Math.min(Math.min(workGroupLimit(probe.forward(), device.id()),
          workGroupLimit(probe.keyValueGrad(), device.id())), workGroupLimit(probe.queryGrad(), device.id()));
      if (limit >= traits.workGroupSize()) {
        KernelProgram p = new KernelProgram(program, traits);
        p.release(probe);
        return p;
      }
      releaseKernels(probe);
      CL.clReleaseProgram(program);
      TileTraits current = traits;
      traits = traits.smaller(device, dmax).orElseThrow(() -> new ProviderException("the attention kernels for "
          + device.name() + " run at most " + limit + " work-items per work-group, fewer than tiles "
          + current + " need"));
      LOG.debug("kernels on {} allow {} work-items per group; retrying with tiles {}", device.name(), limit, traits);
    }
  }

  /**
   * Builds {@code source} for {@code device}: from the cached binary when there is a good one, else from source
   * (then caching the binary). A failed build throws with the compiler's log.
   */
  static cl_program compile(cl_context context, ClDevice device, String source, String options,
      Optional<BinaryCache> cache) {
    try {
      return compileOrLoad(context, device, source, options, cache);
    } finally {
      JvmSignalHandlers.INSTANCE.restore("clBuildProgram");
    }
  }

  private static cl_program compileOrLoad(cl_context context, ClDevice device, String source, String options,
      Optional<BinaryCache> cache) {
    cl_device_id[] devices = {device.id()};
    String key = BinaryCache.key(device, source, options);
    if (cache.isPresent()) {
      Optional<byte[]> binary = cache.get().load(key);
      if (binary.isPresent()) {
        int[] status = new int[1];
        int[] err = new int[1];
        cl_program p = CL.clCreateProgramWithBinary(context, 1, devices, new long[] {binary.get().length},
            new byte[][] {binary.get()}, status, err);
        if (err[0] == CL.CL_SUCCESS && status[0] == CL.CL_SUCCESS
            && CL.clBuildProgram(p, 1, devices, options, null, null) == CL.CL_SUCCESS) {
          LOG.debug("loaded cached kernels {} for {}", key, device.name());
          return p;
        }
        if (p != null && err[0] == CL.CL_SUCCESS) {
          CL.clReleaseProgram(p);
        }
        cache.get().evict(key);
      }
    }
    long start = System.nanoTime();
    cl_program p = ClStatus.create("clCreateProgramWithSource(" + SOURCE_NAME + ")",
        err -> CL.clCreateProgramWithSource(context, 1, new String[] {source}, null, err));
    int status = CL.clBuildProgram(p, 1, devices, options, null, null);
    if (status != CL.CL_SUCCESS) {
      String log = buildLog(p, device.id());
      CL.clReleaseProgram(p);
      throw new OpenClException(status, "clBuildProgram(" + SOURCE_NAME + ", " + options + ") on " + device.name(),
          "build log:\n" + log);
    }
    LOG.debug("compiled {} with {} for {} in {} ms", SOURCE_NAME, options, device.name(),
        (System.nanoTime() - start) / 1_000_000);
    cache.ifPresent(c -> binary(p).ifPresent(b -> c.store(key, b)));
    return p;
  }

  /** The build log of {@code program} on {@code device}. */
  static String buildLog(cl_program program, cl_device_id device) {
    long[] size = new long[1];
    if (CL.clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, 0, null, size) != CL.CL_SUCCESS) {
      return "(no build log)";
    }
    byte[] buf = new byte[(int) size[0]];
    CL.clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, buf.length, Pointer.to(buf), null);
    int n = buf.length;
    while (n > 0 && buf[n - 1] == 0) {
      n--;
    }
    return new String(buf, 0, n, StandardCharsets.UTF_8);
  }

  private static Optional<byte[]> binary(cl_program program) {
    long[] sizes = new long[1];
    if (CL.clGetProgramInfo(program, CL_PROGRAM_BINARY_SIZES, Sizeof.size_t, Pointer.to(sizes), null) != CL.CL_SUCCESS
        || sizes[0] <= 0 || sizes[0] > Integer.MAX_VALUE) {
      return Optional.empty();
    }
    byte[] bin = new byte[(int) sizes[0]];
    Pointer[] pointers = {Pointer.to(bin)};
    if (CL.clGetProgramInfo(program, CL_PROGRAM_BINARIES, Sizeof.POINTER, Pointer.to(pointers), null) != CL.CL_SUCCESS) {
      return Optional.empty();
    }
    return Optional.of(bin);
  }

  private static Kernels createKernels(cl_program program) {
    return new Kernels(kernel(program, "attn_fwd"), kernel(program, "attn_bwd_pre"), kernel(program, "attn_bwd_dkdv"),
        kernel(program, "attn_bwd_dq"));
  }

  private static cl_kernel kernel(cl_program program, String name) {
    return ClStatus.create("clCreateKernel(" + name + ")", err -> CL.clCreateKernel(program, name, err));
  }

  private static void releaseKernels(Kernels k) {
    CL.clReleaseKernel(k.forward());
    CL.clReleaseKernel(k.preprocess());
    CL.clReleaseKernel(k.keyValueGrad());
    CL.clReleaseKernel(k.queryGrad());
  }

  private static long workGroupLimit(cl_kernel kernel, cl_device_id device) {
    long[] v = new long[1];
    ClStatus.call("clGetKernelWorkGroupInfo(CL_KERNEL_WORK_GROUP_SIZE)",
        () -> CL.clGetKernelWorkGroupInfo(kernel, device, CL_KERNEL_WORK_GROUP_SIZE, Sizeof.size_t, Pointer.to(v), null));
    return v[0];
  }

  private static String loadSource() {
    try (InputStream in = KernelProgram.class.getResourceAsStream(SOURCE_NAME)) {
      if (in == null) {
        throw new IllegalStateException("kernel source " + SOURCE_NAME + " missing from the provider's jar");
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
