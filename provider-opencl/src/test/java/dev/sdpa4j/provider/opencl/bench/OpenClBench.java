package dev.sdpa4j.provider.opencl.bench;

import static org.jocl.CL.CL_CONTEXT_PLATFORM;
import static org.jocl.CL.CL_DEVICE_NAME;
import static org.jocl.CL.CL_DEVICE_TYPE_ALL;
import static org.jocl.CL.CL_MEM_READ_WRITE;
import static org.jocl.CL.CL_PROFILING_COMMAND_END;
import static org.jocl.CL.CL_QUEUE_PROFILING_ENABLE;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.CausalMode;
import dev.sdpa4j.DType;
import dev.sdpa4j.Device;
import dev.sdpa4j.Storage;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.provider.opencl.OpenClProvider;
import java.io.IOException;
import java.io.PrintWriter;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.jocl.CL;
import org.jocl.Pointer;
import org.jocl.Sizeof;
import org.jocl.cl_command_queue;
import org.jocl.cl_context;
import org.jocl.cl_context_properties;
import org.jocl.cl_device_id;
import org.jocl.cl_event;
import org.jocl.cl_mem;
import org.jocl.cl_platform_id;

/**
 * Forward throughput of the {@code opencl} provider on one OpenCL device, with the tensors in the benchmark's own
 * {@code cl_mem} buffers and the work on its own profiling queue (the provider's no-copy path). Shapes as issue 5:
 * B * L = 16k tokens, hidden 2048 (H = 2048 / E), E = 64 and 128, L = 512..8192, causal and not.
 *
 * <p>Time per call: the median over {@code --iters} runs, after {@code --warmup} runs, of the span between two
 * profiled markers around the call ({@code CL_PROFILING_COMMAND_END}); the wall time of call + clFinish is printed
 * too. TFLOP/s counts {@code 4 * B * H * L^2 * E}, halved for causal. Device memory is what the call needs on the
 * device: q, k, v, o and the LSE (the forward allocates no workspace), as OpenCL has no portable memory-use query.
 *
 * <p>Arguments: {@code --device N} (flattened OpenCL device index, default: the first GPU, else 0),
 * {@code --dtype fp16|bf16|fp32}, {@code --dims 64,128}, {@code --lengths 512,1024,2048,4096,8192},
 * {@code --tokens 16384}, {@code --hidden 2048}, {@code --warmup 3}, {@code --iters 10}, {@code --csv FILE}.
 */
public final class OpenClBench {
  private OpenClBench() {}

