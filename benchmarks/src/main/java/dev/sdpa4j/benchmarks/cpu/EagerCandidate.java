package dev.sdpa4j.benchmarks.cpu;

import dev.sdpa4j.benchmarks.BenchCase;
import dev.sdpa4j.benchmarks.Candidate;
import dev.sdpa4j.benchmarks.InputSets;
import dev.sdpa4j.benchmarks.Memory;
import dev.sdpa4j.benchmarks.Pass;
import java.util.Optional;

/** The eager baseline on the CPU: {@link EagerAttention} over heap float arrays. fp32 only. */
public final class EagerCandidate implements Candidate {
  private final EagerAttention eager;

  public EagerCandidate(int threads) {
    this.eager = new EagerAttention(threads);
  }

  @Override
  public String name() {
    return "eager";
  }

  @Override
  public String kind() {
    return "eager";
  }

  @Override
  public String device() {
    return "cpu";
  }

  @Override
  public Optional<String> unsupported(BenchCase c) {
    if (!c.dtype().equals("fp32")) {
      return Optional.of("the CPU eager baseline is fp32 only");
    }
    if ((long) c.seqLen() * c.seqLen() > Integer.MAX_VALUE - 16) {
      return Optional.of("L² = " + (long) c.seqLen() * c.seqLen() + " scores per head exceed a Java array");
    }
    return Optional.empty();
  }

  /** {@code S} and {@code P} ({@code 2·B·H·L²} floats); a training step keeps {@code P} and adds {@code dS}. */
  @Override
  public long workingBytes(BenchCase c) {
    return EagerAttention.forwardScoreBytes(c.batch(), c.heads(), c.seqLen());
  }

  @Override
  public String memoryMethod() {
    return "outputs + heap bytes allocated by all threads during one call (an upper bound on the peak)";
  }

  @Override
  public Prepared prepare(BenchCase c, InputSets inputs) {
    int n = inputs.count();
    float[][][] sets = new float[n][][];
    for (int i = 0; i < n; i++) {
      sets[i] = inputs.tensors(i);
    }
    int elems = inputs.elements();
    boolean train = c.pass() == Pass.FORWARD_BACKWARD;
    float[] out = new float[elems];
    float[] dq = train ? new float[elems] : null;
    float[] dk = train ? new float[elems] : null;
    float[] dv = train ? new float[elems] : null;
    float scale = (float) (1.0 / Math.sqrt(c.headDim()));
    long outputBytes = (long) elems * Float.BYTES * (train ? 4 : 1);
    return new Prepared() {
      @Override
      public void run(int set) {
        float[][] t = sets[set];
        float[][] p = eager.forward(t[0], t[1], t[2], out, c.batch(), c.heads(), c.seqLen(), c.headDim(), scale,
            c.causal());
        if (train) {
          eager.backward(t[0], t[1], t[2], out, p, t[3], dq, dk, dv, c.batch(), c.heads(), c.seqLen(), c.headDim(),
              scale);
        }
      }

      @Override
      public float[] forwardOutput(int set) {
        float[][] t = sets[set];
        float[] o = new float[elems];
        eager.forward(t[0], t[1], t[2], o, c.batch(), c.heads(), c.seqLen(), c.headDim(), scale, c.causal());
        return o;
      }

      @Override
      public long memoryProbe(int set) {
        long before = Memory.heapAllocatedBytes();
        run(set);
        return Memory.heapAllocatedBytes() - before + outputBytes;
      }

      @Override
      public void close() {
        // heap arrays: released with this object
      }
    };
  }
}
