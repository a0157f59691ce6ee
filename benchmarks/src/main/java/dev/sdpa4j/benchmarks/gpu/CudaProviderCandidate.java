package dev.sdpa4j.benchmarks.gpu;

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
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.bytedeco.cuda.cudart.CUevent_st;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.javacpp.BytePointer;

/**
 * An sdpa4j CUDA provider on tensors in device memory (allocated here with {@code cuMemAlloc} in the device's
 * primary context), called through the front door with the benchmark's own stream in
 * {@link AttentionOptions#stream()}; timed with CUDA events recorded on that stream around the call. Memory: the
 * drop in device free memory across one call (allocations the provider keeps, e.g. workspaces) plus the outputs;
 * a transient allocation freed within the call is not seen.
 */
public final class CudaProviderCandidate implements Candidate {
  private final AttentionProvider provider;
  private final int ordinal;

  public CudaProviderCandidate(AttentionProvider provider, int ordinal) {
    this.provider = provider;
    this.ordinal = ordinal;
  }

  @Override
  public String name() {
    return provider.name();
  }

  @Override
  public String kind() {
    return "fused";
  }

  @Override
  public String device() {
    return "cuda:" + ordinal;
  }

  @Override
  public Optional<String> unsupported(BenchCase c) {
    return Optional.empty();
  }

  @Override
  public long workingBytes(BenchCase c) {
    return 0;
  }

  @Override
  public String memoryMethod() {
    return "outputs + device free-memory drop across one call (cuMemGetInfo)";
  }

  static DType dtypeOf(BenchCase c) {
    return switch (c.dtype()) {
      case "fp16" -> DType.FLOAT16;
      case "bf16" -> DType.BFLOAT16;
      default -> DType.FLOAT32;
    };
  }

  @Override
  public Prepared prepare(BenchCase c, InputSets inputs) {
    CudaDriverApi.usePrimaryContext(ordinal);
    DType dtype = dtypeOf(c);
    Device dev = Device.cuda(ordinal);
    boolean train = c.pass() == Pass.FORWARD_BACKWARD;
    long[] shape = {c.batch(), c.heads(), c.seqLen(), c.headDim()};
    long bytes = c.tensorBytes();
    List<Long> owned = new ArrayList<>();
    CUstream_st stream = CudaDriverApi.stream();
    CUevent_st start = CudaDriverApi.event();
    CUevent_st stop = CudaDriverApi.event();
    try {
      Tensor[][] sets = new Tensor[inputs.count()][4];
      try (Arena staging = Arena.ofConfined()) {
        MemorySegment host = staging.allocate(bytes, 64);
        for (int i = 0; i < inputs.count(); i++) {
          float[][] t = inputs.tensors(i);
          for (int j = 0; j < 4; j++) {
            for (int x = 0; x < t[j].length; x++) {
              dtype.write(host, (long) x * dtype.byteSize(), t[j][x]);
            }
            long ptr = CudaDriverApi.alloc(bytes);
            owned.add(ptr);
            CudaDriverApi.upload(ptr, new BytePointer(host.asByteBuffer()), bytes);
            sets[i][j] = tensor(dtype, dev, ptr, bytes, shape);
          }
        }
      }
      Tensor out = deviceTensor(dtype, dev, bytes, shape, owned);
      Tensor lse = train ? deviceTensor(DType.FLOAT32, dev, (long) c.batch() * c.heads() * c.seqLen() * 4,
          new long[] {c.batch(), c.heads(), c.seqLen()}, owned) : null;
      Tensor dq = train ? deviceTensor(dtype, dev, bytes, shape, owned) : null;
      Tensor dk = train ? deviceTensor(dtype, dev, bytes, shape, owned) : null;
      Tensor dv = train ? deviceTensor(dtype, dev, bytes, shape, owned) : null;
      AttentionOptions options = AttentionOptions.builder().isCausal(c.causal()).training(train)
          .stream(stream.address()).build();
      List<String> reasons = provider.notSupportedReasons(
          AttentionRequest.create(sets[0][0], sets[0][1], sets[0][2], out, lse, options));
      if (!reasons.isEmpty()) {
        throw new UnsupportedCaseException(String.join("; ", reasons));
      }
      long outputBytes = bytes * (train ? 4 : 1) + (train ? (long) c.batch() * c.heads() * c.seqLen() * 4 : 0);
      return new Prepared() {
        private void call(int set) {
          Tensor[] t = sets[set];
          try (ProviderScope scope = Sdpa.useProviders(provider.name())) {
            AttentionResult r = Sdpa.scaledDotProductAttention(t[0], t[1], t[2], out, lse, options);
            if (train) {
              r.backward(t[3], dq, dk, dv);
            }
          }
        }

        @Override
        public void run(int set) {
          call(set);
          CudaDriverApi.synchronize(stream);
        }

        @Override
        public double timedRunMs(int set) {
          CudaDriverApi.synchronize(stream);
          CudaDriverApi.record(start, stream);
          call(set);
          CudaDriverApi.record(stop, stream);
          return CudaDriverApi.elapsedMs(start, stop);
        }

        @Override
        public float[] forwardOutput(int set) {
          Tensor[] t = sets[set];
          AttentionOptions fwd = options.toBuilder().training(false).returnLse(false).build();
          try (ProviderScope scope = Sdpa.useProviders(provider.name())) {
            Sdpa.scaledDotProductAttention(t[0], t[1], t[2], out, null, fwd);
          }
          CudaDriverApi.synchronize(stream);
          Storage.DeviceBuffer buf = (Storage.DeviceBuffer) out.storage();
          try (Arena host = Arena.ofConfined()) {
            MemorySegment seg = host.allocate(bytes, 64);
            CudaDriverApi.download(new BytePointer(seg.asByteBuffer()), buf.handle(), bytes);
            float[] v = new float[Math.toIntExact(out.elementCount())];
            for (int i = 0; i < v.length; i++) {
              v[i] = (float) dtype.read(seg, (long) i * dtype.byteSize());
            }
            return v;
          }
        }

        @Override
        public long memoryProbe(int set) {
          CudaDriverApi.synchronize(stream);
          long before = CudaDriverApi.freeBytes();
          run(set);
          return Math.max(0, before - CudaDriverApi.freeBytes()) + outputBytes;
        }

        @Override
        public void close() {
          release(owned, stream, start, stop);
        }
      };
    } catch (RuntimeException | Error e) {
      release(owned, stream, start, stop);
      throw e;
    }
  }

  private static Tensor tensor(DType dtype, Device dev, long ptr, long bytes, long[] shape) {
    return Tensor.contiguous(dtype, new Storage.DeviceBuffer(dev, ptr, 0, bytes), shape);
  }

  private static Tensor deviceTensor(DType dtype, Device dev, long bytes, long[] shape, List<Long> owned) {
    long ptr = CudaDriverApi.alloc(bytes);
    owned.add(ptr);
    return tensor(dtype, dev, ptr, bytes, shape);
  }

  private static void release(List<Long> owned, CUstream_st stream, CUevent_st start, CUevent_st stop) {
    CudaDriverApi.synchronize(stream);
    for (long p : owned) {
      CudaDriverApi.free(p);
    }
    owned.clear();
    CudaDriverApi.destroy(start);
    CudaDriverApi.destroy(stop);
    CudaDriverApi.destroy(stream);
  }
}
