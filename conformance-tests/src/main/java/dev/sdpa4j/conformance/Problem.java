package dev.sdpa4j.conformance;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.DType;
import dev.sdpa4j.MaskKind;
import dev.sdpa4j.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The tensors of one {@link ForwardCase} (and, for training cases, of its backward call) in the provider's memory,
 * filled with the case's random data, and the matching requests over the device and over the host copies.
 */
final class Problem implements AutoCloseable {
  final ForwardCase spec;
  final Staged query;
  final Staged key;
  final Staged value;
  final Staged mask;
  final Staged output;
  final Staged lse;
  private final List<Staged> all = new ArrayList<>();
  private final SplittableRandom random;
  private AttentionRequest request;
  private Backward backward;
  /** The reference results, once the kit has them (set by {@link Checker}). */
  ReferenceResults references;

  /** The tensors of the backward call of a training case. */
  record Backward(Staged gradOutput, Staged gradQuery, Staged gradKey, Staged gradValue) {}

  private Problem(ForwardCase spec, TensorMemory memory, long seed) {
    this.spec = spec;
    this.random = new SplittableRandom(seed);
    DType t = spec.dtype();
    long b = spec.batch();
    long hq = spec.queryHeads();
    long hkv = spec.kvHeads();
    long lq = spec.queryLength();
    long lk = spec.keyLength();
    Layout layout = spec.layout();
    query = add(Staged.allocate(memory, t, shape(b, hq, lq, spec.headDim()),
        layout.strides(b, hq, lq, spec.headDim()), 0));
    key = add(Staged.allocate(memory, t, shape(b, hkv, lk, spec.headDim()),
        layout.strides(b, hkv, lk, spec.headDim()), 0));
    value = add(Staged.allocate(memory, t, shape(b, hkv, lk, spec.valueHeadDim()),
        layout.strides(b, hkv, lk, spec.valueHeadDim()), 0));
    output = add(Staged.allocate(memory, t, shape(b, hq, lq, spec.valueHeadDim()),
        layout.strides(b, hq, lq, spec.valueHeadDim()), 7));
    lse = spec.lse()
        ? add(Staged.allocate(memory, DType.FLOAT32, new long[] {b, hq, lq}, layout.lseStrides(b, hq, lq), 5))
        : null;
    MaskSpec m = spec.mask();
    mask = m == null ? null : add(Staged.contiguous(memory, m.dtype(), m.broadcast().shape(b, hq, lq, lk)));
    fillGaussian(query);
    fillGaussian(key);
    fillGaussian(value);
    if (mask != null) {
      fillMask(mask, m);
    }
    for (Staged s : List.of(query, key, value)) {
      s.upload();
    }
    if (mask != null) {
      mask.upload();
    }
    poisonOutputs();
  }

  /** Allocates, fills and uploads the tensors of {@code spec}; outputs are poisoned. */
  static Problem create(ForwardCase spec, TensorMemory memory, long seed) {
    Problem p = new Problem(spec, memory, seed);
    try {
      p.request = AttentionRequest.create(p.query.device(), p.key.device(), p.value.device(), p.output.device(),
          p.lse == null ? null : p.lse.device(), p.options(p.mask == null ? null : p.mask.device(), null));
      return p;
    } catch (RuntimeException e) {
      p.close();
      throw e;
    }
  }

  private static long[] shape(long... s) {
    return s;
  }

  private Staged add(Staged s) {
    all.add(s);
    return s;
  }

  /** The options of this case, with the given mask tensor and dropout seed (null: the case's). */
  AttentionOptions options(Tensor maskTensor, dev.sdpa4j.DropoutSeed seed) {
    AttentionOptions.Builder o = AttentionOptions.builder()
        .causal(spec.causal())
        .attnMask(maskTensor)
        .dropoutP(spec.dropoutP())
        .dropoutResolution(spec.dropoutResolution())
        .enableGqa(spec.queryHeads() != spec.kvHeads())
        .returnLse(spec.lse())
        .training(spec.training())
        .deterministic(spec.deterministic());
    if (spec.scale() != null) {
      o.scale(spec.scale());
    }
    dev.sdpa4j.DropoutSeed s = seed != null ? seed : spec.dropoutSeed();
    if (s != null) {
      o.dropoutSeed(s);
    }
    return o.build();
  }

  /** The request over the provider's memory (made once; a drawn dropout seed stays fixed). */
  AttentionRequest request() {
    return request;
  }

