package dev.sdpa4j.benchmarks.libtorch;

import dev.sdpa4j.benchmarks.BenchCase;
import dev.sdpa4j.benchmarks.Candidate;
import dev.sdpa4j.benchmarks.InputSets;
import dev.sdpa4j.benchmarks.Memory;
import dev.sdpa4j.benchmarks.Pass;
import java.util.Optional;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorArrayRefOptional;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;

/**
 * The CPU peer: libtorch's {@code at::scaled_dot_product_attention} (PyTorch 2.10 through
 * {@code org.bytedeco:pytorch}), in the same JVM, on the same numbers, with {@code torch.set_num_threads} set to the
 * sweep's thread count. fp32 only here (the sdpa4j CPU comparison is fp32). The forward runs under
 * {@code NoGradGuard}; a training step runs the forward with {@code requires_grad} inputs and
 * {@code backward(dOut)}.
 *
 * <p>Loaded by name by {@link dev.sdpa4j.benchmarks.Peers}, so that a build without libtorch (the GPU bundle,
 * {@code -Dnolibtorch}) still runs.
 */
public final class LibTorchCandidate implements Candidate {
  private final int threads;

  /** Loads libtorch and sets its intra-op thread count. */
  public LibTorchCandidate(int threads) {
    this.threads = threads;
    torch.set_num_threads(threads);
  }

  /**
   * The libtorch build, for the results' metadata: version, threads, BLAS threading. This libtorch uses OpenBLAS
   * under its own OpenMP threads; unless {@code OPENBLAS_NUM_THREADS=1} is set before the JVM starts (run-cpu.sh
   * sets it, as PyTorch's CPU tuning guides advise for nested BLAS), OpenBLAS starts threads of its own inside each
   * OpenMP thread and, on a 2-core machine, libtorch runs many times slower.
   */
  public static String describe() {
    return "libtorch " + torch.show_config().getString().replaceAll("(?s).*TORCH_VERSION=([^,]+).*", "$1")
        + " (org.bytedeco:pytorch:2.10.0-1.5.13, BLAS OpenBLAS), intra-op threads=" + torch.get_num_threads()
        + ", OPENBLAS_NUM_THREADS=" + System.getenv().getOrDefault("OPENBLAS_NUM_THREADS", "unset")
        + ", OMP_NUM_THREADS=" + System.getenv().getOrDefault("OMP_NUM_THREADS", "unset");
  }

  @Override
  public String name() {
    return "libtorch";
  }

  @Override
  public String kind() {
    return "peer";
  }

  @Override
  public String device() {
    return "cpu";
  }

  @Override
  public Optional<String> unsupported(BenchCase c) {
    return c.dtype().equals("fp32") ? Optional.empty() : Optional.of("the libtorch CPU peer is run in fp32 only");
  }

  @Override
  public long workingBytes(BenchCase c) {
    return 0;
  }

  @Override
  public String memoryMethod() {
    return "peak resident set growth during one call (VmHWM after clear_refs)";
  }

  @Override
  public Prepared prepare(BenchCase c, InputSets inputs) {
    int n = inputs.count();
    long[] shape = {c.batch(), c.heads(), c.seqLen(), c.headDim()};
    boolean train = c.pass() == Pass.FORWARD_BACKWARD;
    Tensor[][] sets = new Tensor[n][4];
    PointerScope owner = new PointerScope();
    try {
      for (int i = 0; i < n; i++) {
        float[][] t = inputs.tensors(i);
        for (int j = 0; j < 4; j++) {
          try (FloatPointer data = new FloatPointer(t[j])) {
            sets[i][j] = torch.from_blob(data, shape).clone(new MemoryFormatOptional());
          }
          if (train && j < 3) {
            sets[i][j].set_requires_grad(true);
          }
        }
      }
      owner.extend();
      owner.close(); // leaves the thread's scope stack; the tensors live until Prepared.close()
    } catch (RuntimeException | Error e) {
      owner.close();
      throw e;
    }
    PointerScope keep = owner;
    return new Prepared() {
      @Override
      public void run(int set) {
        Tensor[] t = sets[set];
        try (PointerScope scope = new PointerScope()) {
          if (train) {
            Tensor out = torch.scaled_dot_product_attention(t[0], t[1], t[2], new TensorOptional(), 0.0, c.causal(),
                new DoubleOptional(), false);
            out.backward(t[3], new BoolOptional(), false, new TensorArrayRefOptional());
          } else {
            try (NoGradGuard g = new NoGradGuard()) {
              torch.scaled_dot_product_attention(t[0], t[1], t[2], new TensorOptional(), 0.0, c.causal(),
                  new DoubleOptional(), false);
            }
          }
        }
      }

      @Override
      public float[] forwardOutput(int set) {
        Tensor[] t = sets[set];
        try (PointerScope scope = new PointerScope(); NoGradGuard g = new NoGradGuard()) {
          Tensor out = torch.scaled_dot_product_attention(t[0], t[1], t[2], new TensorOptional(), 0.0, c.causal(),
              new DoubleOptional(), false).contiguous();
          float[] v = new float[Math.toIntExact(out.numel())];
          new FloatPointer(out.data_ptr()).capacity(v.length).get(v);
          return v;
        }
      }

      @Override
      public long memoryProbe(int set) {
        if (!Memory.resetResidentPeak()) {
          run(set);
          return -1;
        }
        long before = Memory.residentBytes();
        run(set);
        long peak = Memory.residentPeakBytes();
        return before < 0 || peak < 0 ? -1 : Math.max(0, peak - before);
      }

      @Override
      public void close() {
        keep.deallocate();
      }
    };
  }

  @Override
  public String toString() {
    return "libtorch(" + threads + " threads)";
  }
}
