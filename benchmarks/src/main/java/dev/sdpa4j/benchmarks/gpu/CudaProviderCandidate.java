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
import dev.sdpa4j.cuda.CudaEvent;
import dev.sdpa4j.cuda.CudaStream;
import dev.sdpa4j.cuda.DeviceMemory;
import dev.sdpa4j.spi.AttentionProvider;
import java.util.List;
import java.util.Optional;

/**
 * An sdpa4j CUDA provider on tensors in device memory (allocated in the device's primary context and filled by
 * {@link GpuInputs}), called through the front door ({@code Sdpa.useProviders(name)} +
 * {@code Sdpa.scaledDotProductAttention}, then {@code AttentionResult.backward} for a training step) with the
 * benchmark's own stream in {@link AttentionOptions#stream()}; timed with CUDA events recorded on that stream around
 * the call. A training step is the forward with {@code training(true)} (keeping the LSE, seed and offset) and then
 * the backward; with dropout, the seed is fixed and the offset moves on every call. Memory: the drop in device free
 * memory across one call (allocations the provider keeps, e.g. workspaces) plus the outputs; a transient allocation
 * freed within the call is not seen. A request the provider refuses ({@code notSupportedReasons}) is
 * {@link UnsupportedCaseException} with the provider's reasons.
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
    return c.dtype().equals("fp32") ? Optional.of("the GPU benchmark generates fp16 and bf16 inputs only")
        : Optional.empty();
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

  /** The options of one call of case {@code c} on {@code stream}. */
  static AttentionOptions options(BenchCase c, long stream) {
    AttentionOptions.Builder b = AttentionOptions.builder().isCausal(c.causal())
        .training(c.pass() == Pass.FORWARD_BACKWARD).stream(stream);
    if (c.dropout() > 0) {
      b.dropoutP(c.dropout());
    }
    return b.build();
  }

  @Override
  public Prepared prepare(BenchCase c, InputSets inputs) {
    GpuDevice dev = GpuDevice.of(ordinal);
    DType dtype = dtypeOf(c);
    Device device = Device.cuda(ordinal);
    boolean train = c.pass() == Pass.FORWARD_BACKWARD;
    Owned owned = new Owned();
    CudaStream stream = owned.add(CudaStream.create(dev.context()));
    try {
      DeviceMemory[][] mem = GpuInputs.allocate(dev, c, inputs.count(), inputs.seed(), stream);
      Tensor[][] sets = new Tensor[mem.length][4];
      for (int i = 0; i < mem.length; i++) {
        for (int t = 0; t < 4; t++) {
          owned.add(mem[i][t]);
          sets[i][t] = tensor(dtype, device, mem[i][t], shape(c, t));
        }
      }
      DeviceMemory outMem = owned.add(dev.allocate(c.tensorBytes(), "output"));
      Tensor out = tensor(dtype, device, outMem, shape(c, GpuInputs.QUERY));
      Tensor lse = train ? tensor(DType.FLOAT32, device, owned.add(dev.allocate((long) c.batch() * c.heads()
          * c.seqLen() * 4, "lse")), new long[] {c.batch(), c.heads(), c.seqLen()}) : null;
      Tensor dq = train ? tensor(dtype, device, owned.add(dev.allocate(c.tensorBytes(), "dq")), shape(c, 0)) : null;
      Tensor dk = train ? tensor(dtype, device, owned.add(dev.allocate(c.kvTensorBytes(), "dk")), shape(c, 1)) : null;
      Tensor dv = train ? tensor(dtype, device, owned.add(dev.allocate(c.kvTensorBytes(), "dv")), shape(c, 2)) : null;
      CudaEvent start = owned.add(CudaEvent.create(dev.context(), true));
      CudaEvent stop = owned.add(CudaEvent.create(dev.context(), true));
      AttentionOptions options = options(c, stream.handle());
      List<String> reasons = provider.notSupportedReasons(
          AttentionRequest.create(sets[0][0], sets[0][1], sets[0][2], out, lse, options));
      if (!reasons.isEmpty()) {
        throw new UnsupportedCaseException(String.join("; ", reasons));
      }
      long outputBytes = c.tensorBytes() + (train ? c.tensorBytes() + 2 * c.kvTensorBytes()
          + (long) c.batch() * c.heads() * c.seqLen() * 4 : 0);
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
          stream.synchronize();
        }

        @Override
        public double timedRunMs(int set) {
          stream.synchronize();
          start.record(stream);
          call(set);
          stop.record(stream);
          stop.synchronize();
          return CudaEvent.elapsedMillis(start, stop);
        }

        @Override
        public float[] forwardOutput(int set) {
          Tensor[] t = sets[set];
          AttentionOptions fwd = options.toBuilder().training(false).dropoutP(0).returnLse(false).build();
          try (ProviderScope scope = Sdpa.useProviders(provider.name())) {
            Sdpa.scaledDotProductAttention(t[0], t[1], t[2], out, null, fwd);
          }
          stream.synchronize();
          return GpuInputs.download(outMem, GpuInputs.elements(c, GpuInputs.QUERY), c.dtype().equals("bf16"),
              stream);
        }

        @Override
        public long memoryProbe(int set) {
          stream.synchronize();
          long before = dev.freeBytes();
          run(set);
          return Math.max(0, before - dev.freeBytes()) + outputBytes;
        }

        @Override
        public void close() {
          owned.close();
        }
      };
    } catch (RuntimeException | Error e) {
      owned.close();
      throw e;
    }
  }

  /** The shape of tensor {@code tag} (query, key, value, output gradient) of a case. */
  static long[] shape(BenchCase c, int tag) {
    int rows = (tag == GpuInputs.KEY || tag == GpuInputs.VALUE) ? c.kvLen() : c.seqLen();
    return new long[] {c.batch(), c.heads(), rows, c.headDim()};
  }

  private static Tensor tensor(DType dtype, Device dev, DeviceMemory m, long[] shape) {
    return Tensor.contiguous(dtype, new Storage.DeviceBuffer(dev, m.address(), 0, m.byteSize()), shape);
  }
}
