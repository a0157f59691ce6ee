package dev.sdpa4j.benchmarks.gpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.DType;
import dev.sdpa4j.ProviderRegistry;
import dev.sdpa4j.ProviderStatus;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.benchmarks.BenchCase;
import dev.sdpa4j.benchmarks.Candidate;
import dev.sdpa4j.benchmarks.InputSets;
import dev.sdpa4j.benchmarks.Pass;
import dev.sdpa4j.cuda.CudaDriver;
import dev.sdpa4j.cuda.CudaStream;
import dev.sdpa4j.cuda.DeviceMemory;
import dev.sdpa4j.provider.math.ReferenceAttention;
import dev.sdpa4j.Storage;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The cuBLAS eager baseline against the float64 reference (provider-math's {@code ReferenceAttention}), forward and
 * gradients, on small shapes (lengths off the tile sizes, causal, a decode step, bf16), and against every available
 * CUDA provider through the benchmark's candidates; the device input generator against its Java twin. Skips without
 * a CUDA device.
 */
class EagerCublasGpuTest {
  private static final long SEED = 20261126L;

  @BeforeAll
  static void needsCuda() {
    assumeTrue(CudaDriver.availability().available(), () -> "no CUDA: " + CudaDriver.availability().reason());
  }

  static Stream<Arguments> cases() {
    return Stream.of(
        Arguments.of(new BenchCase(2, 3, 70, 70, 64, false, "fp16", Pass.FORWARD_BACKWARD, 0)),
        Arguments.of(new BenchCase(1, 2, 133, 133, 128, true, "fp16", Pass.FORWARD_BACKWARD, 0)),
        Arguments.of(new BenchCase(2, 2, 96, 96, 32, true, "bf16", Pass.FORWARD_BACKWARD, 0)),
        Arguments.of(new BenchCase(3, 2, 1, 300, 128, false, "fp16", Pass.FORWARD_BACKWARD, 0)));
  }

  /** Host copy of tensor {@code tag} of set 0, as fp32 holding the dtype's rounded values. */
  private static Tensor host(Arena arena, BenchCase c, int tag) {
    Tensor t = Tensor.allocate(arena, DType.FLOAT32, CudaProviderCandidate.shape(c, tag));
    long n = GpuInputs.elements(c, tag);
    DType dt = CudaProviderCandidate.dtypeOf(c);
    MemorySegment seg = ((Storage.Host) t.storage()).segment();
    for (long i = 0; i < n; i++) {
      DType.FLOAT32.write(seg, i * 4, dt.round(GpuInputs.value((int) SEED, tag, i)));
    }
    return t;
  }

  private static float[] download(DeviceMemory m, long elements, BenchCase c, CudaStream stream) {
    return GpuInputs.download(m, elements, c.dtype().equals("bf16"), stream);
  }

  private static void assertClose(String what, float[] actual, double[] expected, double tol) {
    assertThat(actual).hasSize(expected.length);
    double worst = 0;
    int at = -1;
    for (int i = 0; i < actual.length; i++) {
      double d = Math.abs(actual[i] - expected[i]) / (1 + Math.abs(expected[i]));
      if (!(d <= worst)) {
        worst = d;
        at = i;
      }
    }
    final int where = at;
    assertThat(worst).as(() -> what + ": worst relative difference at " + where + ": " + actual[where] + " vs "
        + expected[where]).isLessThanOrEqualTo(tol);
  }

  @ParameterizedTest
  @MethodSource("cases")
  void forwardAndGradientsMatchTheReference(BenchCase c) {
    GpuDevice dev = GpuDevice.of(0);
    double tol = c.dtype().equals("bf16") ? 3e-2 : 5e-3;
    try (CudaStream stream = CudaStream.create(dev.context()); Arena arena = Arena.ofConfined()) {
      DeviceMemory[][] in = GpuInputs.allocate(dev, c, 1, SEED, stream);
      List<DeviceMemory> owned = new ArrayList<>(List.of(in[0]));
      try (EagerCublas eager = new EagerCublas(dev, stream)) {
        DeviceMemory out = dev.allocate(c.tensorBytes(), "out");
        DeviceMemory dq = dev.allocate(c.tensorBytes(), "dq");
        DeviceMemory dk = dev.allocate(c.kvTensorBytes(), "dk");
        DeviceMemory dv = dev.allocate(c.kvTensorBytes(), "dv");
        DeviceMemory s = dev.allocate(c.scoreBytes(), "s");
        DeviceMemory p = dev.allocate(c.scoreBytes(), "p");
        DeviceMemory dp = dev.allocate(c.scoreBytes(), "dp");
        owned.addAll(List.of(out, dq, dk, dv, s, p, dp));
        EagerCublas.Buffers b = new EagerCublas.Buffers(in[0][0].address(), in[0][1].address(), in[0][2].address(),
            out.address(), s.address(), p.address(), 0, in[0][3].address(), dq.address(), dk.address(),
            dv.address(), dp.address());
        double scale = 1 / Math.sqrt(c.headDim());
        eager.forward(c, scale, 1, b);
        eager.backward(c, scale, 1, b);
        stream.synchronize();

        // the generator's device bits equal its Java twin's
        float[] q = download(in[0][0], GpuInputs.elements(c, 0), c, stream);
        Tensor hq = host(arena, c, 0);
        MemorySegment hqs = ((Storage.Host) hq.storage()).segment();
        for (int i = 0; i < q.length; i++) {
          assertThat(q[i]).as("query element %d", i).isEqualTo((float) DType.FLOAT32.read(hqs, i * 4L));
        }

        Tensor hk = host(arena, c, 1);
        Tensor hv = host(arena, c, 2);
        Tensor hdo = host(arena, c, 3);
        Tensor ho = Tensor.allocate(arena, DType.FLOAT32, CudaProviderCandidate.shape(c, 0));
        Tensor lse = Tensor.allocate(arena, DType.FLOAT32, c.batch(), c.heads(), c.seqLen());
        AttentionRequest r = AttentionRequest.create(hq, hk, hv, ho, lse,
            AttentionOptions.builder().isCausal(c.causal()).training(true).build());
        ReferenceAttention.Forward f = ReferenceAttention.forward(r, DType.FLOAT64);
        assertClose("output", download(out, GpuInputs.elements(c, 0), c, stream), f.output(), tol);
        Tensor gq = Tensor.allocate(arena, DType.FLOAT32, CudaProviderCandidate.shape(c, 0));
        Tensor gk = Tensor.allocate(arena, DType.FLOAT32, CudaProviderCandidate.shape(c, 1));
        Tensor gv = Tensor.allocate(arena, DType.FLOAT32, CudaProviderCandidate.shape(c, 2));
        ReferenceAttention.Gradients g = ReferenceAttention.backward(BackwardRequest.create(r, hdo, gq, gk, gv),
            DType.FLOAT64);
        assertClose("dV", download(dv, GpuInputs.elements(c, 2), c, stream), g.value(), tol * 2);
        assertClose("dK", download(dk, GpuInputs.elements(c, 1), c, stream), g.key(), tol * 2);
        assertClose("dQ", download(dq, GpuInputs.elements(c, 0), c, stream), g.query(), tol * 2);
      } finally {
        owned.forEach(DeviceMemory::close);
      }
    }
  }

  @ParameterizedTest
  @MethodSource("cases")
  void eagerCandidateAgreesWithEveryCudaProvider(BenchCase c) {
    BenchCase fwd = c.withPass(Pass.FORWARD);
    float[] eager;
    try (Candidate.Prepared p = new CublasEagerCandidate(0).prepare(fwd, new InputSets(fwd, 1, SEED))) {
      p.run(0);
      eager = p.forwardOutput(0);
    }
    int compared = 0;
    for (ProviderStatus s : ProviderRegistry.discovered().statuses()) {
      if (!s.available() || s.provider() == null || s.provider().devices().stream()
          .noneMatch(d -> d.device().platform() == dev.sdpa4j.Platform.CUDA)) {
        continue;
      }
      float[] theirs;
      try (Candidate.Prepared p = new CudaProviderCandidate(s.provider(), 0).prepare(fwd,
          new InputSets(fwd, 1, SEED))) {
        theirs = p.forwardOutput(0);
      } catch (Candidate.UnsupportedCaseException e) {
        System.out.println(s.name() + " refuses " + fwd.describe() + ": " + e.getMessage());
        continue;
      }
      double[] expected = new double[theirs.length];
      for (int i = 0; i < expected.length; i++) {
        expected[i] = theirs[i];
      }
      assertClose("eager vs " + s.name(), eager, expected, c.dtype().equals("bf16") ? 3e-2 : 5e-3);
      compared++;
    }
    System.out.println(fwd.describe() + ": eager-cublas compared with " + compared + " CUDA provider(s)");
  }
}
