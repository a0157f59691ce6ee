package dev.sdpa4j.benchmarks.cpu;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.AttentionResult;
import dev.sdpa4j.DType;
import dev.sdpa4j.ProviderScope;
import dev.sdpa4j.Sdpa;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.benchmarks.BenchCase;
import dev.sdpa4j.benchmarks.Candidate;
import dev.sdpa4j.benchmarks.InputSets;
import dev.sdpa4j.benchmarks.Memory;
import dev.sdpa4j.benchmarks.Pass;
import dev.sdpa4j.spi.AttentionProvider;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Optional;

/**
 * An sdpa4j provider on host tensors, called through the front door ({@link Sdpa#scaledDotProductAttention} inside
 * {@link Sdpa#useProviders}) exactly as a user would, so validation and selection are part of the measured time.
 * Training steps run the forward with {@code training(true)} and then {@link AttentionResult#backward}.
 */
public final class ProviderCandidate implements Candidate {
  private final AttentionProvider provider;

  public ProviderCandidate(AttentionProvider provider) {
    this.provider = provider;
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
    return "cpu";
  }

  /** Always empty: the provider's own {@code notSupportedReasons} decide, once {@link #prepare} has tensors. */
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
    return "outputs + heap bytes allocated by all threads during one call (an upper bound on the peak; native "
        + "scratch not seen)";
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
    Arena arena = Arena.ofShared();
    try {
      DType dtype = dtypeOf(c);
      boolean train = c.pass() == Pass.FORWARD_BACKWARD;
      long[] shape = {c.batch(), c.heads(), c.seqLen(), c.headDim()};
      int n = inputs.count();
      Tensor[][] sets = new Tensor[n][];
      for (int i = 0; i < n; i++) {
        float[][] t = inputs.tensors(i);
        sets[i] = new Tensor[4];
        for (int j = 0; j < 4; j++) {
          sets[i][j] = fill(Tensor.allocate(arena, dtype, shape), t[j]);
        }
      }
      Tensor out = Tensor.allocate(arena, dtype, shape);
      Tensor lse = train ? Tensor.allocate(arena, DType.FLOAT32, c.batch(), c.heads(), c.seqLen()) : null;
      Tensor dq = train ? Tensor.allocate(arena, dtype, shape) : null;
      Tensor dk = train ? Tensor.allocate(arena, dtype, shape) : null;
      Tensor dv = train ? Tensor.allocate(arena, dtype, shape) : null;
      AttentionOptions options = AttentionOptions.builder().isCausal(c.causal()).training(train).build();
      AttentionRequest probe = AttentionRequest.create(sets[0][0], sets[0][1], sets[0][2], out, lse, options);
      List<String> reasons = provider.notSupportedReasons(probe);
      if (!reasons.isEmpty()) {
        throw new UnsupportedCaseException(String.join("; ", reasons));
      }
      long outputBytes = out.elementCount() * dtype.byteSize()
          + (train ? lse.elementCount() * 4 + 3 * out.elementCount() * dtype.byteSize() : 0);
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
        }

        @Override
        public float[] forwardOutput(int set) {
          Tensor[] t = sets[set];
          AttentionOptions fwd = options.toBuilder().training(false).returnLse(false).build();
          try (ProviderScope scope = Sdpa.useProviders(provider.name())) {
            Sdpa.scaledDotProductAttention(t[0], t[1], t[2], out, null, fwd);
          }
          return read(out);
        }

        @Override
        public long memoryProbe(int set) {
          long before = Memory.heapAllocatedBytes();
          run(set);
          return Memory.heapAllocatedBytes() - before + outputBytes;
        }

        @Override
        public void close() {
          arena.close();
        }
      };
    } catch (RuntimeException | Error e) {
      arena.close();
      throw e;
    }
  }

  /** The values of a contiguous host tensor as floats. */
  static float[] read(Tensor t) {
    MemorySegment seg = t.hostSegment();
    float[] v = new float[Math.toIntExact(t.elementCount())];
    long bytes = t.dtype().byteSize();
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) t.dtype().read(seg, i * bytes);
    }
    return v;
  }

  /** Copies {@code values} into a contiguous host tensor, rounding to its dtype. */
  static Tensor fill(Tensor t, float[] values) {
    MemorySegment seg = t.hostSegment();
    switch (t.dtype()) {
      case FLOAT32 -> MemorySegment.copy(values, 0, seg, ValueLayout.JAVA_FLOAT, 0, values.length);
      default -> {
        long bytes = t.dtype().byteSize();
        for (int i = 0; i < values.length; i++) {
          t.dtype().write(seg, i * bytes, values[i]);
        }
      }
    }
    return t;
  }
}
