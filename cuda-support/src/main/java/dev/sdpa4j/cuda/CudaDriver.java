package dev.sdpa4j.cuda;

import dev.sdpa4j.spi.AttentionProvider;
import dev.sdpa4j.spi.Capabilities;
import dev.sdpa4j.spi.DeviceInfo;
import static org.bytedeco.cuda.global.cudart.CUDA_SUCCESS;

import dev.sdpa4j.spi.Availability;
import dev.sdpa4j.spi.ComputeCapability;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerPointer;
import org.bytedeco.javacpp.SizeTPointer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The CUDA driver: a probe that never throws ({@link #availability()}), the devices it sees, and
 * {@link #check(int, String)}, which turns a failed driver call into a {@link CudaException} naming the call and
 * the error.
 *
 * <p>The probe runs once per JVM, on first use: it looks for {@code libcuda.so.1} (the driver) before touching the
 * JavaCPP bindings, so a machine without a driver gets {@code "no CUDA driver: libcuda.so.1 not found"} rather
 * than a linkage error; then it loads the bindings, calls {@code cuInit} and reads every device's attributes.
 */
public final class CudaDriver {
  private static final Logger LOG = LoggerFactory.getLogger(CudaDriver.class);
  private static final String DRIVER_LIBRARY = System.mapLibraryName("cuda").replace(".so", ".so.1");

  private record State(Availability availability, List<CudaDevice> devices, int driverVersion) {}

  private static final class Holder {
    static final State STATE = probe();
  }

  private CudaDriver() {}

  /** Whether the driver loaded and sees at least one device; the reason when not. Never throws. */
  public static Availability availability() {
    return Holder.STATE.availability();
  }

  /**
   * Like {@link #availability()}, and also unavailable when no device reaches {@code minimum}, with the reason
   * {@code "compute capability 7.5 < 8.0"} (the best device's capability).
   */
  public static Availability availability(ComputeCapability minimum) {
    return availability(availability(), devices(), minimum);
  }

  static Availability availability(Availability driver, List<CudaDevice> devices, ComputeCapability minimum) {
    if (!driver.available()) {
      return driver;
    }
    ComputeCapability best = null;
    for (CudaDevice d : devices) {
      if (best == null || d.computeCapability().compareTo(best) > 0) {
        best = d.computeCapability();
      }
    }
    if (best == null) {
      return Availability.unavailable("no CUDA device");
    }
    if (best.compareTo(minimum) < 0) {
      return Availability.unavailable("compute capability " + best + " < " + minimum);
    }
    return driver;
  }

  /**
   * A provider's {@link AttentionProvider#devices()}: every device of at least compute capability {@code minimum},
   * each with the same capabilities; empty when the driver is unavailable or no device qualifies.
   */
  public static List<DeviceInfo> deviceInfos(ComputeCapability minimum, Capabilities capabilities) {
    if (!availability(minimum).available()) {
      return List.of();
    }
    return devices().stream()
        .filter(d -> d.computeCapability().compareTo(minimum) >= 0)
        .map(d -> new DeviceInfo(d.device(), d.name(), d.describe(), d.totalMemoryBytes(), capabilities))
        .toList();
  }

  /** The devices seen by the driver, in ordinal order; empty when unavailable. */
  public static List<CudaDevice> devices() {
    return Holder.STATE.devices();
  }

  /**
   * The device with this ordinal.
   *
   * @throws IllegalArgumentException when no such device exists (or the driver is unavailable)
   */
  public static CudaDevice device(int ordinal) {
    List<CudaDevice> ds = devices();
    if (ordinal < 0 || ordinal >= ds.size()) {
      throw new IllegalArgumentException("no CUDA device " + ordinal + " (" + ds.size() + " present"
          + (availability().available() ? "" : "; " + availability().reason()) + ")");
    }
    return ds.get(ordinal);
  }

  /** The driver's CUDA version as {@code 1000 * major + 10 * minor} (13000 for 13.0); 0 when unavailable. */
  public static int driverVersion() {
    return Holder.STATE.driverVersion();
  }

  static String driverVersionString() {
    int v = driverVersion();
    return v / 1000 + "." + (v % 1000) / 10;
  }

  /** Throws {@link IllegalStateException} with the reason when the driver is unavailable. */
  static void requireAvailable() {
    Availability a = availability();
    if (!a.available()) {
      throw new IllegalStateException("CUDA is unavailable: " + a.reason());
    }
  }

  /**
   * Checks a driver API result.
   *
   * @param result the {@code CUresult}
   * @param call   the call and its salient arguments, for the message
   * @throws CudaException naming {@code call} and the error when {@code result} is not {@code CUDA_SUCCESS}
   */
  public static void check(int result, String call) {
    if (result != CUDA_SUCCESS) {
      throw error(result, call);
    }
  }

  static CudaException error(int result, String call) {
    return new CudaException(call, result, errorName(result), errorString(result));
  }

  /** The symbolic name of a {@code CUresult}, e.g. {@code CUDA_ERROR_OUT_OF_MEMORY}. */
  public static String errorName(int result) {
    return describe(result, true);
  }

  private static String errorString(int result) {
    return describe(result, false);
  }

  private static String describe(int result, boolean name) {
    try (PointerPointer<BytePointer> pp = new PointerPointer<>(1)) {
      int r = name ? cudart.cuGetErrorName(result, pp) : cudart.cuGetErrorString(result, pp);
      if (r == CUDA_SUCCESS && pp.get(0) != null) {
        return pp.getString(0);
      }
    }
    return name ? "CUresult " + result : "";
  }

  private static State probe() {
    try (Arena arena = Arena.ofConfined()) {
      SymbolLookup.libraryLookup(DRIVER_LIBRARY, arena);
    } catch (IllegalArgumentException | IllegalCallerException | UnsupportedOperationException e) {
      return unavailable("no CUDA driver: " + DRIVER_LIBRARY + " not found");
    }
    int init;
    try {
      init = cudart.cuInit(0);
    } catch (LinkageError e) {
      return unavailable("CUDA bindings failed to load (" + e.getClass().getSimpleName() + ": " + e.getMessage()
          + "); the CUDA runtime libcudart.so.13 must be on the library path");
    }
    if (init != CUDA_SUCCESS) {
      String name = errorName(init);
      return unavailable("CUDA_ERROR_NO_DEVICE".equals(name) ? "no CUDA device" : "cuInit failed: " + name);
    }
    int[] version = new int[1];
    cudart.cuDriverGetVersion(version);
    int[] count = new int[1];
    int r = cudart.cuDeviceGetCount(count);
    if (r != CUDA_SUCCESS || count[0] == 0) {
      return unavailable(r != CUDA_SUCCESS ? "cuDeviceGetCount failed: " + errorName(r) : "no CUDA device");
    }
    List<CudaDevice> devices = new ArrayList<>();
    try {
      for (int i = 0; i < count[0]; i++) {
        devices.add(readDevice(i));
      }
    } catch (CudaException e) {
      return unavailable(e.getMessage());
    }
    LOG.debug("CUDA driver {}: {}", version[0], devices);
    return new State(Availability.ok(), List.copyOf(devices), version[0]);
  }

  private static CudaDevice readDevice(int ordinal) {
    int[] dev = new int[1];
    check(cudart.cuDeviceGet(dev, ordinal), "cuDeviceGet(" + ordinal + ")");
    byte[] name = new byte[256];
    check(cudart.cuDeviceGetName(name, name.length, dev[0]), "cuDeviceGetName(" + ordinal + ")");
    int len = 0;
    while (len < name.length && name[len] != 0) {
      len++;
    }
    long total;
    try (SizeTPointer bytes = new SizeTPointer(1)) {
      check(cudart.cuDeviceTotalMem(bytes, dev[0]), "cuDeviceTotalMem(" + ordinal + ")");
      total = bytes.get();
    }
    int major = attribute(dev[0], cudart.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
    int minor = attribute(dev[0], cudart.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
    int sms = attribute(dev[0], cudart.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
    int smem = attribute(dev[0], cudart.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
    long memoryClockKhz = attribute(dev[0], cudart.CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE);
    int busBits = attribute(dev[0], cudart.CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH);
    long l2 = attribute(dev[0], cudart.CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE);
    return new CudaDevice(ordinal, new String(name, 0, len, java.nio.charset.StandardCharsets.UTF_8),
        new ComputeCapability(major, minor), total, sms, smem, 2 * memoryClockKhz * 1000 * busBits / 8, l2, busBits);
  }

  private static int attribute(int dev, int attribute) {
    int[] v = new int[1];
    check(cudart.cuDeviceGetAttribute(v, attribute, dev), "cuDeviceGetAttribute(" + attribute + ")");
    return v[0];
  }

  private static State unavailable(String reason) {
    LOG.debug("CUDA unavailable: {}", reason);
    return new State(Availability.unavailable(reason), List.of(), 0);
  }
}
