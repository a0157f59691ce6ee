package dev.sdpa4j.cli;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.AttentionResult;
import dev.sdpa4j.AttentionResult.Gradients;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.CausalMode;
import dev.sdpa4j.DType;
import dev.sdpa4j.DropoutResolution;
import dev.sdpa4j.ProviderRegistry;
import dev.sdpa4j.ProviderScope;
import dev.sdpa4j.Sdpa;
import dev.sdpa4j.Selection;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.Verdict;
import dev.sdpa4j.provider.math.ReferenceAttention;
import java.io.PrintWriter;
import java.lang.foreign.Arena;
import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code sdpa4j run}: attention on generated host inputs with the chosen (or best) provider, checked against the
 * float64 reference on the first batch and head, timed, with the memory it used. With {@code --backward} it runs
 * training steps instead (forward with {@code training(true)}, then the backward of a random output gradient), checks
 * the gradients of the first batch against the float64 reference, and times the whole step.
 */
@Command(name = "run", description = "Run attention on random inputs, check it against the float64 reference, time it.")
final class RunCommand implements Callable<Integer> {
  /** Kinds of generated mask. */
  enum MaskOption { none, padding, bias }

  /** Causal alignments on the command line. */
  enum CausalOption { none, top_left, bottom_right }

  /** A training step (forward + backward) counts this many times the forward's FLOPs, as in PyTorch's benchmarks. */
  private static final double TRAINING_STEP_FLOPS = 3.5;

  @Spec
  CommandSpec spec;

  @Option(names = "--batch", defaultValue = "2", description = "B (default ${DEFAULT-VALUE})")
  long batch;

  @Option(names = "--heads", defaultValue = "8", description = "query heads Hq (default ${DEFAULT-VALUE})")
  long heads;

  @Option(names = "--kv-heads", description = "key/value heads Hkv (default: Hq; fewer enables GQA)")
  Long kvHeads;

  @Option(names = "--seq", defaultValue = "1024", description = "query length Lq (default ${DEFAULT-VALUE})")
  long seq;

  @Option(names = "--kv-seq", description = "key length Lk (default: Lq)")
  Long kvSeq;

  @Option(names = "--head-dim", defaultValue = "64", description = "E (default ${DEFAULT-VALUE})")
  long headDim;

  @Option(names = "--value-dim", description = "Ev (default: E)")
  Long valueDim;

  @Option(names = "--dtype", defaultValue = "fp32", converter = DTypeConverter.class,
      description = "fp32, fp16, bf16 or fp64 (default ${DEFAULT-VALUE})")
  DType dtype;

  @Option(names = "--causal", arity = "0..1", fallbackValue = "top_left", defaultValue = "none",
      description = "causal masking: top_left (PyTorch's is_causal), bottom_right (KV-cache alignment) or none")
  CausalOption causal;

  @Option(names = "--mask", defaultValue = "none",
      description = "none, padding (boolean key-padding mask [B,1,1,Lk]) or bias (additive fp32 bias [1,Hq,Lq,Lk])")
  MaskOption mask;

  @Option(names = "--dropout", defaultValue = "0", description = "dropout probability p in [0, 1)")
  double dropout;

  @Option(names = "--dropout-resolution", defaultValue = "WORD",
      description = "the dropout mask's resolution: WORD (32-bit compares, the default) or BYTE (FlashAttention-2's "
          + "8-bit mask, p rounded to multiples of 1/256)")
  DropoutResolution dropoutResolution;

  @Option(names = "--scale", description = "scale of Q·Kᵀ (default 1/sqrt(E))")
  Double scale;

  @Option(names = "--provider", split = ",", description = "provider(s) to use, in order of preference (default: ranking)")
  String[] providers;

  @Option(names = "--backward", description = "run training steps: forward + backward, gradients checked and timed")
  boolean backward;

  @Option(names = "--repeats", defaultValue = "5", description = "timed runs after one warm-up (default ${DEFAULT-VALUE})")
  int repeats;