  public static void main(String[] args) throws IOException {
    int deviceIndex = -1;
    DType dtype = DType.FLOAT16;
    int[] dims = {64, 128};
    int[] lengths = {512, 1024, 2048, 4096, 8192};
    long tokens = 16384;
    int hidden = 2048;
    int warmup = 3;
    int iters = 10;
    Path csv = null;
    for (int i = 0; i < args.length; i += 2) {
      String v = args[i + 1];
      switch (args[i]) {
        case "--device" -> deviceIndex = Integer.parseInt(v);
        case "--dtype" -> dtype = DType.parse(v);
        case "--dims" -> dims = Arrays.stream(v.split(",")).mapToInt(Integer::parseInt).toArray();
        case "--lengths" -> lengths = Arrays.stream(v.split(",")).mapToInt(Integer::parseInt).toArray();
        case "--tokens" -> tokens = Long.parseLong(v);
        case "--hidden" -> hidden = Integer.parseInt(v);
        case "--warmup" -> warmup = Integer.parseInt(v);
        case "--iters" -> iters = Integer.parseInt(v);
        case "--csv" -> csv = Path.of(v);
        default -> throw new IllegalArgumentException("unknown argument " + args[i]);
      }
    }
    List<cl_platform_id> platforms = new ArrayList<>();
    List<cl_device_id> devices = devices(platforms);
    if (deviceIndex < 0) {
      deviceIndex = 0;
      for (int i = 0; i < devices.size(); i++) {
        long[] type = new long[1];
        CL.clGetDeviceInfo(devices.get(i), CL.CL_DEVICE_TYPE, Sizeof.cl_long, Pointer.to(type), null);
        if ((type[0] & CL.CL_DEVICE_TYPE_GPU) != 0) {
          deviceIndex = i;
          break;
        }
      }
    }
    cl_device_id device = devices.get(deviceIndex);
    cl_context_properties props = new cl_context_properties();
    props.addProperty(CL_CONTEXT_PLATFORM, platforms.get(deviceIndex));
    int[] err = new int[1];
    cl_context context = CL.clCreateContext(props, 1, new cl_device_id[] {device}, null, null, err);
    check(err[0], "clCreateContext");
    @SuppressWarnings("deprecation")
    cl_command_queue queue = CL.clCreateCommandQueue(context, device, CL_QUEUE_PROFILING_ENABLE, err);
    check(err[0], "clCreateCommandQueue");
    OpenClProvider provider = new OpenClProvider();
    String header = "device,dtype,E,L,B,H,causal,median_ms,wall_ms,tflops,device_mib";
    System.out.println("# " + deviceName(device) + " (opencl:" + deviceIndex + "), provider " + provider.name()
        + ", warmup " + warmup + ", iters " + iters);
    System.out.println(header);
    List<String> rows = new ArrayList<>();
    for (int e : dims) {
      for (int l : lengths) {
        long b = Math.max(1, tokens / l);
        int h = hidden / e;
        for (boolean causal : new boolean[] {false, true}) {
          String row = run(provider, context, queue, deviceIndex, deviceName(device), dtype, (int) b, h, l, e, causal,
              warmup, iters);
          System.out.println(row);
          rows.add(row);
        }
      }
    }
    if (csv != null) {
      try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(csv, StandardCharsets.UTF_8))) {
        w.println(header);
        rows.forEach(w::println);
      }
    }
    CL.clReleaseCommandQueue(queue);
    CL.clReleaseContext(context);
  }

  private static String run(OpenClProvider provider, cl_context context, cl_command_queue queue, int deviceIndex,
      String deviceName, DType dtype, int b, int h, int l, int e, boolean causal, int warmup, int iters) {
    long elems = (long) b * h * l * e;
    long bytes = elems * dtype.byteSize();
    long lseBytes = (long) b * h * l * 4;
    List<cl_mem> mems = new ArrayList<>();
    SplittableRandom rnd = new SplittableRandom(42);
    Tensor q = deviceTensor(context, queue, mems, dtype, deviceIndex, bytes, rnd, b, h, l, e);
    Tensor k = deviceTensor(context, queue, mems, dtype, deviceIndex, bytes, rnd, b, h, l, e);
    Tensor v = deviceTensor(context, queue, mems, dtype, deviceIndex, bytes, rnd, b, h, l, e);
    Tensor o = deviceTensor(context, queue, mems, dtype, deviceIndex, bytes, null, b, h, l, e);
    Tensor lse = deviceTensor(context, queue, mems, DType.FLOAT32, deviceIndex, lseBytes, null, b, h, l);
    long queueHandle = queue.getNativePointer();
    AttentionRequest r = AttentionRequest.create(q, k, v, o, lse, AttentionOptions.builder()
        .causal(causal ? CausalMode.TOP_LEFT : CausalMode.NONE).stream(queueHandle).build());
    double[] kernelMs = new double[iters];
    double[] wallMs = new double[iters];
    for (int i = 0; i < warmup + iters; i++) {
      cl_event before = new cl_event();
      cl_event after = new cl_event();
      long t0 = System.nanoTime();
      check(CL.clEnqueueMarkerWithWaitList(queue, 0, null, before), "clEnqueueMarkerWithWaitList");
      provider.forward(r);
      check(CL.clEnqueueMarkerWithWaitList(queue, 0, null, after), "clEnqueueMarkerWithWaitList");
      check(CL.clFinish(queue), "clFinish");
      long t1 = System.nanoTime();
      if (i >= warmup) {
        kernelMs[i - warmup] = (end(after) - end(before)) / 1e6;
        wallMs[i - warmup] = (t1 - t0) / 1e6;
      }
      CL.clReleaseEvent(before);
      CL.clReleaseEvent(after);
    }
    for (cl_mem m : mems) {
      CL.clReleaseMemObject(m);
    }
    double ms = median(kernelMs);
    double flops = 4.0 * b * h * (double) l * l * e * (causal ? 0.5 : 1.0);
    double mib = (4 * bytes + lseBytes) / (1024.0 * 1024.0);
    return String.format(java.util.Locale.ROOT, "%s,%s,%d,%d,%d,%d,%s,%.3f,%.3f,%.2f,%.1f", deviceName.replace(',', ' '),
        dtype.shortName(), e, l, b, h, causal, ms, median(wallMs), flops / (ms * 1e-3) / 1e12, mib);
  }

  private static Tensor deviceTensor(cl_context context, cl_command_queue queue, List<cl_mem> mems, DType dtype,
      int deviceIndex, long bytes, SplittableRandom rnd, long... shape) {
    int[] err = new int[1];
    cl_mem mem = CL.clCreateBuffer(context, CL_MEM_READ_WRITE, bytes, null, err);
    check(err[0], "clCreateBuffer(" + bytes + " bytes)");
    mems.add(mem);
    if (rnd != null) {
      try (Arena arena = Arena.ofConfined()) {
        MemorySegment host = arena.allocate(bytes, 16);
        long n = bytes / dtype.byteSize();
        for (long i = 0; i < n; i++) {
          dtype.write(host, i * dtype.byteSize(), rnd.nextDouble() * 2 - 1);
        }
        for (long off = 0; off < bytes; off += 1L << 30) {
          long len = Math.min(1L << 30, bytes - off);
          check(CL.clEnqueueWriteBuffer(queue, mem, true, off, len, Pointer.toBuffer(host.asSlice(off, len)
              .asByteBuffer()), 0, null, null), "clEnqueueWriteBuffer");
        }
      }
    }
    Storage storage = new Storage.DeviceBuffer(Device.opencl(deviceIndex), mem.getNativePointer(), 0, bytes);
    return Tensor.contiguous(dtype, storage, shape);
  }

  private static long end(cl_event event) {
    long[] t = new long[1];
    check(CL.clGetEventProfilingInfo(event, CL_PROFILING_COMMAND_END, Sizeof.cl_ulong, Pointer.to(t), null),
        "clGetEventProfilingInfo");
    return t[0];
  }

  private static double median(double[] values) {
    double[] s = values.clone();
    Arrays.sort(s);
    return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  }

  /** Every device of every platform in the order the provider numbers them; fills {@code platformOf} alongside. */
  private static List<cl_device_id> devices(List<cl_platform_id> platformOf) {
    int[] n = new int[1];
    check(CL.clGetPlatformIDs(0, null, n), "clGetPlatformIDs");
    cl_platform_id[] platforms = new cl_platform_id[n[0]];
    check(CL.clGetPlatformIDs(platforms.length, platforms, null), "clGetPlatformIDs");
    List<cl_device_id> all = new ArrayList<>();
    for (cl_platform_id p : platforms) {
      int[] m = new int[1];
      if (CL.clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 0, null, m) != CL.CL_SUCCESS || m[0] == 0) {
        continue;
      }
      cl_device_id[] ids = new cl_device_id[m[0]];
      check(CL.clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, ids.length, ids, null), "clGetDeviceIDs");
      for (cl_device_id d : ids) {
        all.add(d);
        platformOf.add(p);
      }
    }
    return all;
  }

  private static String deviceName(cl_device_id d) {
    byte[] buf = new byte[256];
    CL.clGetDeviceInfo(d, CL_DEVICE_NAME, buf.length, Pointer.to(buf), null);
    int len = 0;
    while (len < buf.length && buf[len] != 0) {
      len++;
    }
    return new String(buf, 0, len, StandardCharsets.UTF_8).trim();
  }

  private static void check(int status, String call) {
    if (status != CL.CL_SUCCESS) {
      throw new IllegalStateException(call + " failed: " + CL.stringFor_errorCode(status));
    }
  }
}
