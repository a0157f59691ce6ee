package dev.sdpa4j.conformance;

import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.DType;
import dev.sdpa4j.provider.math.ReferenceAttention;
import java.util.concurrent.CompletableFuture;
import java.util.function.Supplier;

/**
 * The reference results of a case: float64 ({@code exact}) and the same algorithm in the inputs' precision
 * ({@code low}, which sets the tolerance). Null gradients for inference cases.
 *
 * @param exact         float64 forward
 * @param low           forward in the inputs' precision
 * @param exactGradients float64 gradients, or null
 * @param lowGradients  gradients in the inputs' precision, or null
 */
record ReferenceResults(ReferenceAttention.Forward exact, ReferenceAttention.Forward low,
                        ReferenceAttention.Gradients exactGradients, ReferenceAttention.Gradients lowGradients) {
  /** Above this work the two reference runs of a case go in parallel. */
  private static final double PARALLEL_COST = 2e6;

  /** The forward references of {@code p}'s host inputs. */
  static ReferenceResults forward(Problem p) {
    AttentionRequest host = p.hostRequest();
    DType t = p.spec.dtype();
    ReferenceAttention.Forward[] f = both(p.spec, () -> ReferenceAttention.forward(host, DType.FLOAT64),
        () -> ReferenceAttention.forward(host, t), new ReferenceAttention.Forward[2]);
    return new ReferenceResults(f[0], f[1], null, null);
  }

  /** These results with the gradient references of {@code p}'s backward call added. */
  ReferenceResults withGradients(Problem p) {
    BackwardRequest host = p.hostBackwardRequest();
    DType t = p.spec.dtype();
    ReferenceAttention.Gradients[] g = both(p.spec, () -> ReferenceAttention.backward(host, DType.FLOAT64),
        () -> ReferenceAttention.backward(host, t), new ReferenceAttention.Gradients[2]);
    return new ReferenceResults(exact, low, g[0], g[1]);
  }

  /**
   * Every reference result of {@code spec} computed from host copies of its data (the same data the provider gets:
   * it derives from the case's seed alone), for computing ahead on another thread.
   */
  static ReferenceResults of(ForwardCase spec, long seed) {
    try (Problem p = Problem.create(spec, TensorMemory.host(), seed)) {
      ReferenceResults r = forward(p);
      if (spec.training()) {
        p.backward(TensorMemory.host());
        r = r.withGradients(p);
      }
      return r;
    }
  }

  private static <T> T[] both(ForwardCase c, Supplier<T> exact, Supplier<T> lowPrecision, T[] out) {
    if (c.dtype() == DType.FLOAT64) {
      out[0] = exact.get();
      out[1] = out[0];
    } else if (c.cost() < PARALLEL_COST) {
      out[0] = exact.get();
      out[1] = lowPrecision.get();
    } else {
      CompletableFuture<T> low = CompletableFuture.supplyAsync(lowPrecision);
      out[0] = exact.get();
      out[1] = low.join();
    }
    return out;
  }
}
