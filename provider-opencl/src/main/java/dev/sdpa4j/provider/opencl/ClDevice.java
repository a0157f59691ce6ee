package dev.sdpa4j.provider.opencl;

import static org.jocl.CL.CL_DEVICE_EXTENSIONS;
import static org.jocl.CL.CL_DEVICE_GLOBAL_MEM_SIZE;
import static org.jocl.CL.CL_DEVICE_LOCAL_MEM_SIZE;
import static org.jocl.CL.CL_DEVICE_MAX_COMPUTE_UNITS;
import static org.jocl.CL.CL_DEVICE_MAX_MEM_ALLOC_SIZE;
import static org.jocl.CL.CL_DEVICE_MAX_WORK_GROUP_SIZE;
import static org.jocl.CL.CL_DEVICE_NAME;
import static org.jocl.CL.CL_DEVICE_TYPE;
import static org.jocl.CL.CL_DEVICE_TYPE_ALL;
import static org.jocl.CL.CL_DEVICE_TYPE_CPU;
import static org.jocl.CL.CL_DEVICE_TYPE_GPU;
import static org.jocl.CL.CL_DEVICE_VENDOR;
import static org.jocl.CL.CL_DEVICE_VERSION;
import static org.jocl.CL.CL_DEVICE_NOT_FOUND;
import static org.jocl.CL.CL_DRIVER_VERSION;
import static org.jocl.CL.CL_PLATFORM_NAME;
import static org.jocl.CL.CL_PLATFORM_VERSION;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.jocl.CL;
import org.jocl.Pointer;
import org.jocl.Sizeof;
import org.jocl.cl_device_id;
import org.jocl.cl_platform_id;

/**
 * One OpenCL device and the facts the provider chooses kernels by.
 *
 * @param index          position in the flattened list of every platform's devices ({@code Device.opencl(index)})
 * @param platform       the platform
 * @param id             the device
 * @param platformName   e.g. "NVIDIA CUDA", "Portable Computing Language"
 * @param platformVersion e.g. "OpenCL 3.0 CUDA 13.0.88"
 * @param name           the device's name
 * @param vendor         the device's vendor
 * @param driverVersion  the driver version, part of the kernel binary cache key
 * @param deviceVersion  e.g. "OpenCL 3.0 CUDA"
 * @param type           {@code CL_DEVICE_TYPE_*} bits
 * @param computeUnits   compute units
 * @param maxWorkGroup   the largest work-group
 * @param localMemBytes  local memory per work-group
 * @param globalMemBytes global memory
 * @param maxAllocBytes  the largest single buffer
 * @param fp16           whether the device has {@code cl_khr_fp16}
 */