  @Option(names = "--seed", defaultValue = "42", description = "seed of the generated inputs and of dropout")
  long seed;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    long hkv = kvHeads == null ? heads : kvHeads;
    long lk = kvSeq == null ? seq : kvSeq;
    long ev = valueDim == null ? headDim : valueDim;
    Arena arena = Arena.ofShared();
    try (arena) {
      SplittableRandom random = new SplittableRandom(seed);
      Tensor q = gaussian(arena, random, batch, heads, seq, headDim);
      Tensor k = gaussian(arena, random, batch, hkv, lk, headDim);
      Tensor v = gaussian(arena, random, batch, hkv, lk, ev);
      Tensor o = Tensor.allocate(arena, dtype, batch, heads, seq, ev);
      Tensor lse = backward ? Tensor.allocate(arena, DType.FLOAT32, batch, heads, seq) : null;
      AttentionOptions options = options(arena, random, lk, hkv);
      AttentionRequest request = AttentionRequest.create(q, k, v, o, lse, options);
      Tensor dOut = backward ? gaussian(arena, random, batch, heads, seq, ev) : null;
      Gradients grads = backward ? new Gradients(Tensor.allocate(arena, dtype, q.shape()),
          Tensor.allocate(arena, dtype, k.shape()), Tensor.allocate(arena, dtype, v.shape())) : null;

      try (ProviderScope scope = providers == null ? null : Sdpa.useProviders(providers)) {
        Selection selection = ProviderRegistry.discovered().select(request);
        out.println("request:  " + request.describe());
        for (Verdict verdict : selection.verdicts()) {
          boolean chosen = selection.chosen() != null && verdict.provider().equals(selection.chosen().name());
          out.printf("  %-12s %s%n", verdict.provider(), chosen ? "CHOSEN" : String.join("; ", verdict.reasons()));
        }
        AttentionResult result = step(request, dOut, grads);
        long allocatedBefore = allocatedBytes();
        double[] millis = new double[Math.max(1, repeats)];
        for (int r = 0; r < millis.length; r++) {
          long t0 = System.nanoTime();
          result = step(request, dOut, grads);
          millis[r] = (System.nanoTime() - t0) / 1e6;
        }
        long allocatedPerCall = (allocatedBytes() - allocatedBefore) / millis.length;
        Arrays.sort(millis);
        double median = millis[millis.length / 2];
        double flops = request.shape().forwardFlops() * (causal == CausalOption.none ? 1.0 : 0.5)
            * (backward ? TRAINING_STEP_FLOPS : 1.0);
        out.printf(Locale.ROOT, "provider: %s%n", result.provider());
        out.printf(Locale.ROOT, "time:     %s median %.3f ms of %d runs (min %.3f, max %.3f) = %.2f GFLOP/s%s%n",
            backward ? "forward + backward" : "forward", median, millis.length, millis[0], millis[millis.length - 1],
            flops / median / 1e6, (causal == CausalOption.none ? "" : " (causal: half the FLOPs counted)")
                + (backward ? " (a step counts 3.5x the forward's FLOPs)" : ""));
        long tensorBytes = bytes(q) + bytes(k) + bytes(v) + bytes(o) + request.mask().map(m -> bytes(options.attnMask().orElseThrow())).orElse(0L);
        if (backward) {
          tensorBytes += bytes(lse) + bytes(dOut) + bytes(grads.query()) + bytes(grads.key()) + bytes(grads.value());
        }
        out.printf(Locale.ROOT, "memory:   tensors %.2f MiB; JVM heap allocated per call %.3f MiB (a materialised "
            + "score matrix would be %.2f MiB)%n", tensorBytes / 1048576.0, allocatedPerCall / 1048576.0,
            batch * heads * seq * lk * 4 / 1048576.0);
        int status = check(out, request);
        return backward ? Math.max(status, checkGradients(out, result.request(), dOut, grads)) : status;
      }
    }
  }

  /** One forward call, or with {@code --backward} one training step. */
  private static AttentionResult step(AttentionRequest request, Tensor dOut, Gradients grads) {
    AttentionResult result = ProviderRegistry.discovered().forward(request);
    if (dOut != null) {
      result.backward(dOut, grads.query(), grads.key(), grads.value());
    }
    return result;
  }

  /**
   * Compares the gradients of batch 0 (every head, so that grouped-query sums are covered) with the float64
   * reference; returns the exit code.
   */
  private int checkGradients(PrintWriter out, AttentionRequest request, Tensor dOut, Gradients grads) {
    AttentionRequest first = restricted(request, 1, true);
    BackwardRequest backwardRequest = BackwardRequest.create(first, leading(dOut, 1), leading(grads.query(), 1),
        leading(grads.key(), 1), leading(grads.value(), 1));
    ReferenceAttention.Gradients expected = ReferenceAttention.backward(backwardRequest, DType.FLOAT64);
    double tolerance = 2 * tolerance();
    boolean ok = true;
    String[] names = {"dQ", "dK", "dV"};
    Tensor[] got = {backwardRequest.gradQuery(), backwardRequest.gradKey(), backwardRequest.gradValue()};
    double[][] want = {expected.query(), expected.key(), expected.value()};
    for (int g = 0; g < 3; g++) {
      double relL2 = compare(got[g], want[g]).relativeL2();
      boolean good = relL2 <= tolerance;
      ok &= good;
      out.printf(Locale.ROOT, "check:    %s of batch 0 against the float64 reference: relative L2 error %.3g "
          + "(tolerance %.0g for %s): %s%n", names[g], relL2, tolerance, dtype.shortName(), good ? "OK" : "FAILED");
    }
    out.flush();
    return ok ? 0 : 1;
  }

  /**
   * The distance of {@code got}, a host tensor read in row-major order, from a contiguous reference: elements where
   * both are NaN agree, NaN on one side only is an infinite error.
   */
  private static Distance compare(Tensor got, double[] expected) {
    double maxAbs = 0;
    double errSq = 0;
    double refSq = 0;
    long[] shape = got.shape();
    int at = 0;
    for (long a = 0; a < shape[0]; a++) {
      for (long b = 0; b < shape[1]; b++) {
        for (long c = 0; c < shape[2]; c++) {
          for (long d = 0; d < shape[3]; d++) {
            double g = got.get(a, b, c, d);
            double x = expected[at++];
            double diff = Double.isNaN(g) != Double.isNaN(x) ? Double.POSITIVE_INFINITY : Math.abs(g - x);
            if (!Double.isNaN(diff)) {
              maxAbs = Math.max(maxAbs, diff);
              errSq += diff * diff;
              refSq += x * x;
            }
          }
        }
      }
    }
    return new Distance(maxAbs, Math.sqrt(errSq / Math.max(refSq, Double.MIN_NORMAL)));
  }

  /** Largest absolute and relative L2 error against a reference. */
  private record Distance(double maxAbs, double relativeL2) {}

  /** Compares batch 0, head 0 of the output with the float64 reference; returns the exit code. */
  private int check(PrintWriter out, AttentionRequest request) {
    AttentionRequest first = restricted(request, 2, false);
    Distance d = compare(leading(request.output(), 2), ReferenceAttention.forward(first, DType.FLOAT64).output());
    double tolerance = tolerance();
    boolean ok = d.relativeL2() <= tolerance;
    out.printf(Locale.ROOT, "check:    batch 0, head 0 against the float64 reference: max abs error %.3g, relative L2 "
        + "error %.3g (tolerance %.0g for %s): %s%n", d.maxAbs(), d.relativeL2(), tolerance, dtype.shortName(),
        ok ? "OK" : "FAILED");
    out.flush();
    return ok ? 0 : 1;
  }

  /** The relative L2 error the output may have against the float64 reference (gradients get twice as much). */
  private double tolerance() {
    return switch (dtype) {
      case FLOAT64 -> 1e-12;
      case FLOAT32 -> 1e-5;
      case FLOAT16 -> 5e-3;
      case BFLOAT16, BOOL -> 4e-2;
    };
  }

  /**
   * The request restricted to batch 0 ({@code dims} = 1) or to batch 0 and query head 0 and its key/value head
   * ({@code dims} = 2), on a scratch output: with {@code training} it reads the LSE and dropout seed its forward
   * kept, as the backward's forward request; else it is a plain forward.
   */
  private static AttentionRequest restricted(AttentionRequest r, int dims, boolean training) {
    Tensor q = leading(r.query(), dims);
    Tensor k = leading(r.key(), dims);
    Tensor scratch = Tensor.allocate(Arena.ofAuto(), r.dtype(), q.size(0), q.size(1), q.size(2), r.output().size(3));
    AttentionOptions.Builder o = r.options().toBuilder().scale(r.scale()).enableGqa(q.size(1) != k.size(1))
        .training(training).returnLse(training);
    r.dropoutSeed().ifPresent(o::dropoutSeed);
    r.mask().ifPresent(m -> o.attnMask(leading(m, dims)));
    return AttentionRequest.create(q, k, leading(r.value(), dims), scratch,
        training ? leading(r.lse().orElseThrow(), dims) : null, o.build());
  }

  /** A view of index 0 along the first {@code dims} dimensions of {@code t}. */
  private static Tensor leading(Tensor t, int dims) {
    long[] shape = t.shape();
    Arrays.fill(shape, 0, dims, 1);
    return t.view(shape, t.strides());
  }

  private AttentionOptions options(Arena arena, SplittableRandom random, long lk, long hkv) {
    AttentionOptions.Builder b = AttentionOptions.builder()
        .causal(switch (causal) {
          case none -> CausalMode.NONE;
          case top_left -> CausalMode.TOP_LEFT;
          case bottom_right -> CausalMode.BOTTOM_RIGHT;
        })
        .enableGqa(hkv != heads)
        .dropoutP(dropout)
        .dropoutResolution(dropoutResolution)
        .training(backward);
    if (scale != null) {
      b.scale(scale);
    }
    if (dropout > 0) {
      b.dropoutSeed(seed, 0);
    }
    switch (mask) {
      case none -> { }
      case padding -> {
        Tensor m = Tensor.allocate(arena, DType.BOOL, batch, 1, 1, lk);
        for (long bi = 0; bi < batch; bi++) {
          long valid = 1 + random.nextLong(lk);
          for (long j = 0; j < lk; j++) {
            m.set(j < valid ? 1 : 0, bi, 0, 0, j);
          }
        }
        b.attnMask(m);
      }
      case bias -> {
        Tensor m = Tensor.allocate(arena, DType.FLOAT32, 1, heads, seq, lk);
        long n = m.elementCount();
        for (long i = 0; i < n; i++) {
          DType.FLOAT32.write(m.hostSegment(), i * 4, random.nextGaussian());
        }
        b.attnMask(m);
      }
    }
    return b.build();
  }

  private Tensor gaussian(Arena arena, SplittableRandom random, long... shape) {
    Tensor t = Tensor.allocate(arena, dtype, shape);
    long n = t.elementCount();
    for (long i = 0; i < n; i++) {
      dtype.write(t.hostSegment(), i * dtype.byteSize(), random.nextGaussian());
    }
    return t;
  }

  private static long bytes(Tensor t) {
    return t.elementSpan() * t.dtype().byteSize();
  }

  private static long allocatedBytes() {
    return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean()).getTotalThreadAllocatedBytes();
  }

  /** Parses dtype names for picocli. */
  static final class DTypeConverter implements picocli.CommandLine.ITypeConverter<DType> {
    @Override
    public DType convert(String value) {
      return DType.parse(value);
    }
  }
}
