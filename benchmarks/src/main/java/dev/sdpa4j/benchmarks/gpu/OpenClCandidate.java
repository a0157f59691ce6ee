package dev.sdpa4j.benchmarks.gpu;

import static org.jocl.CL.CL_DEVICE_TYPE;
import static org.jocl.CL.CL_DEVICE_TYPE_ALL;
import static org.jocl.CL.CL_DEVICE_TYPE_GPU;
import static org.jocl.CL.CL_MEM_READ_WRITE;
import static org.jocl.CL.CL_SUCCESS;
import static org.jocl.CL.CL_TRUE;
import static org.jocl.CL.clCreateBuffer;
import static org.jocl.CL.clCreateCommandQueue;
import static org.jocl.CL.clCreateContext;
import static org.jocl.CL.clEnqueueReadBuffer;
import static org.jocl.CL.clEnqueueWriteBuffer;
import static org.jocl.CL.clFinish;
import static org.jocl.CL.clGetDeviceIDs;
import static org.jocl.CL.clGetDeviceInfo;
import static org.jocl.CL.clGetPlatformIDs;
import static org.jocl.CL.clReleaseContext;
import static org.jocl.CL.clReleaseMemObject;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.AttentionResult;
import dev.sdpa4j.DType;
import dev.sdpa4j.Device;
import dev.sdpa4j.ProviderScope;
import dev.sdpa4j.Sdpa;
import dev.sdpa4j.Storage;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.benchmarks.BenchCase;
import dev.sdpa4j.benchmarks.Candidate;
import dev.sdpa4j.benchmarks.InputSets;
import dev.sdpa4j.benchmarks.Pass;
import dev.sdpa4j.spi.AttentionProvider;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.IntStream;
import org.jocl.Pointer;
import org.jocl.cl_command_queue;
import org.jocl.cl_context;
import org.jocl.cl_device_id;
import org.jocl.cl_mem;
import org.jocl.cl_platform_id;

/**
 * {@code provider-opencl} on its device path: the inputs in {@code cl_mem} buffers of an OpenCL context of the
 * provider's device (filled from {@link GpuInputs#value}, the same numbers the CUDA candidates use), called through
 * the front door with the benchmark's command queue in {@link AttentionOptions#stream()} (the provider queues its
 * kernels there, no copies); one context and queue serve every case. Timed by the wall clock from the call to {@code clFinish}, so launch overhead is
 * included. OpenCL has no free-memory query: memory is not measured.
 */
public final class OpenClCandidate implements Candidate {
  private final AttentionProvider provider;
  private final int index;
  private final String name;
  /** One context and in-order queue for the candidate's lifetime (the provider caches its kernels per context). */
  private cl_context context;
  private cl_command_queue queue;