  /** The same request over the host copies, with the dropout seed the device request resolved: for the reference. */
  AttentionRequest hostRequest() {
    return AttentionRequest.create(query.host(), key.host(), value.host(), output.host(),
        lse == null ? null : lse.host(),
        options(mask == null ? null : mask.host(), request.dropoutSeed().orElse(null)));
  }

  /** The outputs the provider writes in a forward call. */
  List<Staged> forwardOutputs() {
    return lse == null ? List.of(output) : List.of(output, lse);
  }

  /** The inputs the provider must leave alone. */
  List<Staged> inputs() {
    return mask == null ? List.of(query, key, value) : List.of(query, key, value, mask);
  }

  void poisonOutputs() {
    for (Staged s : forwardOutputs()) {
      s.poison();
    }
  }

  void downloadOutputs() {
    for (Staged s : forwardOutputs()) {
      s.download();
    }
  }

  /** Allocates the backward call's tensors (once): random dOut, poisoned gradients in the case's layout. */
  Backward backward(TensorMemory memory) {
    if (backward == null) {
      DType t = spec.dtype();
      Layout l = spec.layout();
      long b = spec.batch();
      Staged dOut = add(Staged.allocate(memory, t, output.host().shape(), output.host().strides(), 0));
      Staged dq = add(Staged.allocate(memory, t, query.host().shape(),
          l.strides(b, spec.queryHeads(), spec.queryLength(), spec.headDim()), 7));
      Staged dk = add(Staged.allocate(memory, t, key.host().shape(),
          l.strides(b, spec.kvHeads(), spec.keyLength(), spec.headDim()), 7));
      Staged dv = add(Staged.allocate(memory, t, value.host().shape(),
          l.strides(b, spec.kvHeads(), spec.keyLength(), spec.valueHeadDim()), 7));
      fillGaussian(dOut);
      dOut.upload();
      backward = new Backward(dOut, dq, dk, dv);
    }
    for (Staged g : List.of(backward.gradQuery(), backward.gradKey(), backward.gradValue())) {
      g.poison();
    }
    return backward;
  }

  /** The backward call's tensors, after {@link #backward(TensorMemory)}. */
  Backward currentBackward() {
    if (backward == null) {
      throw new IllegalStateException("no backward call yet");
    }
    return backward;
  }

  BackwardRequest backwardRequest() {
    return BackwardRequest.create(request, backward.gradOutput().device(), backward.gradQuery().device(),
        backward.gradKey().device(), backward.gradValue().device());
  }

  BackwardRequest hostBackwardRequest() {
    return BackwardRequest.create(hostRequest(), backward.gradOutput().host(), backward.gradQuery().host(),
        backward.gradKey().host(), backward.gradValue().host());
  }

  private void fillGaussian(Staged s) {
    Tensor t = s.host();
    MemorySegment seg = t.hostSegment();
    int size = t.dtype().byteSize();
    for (long off : Values.offsets(t)) {
      t.dtype().write(seg, off * size, random.nextGaussian());
    }
  }

  /**
   * Boolean masks keep 80% of keys; additive masks add N(0, 0.5²) and mask 10% with {@code -inf}. With
   * {@link MaskSpec#fullyMaskedRows()}, whole rows are masked as that record describes.
   */
  private void fillMask(Staged s, MaskSpec m) {
    Tensor t = s.host();
    MemorySegment seg = t.hostSegment();
    long[] shape = t.shape();
    int rank = shape.length;
    long[] idx = new long[rank];
    int size = t.dtype().byteSize();
    boolean bool = m.kind() == MaskKind.BOOLEAN;
    for (long off : Values.offsets(t)) {
      boolean masked = random.nextDouble() < (bool ? 0.2 : 0.1);
      if (m.fullyMaskedRows() && wholeRowMasked(m.broadcast(), idx, shape)) {
        masked = true;
      }
      double v = bool ? (masked ? 0 : 1) : (masked ? Double.NEGATIVE_INFINITY : 0.5 * random.nextGaussian());
      t.dtype().write(seg, off * size, v);
      for (int d = rank - 1; d >= 0; d--) {
        if (++idx[d] < shape[d]) {
          break;
        }
        idx[d] = 0;
      }
    }
  }

  private static boolean wholeRowMasked(MaskSpec.Broadcast b, long[] idx, long[] shape) {
    int rank = idx.length;
    return switch (b) {
      case FULL, QUERY_KEY, PER_BATCH -> idx[rank - 2] % 3 == 1;
      case KEY_PADDING -> idx[0] == shape[0] - 1;
      case PER_HEAD -> idx[1] == 0;
      case KEYS -> true;
    };
  }

  @Override
  public void close() {
    for (Staged s : all) {
      s.close();
    }
  }
}