record ClDevice(int index, cl_platform_id platform, cl_device_id id, String platformName, String platformVersion,
                String name, String vendor, String driverVersion, String deviceVersion, long type, int computeUnits,
                long maxWorkGroup, long localMemBytes, long globalMemBytes, long maxAllocBytes, boolean fp16) {

  boolean isGpu() {
    return (type & CL_DEVICE_TYPE_GPU) != 0;
  }

  boolean isCpu() {
    return (type & CL_DEVICE_TYPE_CPU) != 0;
  }

  String typeName() {
    return isGpu() ? "GPU" : isCpu() ? "CPU" : "accelerator";
  }

  /** Facts for {@code sdpa4j info}. */
  String describe() {
    return typeName() + ", " + platformName + " (" + platformVersion + "), driver " + driverVersion + ", "
        + computeUnits + " compute units, local memory " + localMemBytes / 1024 + " KiB, work-group up to "
        + maxWorkGroup + (fp16 ? ", cl_khr_fp16" : "");
  }

  /** Every device of every platform, in platform order then device order. */
  static List<ClDevice> discover() {
    JvmSignalHandlers handlers = JvmSignalHandlers.INSTANCE; // captured before the first OpenCL call loads a driver
    try {
      return discoverDevices();
    } finally {
      handlers.restore("OpenCL platform discovery");
    }
  }

  private static List<ClDevice> discoverDevices() {
    int[] count = new int[1];
    ClStatus.call("clGetPlatformIDs", () -> CL.clGetPlatformIDs(0, null, count));
    cl_platform_id[] platforms = new cl_platform_id[count[0]];
    if (platforms.length > 0) {
      ClStatus.call("clGetPlatformIDs", () -> CL.clGetPlatformIDs(platforms.length, platforms, null));
    }
    List<ClDevice> devices = new ArrayList<>();
    for (cl_platform_id p : platforms) {
      int[] n = new int[1];
      int status = CL.clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 0, null, n);
      if (status == CL_DEVICE_NOT_FOUND || n[0] == 0) {
        continue;
      }
      ClStatus.check(status, "clGetDeviceIDs");
      cl_device_id[] ids = new cl_device_id[n[0]];
      ClStatus.call("clGetDeviceIDs", () -> CL.clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, ids.length, ids, null));
      String pName = platformString(p, CL_PLATFORM_NAME);
      String pVersion = platformString(p, CL_PLATFORM_VERSION);
      for (cl_device_id d : ids) {
        String ext = deviceString(d, CL_DEVICE_EXTENSIONS);
        devices.add(new ClDevice(devices.size(), p, d, pName, pVersion, deviceString(d, CL_DEVICE_NAME),
            deviceString(d, CL_DEVICE_VENDOR), deviceString(d, CL_DRIVER_VERSION), deviceString(d, CL_DEVICE_VERSION),
            deviceLong(d, CL_DEVICE_TYPE), (int) deviceInt(d, CL_DEVICE_MAX_COMPUTE_UNITS),
            deviceSize(d, CL_DEVICE_MAX_WORK_GROUP_SIZE), deviceLong(d, CL_DEVICE_LOCAL_MEM_SIZE),
            deviceLong(d, CL_DEVICE_GLOBAL_MEM_SIZE), deviceLong(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE),
            List.of(ext.split("\\s+")).contains("cl_khr_fp16")));
      }
    }
    return devices;
  }

  private static String platformString(cl_platform_id p, int param) {
    long[] size = new long[1];
    ClStatus.call("clGetPlatformInfo", () -> CL.clGetPlatformInfo(p, param, 0, null, size));
    byte[] buf = new byte[(int) size[0]];
    ClStatus.call("clGetPlatformInfo", () -> CL.clGetPlatformInfo(p, param, buf.length, Pointer.to(buf), null));
    return cString(buf);
  }

  private static String deviceString(cl_device_id d, int param) {
    long[] size = new long[1];
    ClStatus.call("clGetDeviceInfo", () -> CL.clGetDeviceInfo(d, param, 0, null, size));
    byte[] buf = new byte[(int) size[0]];
    ClStatus.call("clGetDeviceInfo", () -> CL.clGetDeviceInfo(d, param, buf.length, Pointer.to(buf), null));
    return cString(buf);
  }

  private static long deviceLong(cl_device_id d, int param) {
    long[] v = new long[1];
    ClStatus.call("clGetDeviceInfo", () -> CL.clGetDeviceInfo(d, param, Sizeof.cl_long, Pointer.to(v), null));
    return v[0];
  }

  private static long deviceInt(cl_device_id d, int param) {
    int[] v = new int[1];
    ClStatus.call("clGetDeviceInfo", () -> CL.clGetDeviceInfo(d, param, Sizeof.cl_int, Pointer.to(v), null));
    return v[0] & 0xFFFF_FFFFL;
  }

  private static long deviceSize(cl_device_id d, int param) {
    long[] v = new long[1];
    ClStatus.call("clGetDeviceInfo", () -> CL.clGetDeviceInfo(d, param, Sizeof.size_t, Pointer.to(v), null));
    return v[0];
  }

  private static String cString(byte[] buf) {
    int n = 0;
    while (n < buf.length && buf[n] != 0) {
      n++;
    }
    return new String(buf, 0, n, StandardCharsets.UTF_8).trim();
  }
}
