package dev.sdpa4j.benchmarks.cpu;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.DType;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.provider.math.ReferenceAttention;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The eager baseline against the float64 reference, forward and backward, on odd and vector-friendly sizes. */
class EagerAttentionTest {

  @ParameterizedTest(name = "B={0} H={1} L={2} E={3} causal={4}")
  @CsvSource({"1,1,1,8,false", "2,3,37,8,false", "2,3,37,13,true", "1,2,64,64,false", "1,2,67,64,true",
      "1,1,33,128,false", "1,1,20,256,true", "1,2,130,16,true"})
  void forwardAndBackwardMatchTheReference(int b, int h, int l, int e, boolean causal) {
    long seed = 31L * l + e + (causal ? 7 : 0);
    System.out.println("seed " + seed);
    SplittableRandom r = new SplittableRandom(seed);
    int n = b * h * l * e;
    float[] q = random(r, n);
    float[] k = random(r, n);
    float[] v = random(r, n);
    float[] dOut = random(r, n);
    float[] out = new float[n];
    float scale = (float) (1 / Math.sqrt(e));
    EagerAttention eager = new EagerAttention(2);
    float[][] p = eager.forward(q, k, v, out, b, h, l, e, scale, causal);
    float[] dq = new float[n];
    float[] dk = new float[n];
    float[] dv = new float[n];
    eager.backward(q, k, v, out, p, dOut, dq, dk, dv, b, h, l, e, scale);

    try (Arena arena = Arena.ofConfined()) {
      long[] shape = {b, h, l, e};
      AttentionOptions options = AttentionOptions.builder().isCausal(causal).training(true).build();
      Tensor lse = Tensor.allocate(arena, DType.FLOAT32, b, h, l);
      Tensor outT = tensor(arena, out, shape);
      AttentionRequest req = AttentionRequest.create(tensor(arena, q, shape), tensor(arena, k, shape),
          tensor(arena, v, shape), outT, lse, options);
      ReferenceAttention.Forward ref = ReferenceAttention.forward(req, DType.FLOAT64);
      assertClose(out, ref.output(), "output");
      BackwardRequest breq = BackwardRequest.create(req, tensor(arena, dOut, shape), Tensor.allocate(arena,
          DType.FLOAT32, shape), Tensor.allocate(arena, DType.FLOAT32, shape), Tensor.allocate(arena, DType.FLOAT32,
          shape));
      ReferenceAttention.Gradients g = ReferenceAttention.backward(breq, DType.FLOAT64);
      assertClose(dq, g.query(), "dQ");
      assertClose(dk, g.key(), "dK");
      assertClose(dv, g.value(), "dV");
    }
  }

  private static void assertClose(float[] actual, double[] expected, String what) {
    assertThat(actual).hasSize(expected.length);
    double worst = 0;
    for (int i = 0; i < actual.length; i++) {
      worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / (1 + Math.abs(expected[i])));
    }
    assertThat(worst).as(what + ": largest error relative to 1 + |reference|").isLessThan(2e-5);
  }

  private static float[] random(SplittableRandom r, int n) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) r.nextGaussian();
    }
    return a;
  }

  private static Tensor tensor(Arena arena, float[] values, long[] shape) {
    Tensor t = Tensor.allocate(arena, DType.FLOAT32, shape);
    MemorySegment.copy(values, 0, t.hostSegment(), ValueLayout.JAVA_FLOAT, 0, values.length);
    return t;
  }
}