  /**
   * @param provider the {@code opencl} provider
   * @param index    the provider's device index ({@code Device.opencl(index)})
   * @param name     the name in tables
   */
  public OpenClCandidate(AttentionProvider provider, int index, String name) {
    this.provider = provider;
    this.index = index;
    this.name = name;
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public String kind() {
    return "fused";
  }

  @Override
  public String device() {
    return "opencl:" + index;
  }

  @Override
  public Optional<String> unsupported(BenchCase c) {
    long largest = Math.max(GpuInputs.elements(c, GpuInputs.QUERY), GpuInputs.elements(c, GpuInputs.KEY))
        * c.elementBytes();
    return largest > (1L << 30) ? Optional.of("inputs are generated on the host for OpenCL: at most 1 GiB a tensor")
        : Optional.empty();
  }

  /** Tensor {@code tag} of a set, generated on the host (in parallel), in {@code dtype}. */
  private static ByteBuffer hostInputs(BenchCase c, DType dtype, int seed, int tag, long n) {
    ByteBuffer host = ByteBuffer.allocateDirect(Math.toIntExact(n * dtype.byteSize())).order(ByteOrder.nativeOrder());
    int size = dtype.byteSize();
    IntStream.range(0, (int) ((n + 65535) / 65536)).parallel().forEach(chunk -> {
      long end = Math.min(n, (chunk + 1L) * 65536);
      for (long i = chunk * 65536L; i < end; i++) {
        float v = GpuInputs.value(seed, tag, i);
        int at = (int) (i * size);
        switch (c.dtype()) {
          case "fp16" -> host.putShort(at, Float.floatToFloat16(v));
          case "bf16" -> host.putShort(at, DType.floatToBfloat16(v));
          default -> host.putFloat(at, v);
        }
      }
    });
    return host;
  }

  @Override
  public long workingBytes(BenchCase c) {
    return 0;
  }

  @Override
  public String memoryMethod() {
    return "not measured (OpenCL has no free-memory query)";
  }

  /**
   * The {@code cl_device_id} of the provider's device {@code index}: devices are numbered over every platform, in
   * platform order, every device type, as the provider's discovery numbers them.
   */
  static cl_device_id clDevice(int index) {
    int[] n = new int[1];
    clGetPlatformIDs(0, null, n);
    cl_platform_id[] platforms = new cl_platform_id[n[0]];
    clGetPlatformIDs(platforms.length, platforms, null);
    int seen = 0;
    for (cl_platform_id p : platforms) {
      int[] count = new int[1];
      if (clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 0, null, count) != CL_SUCCESS || count[0] == 0) {
        continue;
      }
      cl_device_id[] ids = new cl_device_id[count[0]];
      clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, ids.length, ids, null);
      if (index < seen + ids.length) {
        return ids[index - seen];
      }
      seen += ids.length;
    }
    throw new IllegalArgumentException("no OpenCL device " + index + " (" + seen + " found)");
  }

  /** Whether the provider's device {@code index} is a GPU. */
  static boolean isGpu(int index) {
    long[] type = new long[1];
    clGetDeviceInfo(clDevice(index), CL_DEVICE_TYPE, 8, Pointer.to(type), null);
    return (type[0] & CL_DEVICE_TYPE_GPU) != 0;
  }

  private static void check(int status, String call) {
    if (status != CL_SUCCESS) {
      throw new IllegalStateException(call + " failed: OpenCL status " + status);
    }
  }

  private synchronized void open() {
    if (context == null) {
      cl_device_id id = clDevice(index);
      int[] err = new int[1];
      cl_context ctx = clCreateContext(null, 1, new cl_device_id[] {id}, null, null, err);
      check(err[0], "clCreateContext");
      cl_command_queue q = clCreateCommandQueue(ctx, id, 0, err);
      if (err[0] != CL_SUCCESS) {
        clReleaseContext(ctx);
        check(err[0], "clCreateCommandQueue");
      }
      context = ctx;
      queue = q;
    }
  }

  @Override
  public Prepared prepare(BenchCase c, InputSets inputs) {
    DType dtype = CudaProviderCandidate.dtypeOf(c);
    boolean train = c.pass() == Pass.FORWARD_BACKWARD;
    open();
    cl_context ctx = context;
    cl_command_queue q = queue;
    List<cl_mem> owned = new ArrayList<>();
    try {
      Device dev = Device.opencl(index);
      Tensor[][] sets = new Tensor[inputs.count()][4];
      for (int s = 0; s < sets.length; s++) {
        for (int t = 0; t < 4; t++) {
          long n = GpuInputs.elements(c, t);
          ByteBuffer host = hostInputs(c, dtype, (int) inputs.seed() + s, t, n);
          cl_mem m = buffer(ctx, host.capacity(), owned);
          check(clEnqueueWriteBuffer(q, m, CL_TRUE, 0, host.capacity(), Pointer.to(host), 0, null, null),
              "clEnqueueWriteBuffer");
          sets[s][t] = tensor(dtype, dev, m, host.capacity(), CudaProviderCandidate.shape(c, t));
        }
      }
      long qBytes = GpuInputs.elements(c, 0) * dtype.byteSize();
      long kvBytes = GpuInputs.elements(c, 1) * dtype.byteSize();
      cl_mem outMem = buffer(ctx, qBytes, owned);
      Tensor out = tensor(dtype, dev, outMem, qBytes, CudaProviderCandidate.shape(c, 0));
      long lseBytes = (long) c.batch() * c.heads() * c.seqLen() * 4;
      Tensor lse = train ? tensor(DType.FLOAT32, dev, buffer(ctx, lseBytes, owned), lseBytes,
          new long[] {c.batch(), c.heads(), c.seqLen()}) : null;
      Tensor dq = train ? tensor(dtype, dev, buffer(ctx, qBytes, owned), qBytes, CudaProviderCandidate.shape(c, 0))
          : null;
      Tensor dk = train ? tensor(dtype, dev, buffer(ctx, kvBytes, owned), kvBytes, CudaProviderCandidate.shape(c, 1))
          : null;
      Tensor dv = train ? tensor(dtype, dev, buffer(ctx, kvBytes, owned), kvBytes, CudaProviderCandidate.shape(c, 2))
          : null;
      AttentionOptions options = CudaProviderCandidate.options(c, q.getNativePointer());
      List<String> reasons = provider.notSupportedReasons(
          AttentionRequest.create(sets[0][0], sets[0][1], sets[0][2], out, lse, options));
      if (!reasons.isEmpty()) {
        throw new UnsupportedCaseException(String.join("; ", reasons));
      }
      return new Prepared() {
        @Override
        public void run(int set) {
          Tensor[] t = sets[set];
          try (ProviderScope scope = Sdpa.useProviders(provider.name())) {
            AttentionResult r = Sdpa.scaledDotProductAttention(t[0], t[1], t[2], out, lse, options);
            if (train) {
              r.backward(t[3], dq, dk, dv);
            }
          }
          check(clFinish(q), "clFinish");
        }

        @Override
        public float[] forwardOutput(int set) {
          Tensor[] t = sets[set];
          AttentionOptions fwd = options.toBuilder().training(false).dropoutP(0).returnLse(false).build();
          try (ProviderScope scope = Sdpa.useProviders(provider.name())) {
            Sdpa.scaledDotProductAttention(t[0], t[1], t[2], out, null, fwd);
          }
          ByteBuffer host = ByteBuffer.allocateDirect(Math.toIntExact(qBytes)).order(ByteOrder.nativeOrder());
          check(clEnqueueReadBuffer(q, outMem, CL_TRUE, 0, qBytes, Pointer.to(host), 0, null, null),
              "clEnqueueReadBuffer");
          float[] v = new float[Math.toIntExact(GpuInputs.elements(c, 0))];
          for (int i = 0; i < v.length; i++) {
            v[i] = switch (c.dtype()) {
              case "fp16" -> Float.float16ToFloat(host.getShort(2 * i));
              case "bf16" -> DType.bfloat16ToFloat(host.getShort(2 * i));
              default -> host.getFloat(4 * i);
            };
          }
          return v;
        }

        @Override
        public long memoryProbe(int set) {
          run(set);
          return -1;
        }

        @Override
        public void close() {
          release(q, owned);
        }
      };
    } catch (RuntimeException | Error e) {
      release(q, owned);
      throw e;
    }
  }

  private static cl_mem buffer(cl_context ctx, long bytes, List<cl_mem> owned) {
    int[] err = new int[1];
    cl_mem m = clCreateBuffer(ctx, CL_MEM_READ_WRITE, bytes, null, err);
    if (err[0] == org.jocl.CL.CL_MEM_OBJECT_ALLOCATION_FAILURE || err[0] == org.jocl.CL.CL_OUT_OF_RESOURCES) {
      throw new OutOfMemoryError("OpenCL device out of memory allocating " + bytes + " bytes (status " + err[0] + ")");
    }
    check(err[0], "clCreateBuffer(" + bytes + ")");
    owned.add(m);
    return m;
  }

  private static Tensor tensor(DType dtype, Device dev, cl_mem m, long bytes, long[] shape) {
    return Tensor.contiguous(dtype, new Storage.DeviceBuffer(dev, m.getNativePointer(), 0, bytes), shape);
  }

  private static void release(cl_command_queue queue, List<cl_mem> owned) {
    clFinish(queue);
    owned.forEach(m -> clReleaseMemObject(m));
    owned.clear();
  }
}
