package dev.sdpa4j.cuda;

import static org.bytedeco.cuda.global.nvrtc.NVRTC_SUCCESS;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SequencedCollection;
import java.util.SequencedMap;
import org.bytedeco.cuda.global.nvrtc;
import org.bytedeco.cuda.nvrtc._nvrtcProgram;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerPointer;
import org.bytedeco.javacpp.SizeTPointer;

/** Run-time compilation of CUDA C++ to a cubin with NVRTC ({@code libnvrtc.so.13}), loaded on first use. */
public final class Nvrtc {
  private Nvrtc() {}

  /**
   * NVRTC's version as {@code "13.0"}.
   *
   * @throws CudaException when NVRTC cannot be loaded (message names the missing library)
   */
  public static String version() {
    int[] major = new int[1];
    int[] minor = new int[1];
    check(call(() -> nvrtc.nvrtcVersion(major, minor)), "nvrtcVersion");
    return major[0] + "." + minor[0];
  }

  /**
   * Options every compilation gets: NVRTC compiles device code only, so entities without an execution-space
   * annotation (a generic lambda's call operator inside a kernel, for one) are device code, as nvcc treats them there;
   * without it NVRTC rejects them as host functions in JIT mode.
   */
  static final List<String> DEFAULT_OPTIONS = List.of("-default-device");

  /**
   * Compiles {@code source} for {@code arch} (e.g. {@code sm_90a}) with {@link #DEFAULT_OPTIONS} and returns the
   * cubin.
   *
   * @param programName a file name for diagnostics, e.g. {@code flash_fwd.cu}
   * @param options     further options, e.g. {@code -std=c++17}
   * @param headers     the headers the source may include by quoted name: name to contents
   *                    ({@link KernelSource#headers(byte[])})
   * @throws CudaException when NVRTC is missing or compilation fails (the message holds the compiler log)
   */
  public static byte[] compile(String source, String programName, String arch, List<String> options,
      SequencedMap<String, String> headers) {
    _nvrtcProgram program = new _nvrtcProgram();
    try (BytePointer src = new BytePointer(source, StandardCharsets.UTF_8);
         BytePointer name = new BytePointer(programName, StandardCharsets.UTF_8);
         PointerPointer<BytePointer> contents = headerPointers(headers.sequencedValues());
         PointerPointer<BytePointer> names = headerPointers(headers.sequencedKeySet())) {
      check(call(() -> nvrtc.nvrtcCreateProgram(program, src, name, headers.size(), contents, names)),
          "nvrtcCreateProgram(" + programName + ")");
    }
    try {
      List<String> all = new ArrayList<>();
      all.add("--gpu-architecture=" + arch);
      all.addAll(DEFAULT_OPTIONS);
      all.addAll(options);
      int result;
      try (PointerPointer<BytePointer> opts = new PointerPointer<>(all.toArray(new String[0]))) {
        result = nvrtc.nvrtcCompileProgram(program, all.size(), opts);
      }
      if (result != NVRTC_SUCCESS) {
        throw new CudaException("nvrtcCompileProgram(" + programName + ", " + arch + ")", result,
            nvrtc.nvrtcGetErrorString(result).getString(), log(program));
      }
      try (SizeTPointer size = new SizeTPointer(1)) {
        check(nvrtc.nvrtcGetCUBINSize(program, size), "nvrtcGetCUBINSize");
        byte[] cubin = new byte[(int) size.get()];
        check(nvrtc.nvrtcGetCUBIN(program, cubin), "nvrtcGetCUBIN");
        return cubin;
      }
    } finally {
      nvrtc.nvrtcDestroyProgram(program);
    }
  }

  /** Null for none (NVRTC's convention), else the strings as NUL-terminated bytes, like the options below. */
  private static PointerPointer<BytePointer> headerPointers(SequencedCollection<String> strings) {
    return strings.isEmpty() ? null : new PointerPointer<>(strings.toArray(String[]::new));
  }

  private static String log(_nvrtcProgram program) {
    try (SizeTPointer size = new SizeTPointer(1)) {
      if (nvrtc.nvrtcGetProgramLogSize(program, size) != NVRTC_SUCCESS || size.get() <= 1) {
        return "";
      }
      byte[] log = new byte[(int) size.get()];
      nvrtc.nvrtcGetProgramLog(program, log);
      return new String(log, 0, log.length - 1, StandardCharsets.UTF_8).strip();
    }
  }

  private interface Call {
    int run();
  }

  private static int call(Call c) {
    try {
      return c.run();
    } catch (LinkageError e) {
      throw new CudaException("loading NVRTC", -1, "NVRTC_UNAVAILABLE",
          "libnvrtc.so.13 must be on the library path: " + e.getMessage());
    }
  }

  private static void check(int result, String call) {
    if (result != NVRTC_SUCCESS) {
      throw new CudaException(call, result, nvrtc.nvrtcGetErrorString(result).getString(), "");
    }
  }
}
