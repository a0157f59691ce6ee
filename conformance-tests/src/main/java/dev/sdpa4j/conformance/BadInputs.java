package dev.sdpa4j.conformance;

import dev.sdpa4j.AttentionArgumentException;
import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.AttentionResult;
import dev.sdpa4j.DType;
import dev.sdpa4j.ProviderRegistry;
import dev.sdpa4j.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * Malformed calls made end to end through a registry of just the provider: each must fail with
 * {@link AttentionArgumentException} before the provider runs, leaving every output (poisoned) and input untouched.
 */
final class BadInputs {
  private BadInputs() {}

  /** What one bad call does, given the case's tensors and the registry. */
  @FunctionalInterface
  interface Call {
    void run(Problem p, ProviderRegistry registry, TensorMemory memory);
  }

  /**
   * One malformed call.
   *
   * @param name     what is wrong
   * @param training whether it is a backward call (after a valid training forward)
   * @param call     the call
   */
  record BadCall(String name, boolean training, Call call) {}

  /** The bad calls for the base case (B=2, Hq=Hkv=3, Lq=Lk=17, E=Ev={@code headDim}), with backward ones if claimed. */
  static List<BadCall> calls(boolean backward, long headDim) {
    List<BadCall> c = new ArrayList<>();
    c.add(forward("query of rank 3", (p, r, m) -> {
      Tensor q = p.query.device();
      r.forward(AttentionRequest.create(q.view(drop(q.shape()), drop(q.strides())), p.key.device(),
          p.value.device(), p.output.device(), lse(p), p.options(null, null)));
    }));
    c.add(forward("key batch differs from the query's", (p, r, m) -> r.forward(AttentionRequest.create(
        p.query.device(), resize(p.key.device(), 0, 1), p.value.device(), p.output.device(), lse(p),
        p.options(null, null)))));
    c.add(forward("value length differs from the key's", (p, r, m) -> r.forward(AttentionRequest.create(
        p.query.device(), p.key.device(), resize(p.value.device(), 2, p.spec.keyLength() - 1), p.output.device(),
        lse(p), p.options(null, null)))));
    if (headDim >= 2) {
      c.add(forward("key head dim differs from the query's", (p, r, m) -> r.forward(AttentionRequest.create(
          resize(p.query.device(), 3, p.spec.headDim() - 1), p.key.device(), p.value.device(), p.output.device(),
          lse(p), p.options(null, null)))));
    }
    c.add(forward("output shape differs from [B, Hq, Lq, Ev]", (p, r, m) -> r.forward(AttentionRequest.create(
        p.query.device(), p.key.device(), p.value.device(), resize(p.output.device(), 2, p.spec.queryLength() - 1),
        lse(p), p.options(null, null)))));
    c.add(forward("Hq not a multiple of Hkv", (p, r, m) -> r.forward(AttentionRequest.create(p.query.device(),
        resize(p.key.device(), 1, 2), resize(p.value.device(), 1, 2), p.output.device(), lse(p),
        p.options(null, null).toBuilder().enableGqa(true).build()))));
    c.add(forward("Hq != Hkv without enableGqa", (p, r, m) -> r.forward(AttentionRequest.create(p.query.device(),
        resize(p.key.device(), 1, 1), resize(p.value.device(), 1, 1), p.output.device(), lse(p),
        p.options(null, null)))));
    c.add(forward("mask not broadcastable to [B, Hq, Lq, Lk]", (p, r, m) -> {
      try (Staged mask = Staged.contiguous(m, DType.BOOL, p.spec.queryLength(), p.spec.keyLength() - 1)) {
        r.forward(AttentionRequest.create(p.query.device(), p.key.device(), p.value.device(), p.output.device(),
            lse(p), p.options(null, null).toBuilder().attnMask(mask.device()).build()));
      }
    }));
    c.add(forward("mask together with isCausal", (p, r, m) -> {
      try (Staged mask = Staged.contiguous(m, DType.BOOL, p.spec.queryLength(), p.spec.keyLength())) {
        r.forward(AttentionRequest.create(p.query.device(), p.key.device(), p.value.device(), p.output.device(),
            lse(p), p.options(null, null).toBuilder().attnMask(mask.device()).isCausal(true).build()));
      }
    }));
    c.add(optionsCall("dropout p = 1", b -> b.dropoutP(1.0)));
    c.add(optionsCall("dropout p < 0", b -> b.dropoutP(-0.1)));
    c.add(optionsCall("scale NaN", b -> b.scale(Double.NaN)));
    c.add(optionsCall("scale infinite", b -> b.scale(Double.POSITIVE_INFINITY)));
    c.add(forward("lse not fp32", (p, r, m) -> {
      try (Staged lse = Staged.contiguous(m, DType.FLOAT16, p.spec.batch(), p.spec.queryHeads(),
          p.spec.queryLength())) {
        lse.poison();
        r.forward(AttentionRequest.create(p.query.device(), p.key.device(), p.value.device(), p.output.device(),
            lse.device(), p.options(null, null)));
      }
    }));
    c.add(forward("lse of the wrong shape", (p, r, m) -> {
      try (Staged lse = Staged.contiguous(m, DType.FLOAT32, p.spec.batch(), p.spec.queryHeads(),
          p.spec.queryLength())) {
        lse.poison();
        r.forward(AttentionRequest.create(p.query.device(), p.key.device(), p.value.device(), p.output.device(),
            resize(lse.device(), 2, p.spec.queryLength() - 1), p.options(null, null)));
      }
    }));
    c.add(forward("lse requested but not given", (p, r, m) -> r.forward(AttentionRequest.create(p.query.device(),
        p.key.device(), p.value.device(), p.output.device(), null,
        p.options(null, null).toBuilder().returnLse(true).build()))));
    c.add(forward("key dtype differs from the query's", (p, r, m) -> {
      Tensor k = p.key.device();
      DType other = k.dtype() == DType.FLOAT32 ? DType.FLOAT16 : DType.FLOAT32;
      r.forward(AttentionRequest.create(p.query.device(), Tensor.of(other, k.shape(), k.strides(), k.storage()),
          p.value.device(), p.output.device(), lse(p), p.options(null, null)));
    }));
    c.add(forward("output aliases the query", (p, r, m) -> r.forward(AttentionRequest.create(p.query.device(),
        p.key.device(), p.value.device(), p.query.device(), lse(p), p.options(null, null)))));
    c.add(forward("output elements overlap (stride 0)", (p, r, m) -> {
      Tensor o = p.output.device();
      long[] st = o.strides();
      st[2] = 0;
      r.forward(AttentionRequest.create(p.query.device(), p.key.device(), p.value.device(), o.view(o.shape(), st),
          lse(p), p.options(null, null)));
    }));
    c.add(forward("output reaches beyond its storage", (p, r, m) -> {
      Tensor o = p.output.device();
      long[] st = o.strides();
      for (int i = 0; i < st.length; i++) {
        st[i] *= 2;
      }
      r.forward(AttentionRequest.create(p.query.device(), p.key.device(), p.value.device(), o.view(o.shape(), st),
          lse(p), p.options(null, null)));
    }));
    if (backward) {
      c.add(new BadCall("backward: gradOutput of the wrong shape", true, (p, r, m) -> {
        Problem.Backward b = p.currentBackward();
        train(p, r).backward(resize(b.gradOutput().device(), 2, p.spec.queryLength() - 1),
            b.gradQuery().device(), b.gradKey().device(), b.gradValue().device());
      }));
      c.add(new BadCall("backward: dK aliases dQ", true, (p, r, m) -> {
        Problem.Backward b = p.currentBackward();
        train(p, r).backward(b.gradOutput().device(), b.gradQuery().device(), b.gradQuery().device(),
            b.gradValue().device());
      }));
      c.add(new BadCall("backward: dV dtype differs", true, (p, r, m) -> {
        Problem.Backward b = p.currentBackward();
        Tensor dv = b.gradValue().device();
        DType other = dv.dtype() == DType.FLOAT32 ? DType.FLOAT16 : DType.FLOAT32;
        train(p, r).backward(b.gradOutput().device(), b.gradQuery().device(), b.gradKey().device(),
            Tensor.of(other, dv.shape(), dv.strides(), dv.storage()));
      }));
      c.add(new BadCall("backward after a forward without training", true, (p, r, m) -> {
        Problem.Backward b = p.currentBackward();
        AttentionResult inference = r.forward(AttentionRequest.create(p.query.device(), p.key.device(),
            p.value.device(), p.output.device(), lse(p), p.options(null, null).toBuilder().training(false).build()));
        inference.backward(b.gradOutput().device(), b.gradQuery().device(), b.gradKey().device(),
            b.gradValue().device());
      }));
    }
    return c;
  }

  private static BadCall forward(String name, Call call) {
    return new BadCall(name, false, call);
  }

  private static BadCall optionsCall(String name, java.util.function.UnaryOperator<AttentionOptions.Builder> change) {
    return forward(name, (p, r, m) -> r.forward(AttentionRequest.create(p.query.device(), p.key.device(),
        p.value.device(), p.output.device(), lse(p), change.apply(p.options(null, null).toBuilder()).build())));
  }

  /** The valid training forward a bad backward call follows. */
  private static AttentionResult train(Problem p, ProviderRegistry r) {
    return r.forward(p.request());
  }

  private static Tensor lse(Problem p) {
    return p.lse == null ? null : p.lse.device();
  }

  private static long[] drop(long[] a) {
    return java.util.Arrays.copyOfRange(a, 1, a.length);
  }

  /** The view with dimension {@code dim} shrunk to {@code size} (same strides: stays within the storage). */
  private static Tensor resize(Tensor t, int dim, long size) {
    long[] shape = t.shape();
    shape[dim] = Math.max(1, size);
    return t.view(shape, t.strides());
  }
}
