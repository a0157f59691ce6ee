package dev.sdpa4j.conformance;

import static org.junit.jupiter.api.Assertions.fail;

import dev.sdpa4j.AttentionArgumentException;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.DType;
import dev.sdpa4j.NoSuitableProviderException;
import dev.sdpa4j.ProviderRegistry;
import dev.sdpa4j.provider.math.ReferenceAttention;
import dev.sdpa4j.spi.AttentionProvider;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/** Runs the kit's cases against one provider in one memory and fails with a reproducible report. */
final class Checker {
  private final AttentionProvider provider;
  private final TensorMemory memory;
  private final Settings settings;
  private Prefetch prefetch;

  Checker(AttentionProvider provider, TensorMemory memory, Settings settings) {
    this.provider = provider;
    this.memory = memory;
    this.settings = settings;
  }

  Settings settings() {
    return settings;
  }

  /** What is wrong in one case, before {@link #reported} adds the case, the seed and the rerun command. */
  static final class CaseProblem extends RuntimeException {
    private static final long serialVersionUID = 1L;

    CaseProblem(String message, Throwable cause) {
      super(message, cause);
    }
  }

  private static CaseProblem problem(String text) {
    return new CaseProblem(text, null);
  }

  private static CaseProblem problem(String text, Throwable cause) {
    return new CaseProblem(text, cause);
  }

  /**
   * Runs one case; a problem fails it with a report naming the provider, the problem, the case, the seed and the
   * command that reruns it.
   */
  void reported(String caseName, Runnable body) {
    try {
      body.run();
    } catch (CaseProblem e) {
      throw report(caseName, e);
    }
  }

  private Error report(String caseName, CaseProblem e) {
    return new org.opentest4j.AssertionFailedError(provider.name() + ": " + e.getMessage()
        + "\n  case:  " + caseName
        + "\n  seed:  " + settings.seed()
        + "\n  rerun: " + settings.rerunCase(caseName), e.getCause());
  }

  Problem allocate(ForwardCase c) {
    return Problem.create(c, memory, settings.caseSeed(c.name()));
  }

  // ---- forward accuracy ----

  /** The provider's output and LSE match the float64 reference, every output element is written. */
  void forward(ForwardCase c) {
    reported(c.name(), () -> {
      try (Problem p = allocate(c)) {
        runForward(p);
        checkForward(p);
      }
    });
  }

  /** Poisons the outputs, runs the accepted forward, downloads the outputs, checks the inputs are untouched. */
  void runForward(Problem p) {
    requireAccepted(p.spec, p.request());
    p.poisonOutputs();
    try {
      provider.forward(p.request());
    } catch (RuntimeException | Error e) {
      throw problem("forward threw on a request it accepted (notSupportedReasons was empty): " + e, e);
    }
    p.downloadOutputs();
    requireInputsUntouched(p.inputs(), "forward");
  }

  private void requireAccepted(ForwardCase c, AttentionRequest r) {
    List<String> reasons;
    try {
      reasons = provider.notSupportedReasons(r);
    } catch (RuntimeException e) {
      throw problem("notSupportedReasons threw instead of returning reasons: " + e, e);
    }
    if (reasons == null || !reasons.isEmpty()) {
      throw problem("refuses a request its capabilities claim to support: " + reasons);
    }
  }

  private void requireInputsUntouched(List<Staged> inputs, String call) {
    for (Staged s : inputs) {
      long at = s.changedByteInDevice();
      if (at >= 0) {
        throw problem(call + " wrote into an input " + s.host() + " (first changed byte " + at + ")");
      }
    }
  }

  /** Every element of the view written (no poison left) and nothing outside it (gaps and spare still poison). */
  void requireWritten(String what, Staged s) {
    long poison = Staged.poisonBits(s.dtype());
    long[] offsets = Values.offsets(s.host());
    boolean[] inView = new boolean[Math.toIntExact(s.slots())];
    int unwritten = 0;
    int first = -1;
    for (int n = 0; n < offsets.length; n++) {
      inView[(int) offsets[n]] = true;
      if (s.rawAt(offsets[n]) == poison) {
        unwritten++;
        if (first < 0) {
          first = n;
        }
      }
    }
    if (unwritten > 0) {
      throw problem(what + ": " + unwritten + " of " + offsets.length
          + " elements never written (still the poison NaN); first at " + Values.index(first, s.host().shape()));
    }
    for (int slot = 0; slot < inView.length; slot++) {
      if (!inView[slot] && s.rawAt(slot) != poison) {
        throw problem(what + ": wrote outside its tensor: element offset " + slot + " lies in a gap or past"
            + " the end of " + s.host() + " (strides " + Arrays.toString(s.host().strides()) + ")");
      }
    }
  }

  /** Output and LSE written and close to the reference; fully masked rows exactly zero with LSE -inf. */
  void checkForward(Problem p) {
    requireWritten("output", p.output);
    if (p.lse != null) {
      requireWritten("lse", p.lse);
    }
    ReferenceResults refs = references(p);
    ReferenceAttention.Forward exact = refs.exact();
    ReferenceAttention.Forward low = refs.low();
    boolean[] masked = new boolean[exact.lse().length];
    for (int r = 0; r < masked.length; r++) {
      masked[r] = exact.lse()[r] == Double.NEGATIVE_INFINITY;
    }
    DType t = p.spec.dtype();
    long k = reduction(p.spec);
    compare(Quantity.OUTPUT, t, k, Values.read(p.output.host()), exact.output(), low.output(),
        p.output.host().shape(), masked, Math.toIntExact(p.spec.valueHeadDim()));
    if (p.lse != null) {
      compare(Quantity.LSE, t, k, Values.read(p.lse.host()), exact.lse(), low.lse(), p.lse.host().shape(), null, 1);
    }
  }


  private void compare(Quantity q, DType t, long reduction, double[] got, double[] exact, double[] low, long[] shape,
      boolean[] maskedRows, int rowLength) {
    Closeness.Tolerance tol = Closeness.tolerance(q, t, exact, low, reduction);
    Optional<String> bad = Closeness.mismatch(q, t, got, exact, tol, shape, maskedRows, rowLength);
    if (bad.isPresent()) {
      throw problem(bad.get());
    }
  }

  /** The longest sum behind an element: {@code max(E, Ev, Lq, Lk)}. */
  private static long reduction(ForwardCase c) {
    return Math.max(Math.max(c.headDim(), c.valueHeadDim()), Math.max(c.queryLength(), c.keyLength()));
  }

  // ---- backward ----

  /** Forward (checked), then backward: dQ, dK, dV written and close to the reference gradients. */
  void backward(ForwardCase c) {
    reported(c.name(), () -> {
      try (Problem p = allocate(c)) {
        runForward(p);
        checkForward(p);
        runBackward(p);
        checkBackward(p);
      }
    });
  }

  void runBackward(Problem p) {
    Problem.Backward b = p.backward(memory);
    BackwardRequest r = p.backwardRequest();
    try {
      provider.backward(r);
    } catch (RuntimeException | Error e) {
      throw problem("backward threw on a training request it accepted: " + e, e);
    }
    for (Staged g : List.of(b.gradQuery(), b.gradKey(), b.gradValue())) {
      g.download();
    }
    List<Staged> untouched = new ArrayList<>(p.inputs());
    untouched.add(b.gradOutput());
    untouched.addAll(p.forwardOutputs());
    // the forward outputs' host copies hold what the forward wrote: backward reads them, never writes them
    requireInputsUntouched(untouched, "backward");
  }

  void checkBackward(Problem p) {
    Problem.Backward b = p.currentBackward();
    requireWritten("dQ", b.gradQuery());
    requireWritten("dK", b.gradKey());
    requireWritten("dV", b.gradValue());
    ReferenceResults refs = references(p);
    if (refs.exactGradients() == null) {
      refs = refs.withGradients(p);
    }
    ReferenceAttention.Gradients exact = refs.exactGradients();
    ReferenceAttention.Gradients low = refs.lowGradients();
    DType t = p.spec.dtype();
    long k = reduction(p.spec);
    compare(Quantity.GRAD_VALUE, t, k, Values.read(b.gradValue().host()), exact.value(), low.value(),
        b.gradValue().host().shape(), null, 1);
    compare(Quantity.GRAD_KEY, t, k, Values.read(b.gradKey().host()), exact.key(), low.key(),
        b.gradKey().host().shape(), null, 1);
    compare(Quantity.GRAD_QUERY, t, k, Values.read(b.gradQuery().host()), exact.query(), low.query(),
        b.gradQuery().host().shape(), null, 1);
  }

  /** The case's reference results: computed ahead when they were, else now (and kept for its backward check). */
  private ReferenceResults references(Problem p) {
    ReferenceResults r = p.references;
    if (r == null) {
      r = (prefetch == null ? Optional.<ReferenceResults>empty() : prefetch.take(p.spec))
          .orElseGet(() -> ReferenceResults.forward(p));
      p.references = r;
    }
    return r;
  }

  /** Computes the reference results of {@code cases} ahead, as each case runs (call {@link #ahead} first). */
  void prefetch(List<ForwardCase> cases) {
    prefetch = new Prefetch(cases, settings);
  }

  /** Before running the case at {@code index} of the prefetched list: starts the cases after it. */
  void ahead(int index) {
    if (prefetch != null) {
      prefetch.ahead(index);
    }
  }


  // ---- determinism ----

  /** The same call twice gives the same bits (output, LSE, and gradients for training cases). */
  void determinism(ForwardCase c) {
    reported(c.name(), () -> {
      try (Problem p = allocate(c)) {
        runForward(p);
        long[][] first = bits(p.forwardOutputs());
        long[][] firstGrads = null;
        if (c.training()) {
          runBackward(p);
          firstGrads = bits(gradients(p));
        }
        runForward(p);
        requireSameBits("forward", p.forwardOutputs(), first);
        if (c.training()) {
          runBackward(p);
          requireSameBits("backward", gradients(p), firstGrads);
        }
      }
    });
  }

  private static List<Staged> gradients(Problem p) {
    Problem.Backward b = p.currentBackward();
    return List.of(b.gradQuery(), b.gradKey(), b.gradValue());
  }

  static long[][] bits(List<Staged> tensors) {
    long[][] out = new long[tensors.size()][];
    for (int i = 0; i < out.length; i++) {
      Staged s = tensors.get(i);
      long[] offsets = Values.offsets(s.host());
      out[i] = new long[offsets.length];
      for (int n = 0; n < offsets.length; n++) {
        out[i][n] = s.rawAt(offsets[n]);
      }
    }
    return out;
  }

  private void requireSameBits(String call, List<Staged> tensors, long[][] expected) {
    long[][] now = bits(tensors);
    for (int i = 0; i < now.length; i++) {
      for (int n = 0; n < now[i].length; n++) {
        if (now[i][n] != expected[i][n]) {
          Staged s = tensors.get(i);
          throw problem("the same " + call + " call gave different bits the next time (determinism "
              + "claimed): " + s.host() + " at " + Values.index(n, s.host().shape()) + ": first 0x"
              + Long.toHexString(expected[i][n]) + ", then 0x" + Long.toHexString(now[i][n]));
        }
      }
    }
  }

  // ---- concurrency ----

  /**
   * Several threads call the provider at once, each on its own outputs, several times; every result must equal the
   * serial one bit for bit when the provider is deterministic, else be close to the reference.
   */
  void concurrency(List<ForwardCase> cases, boolean bitwise, int threads, int rounds) {
    List<Problem> serial = new ArrayList<>();
    List<Problem> parallel = new ArrayList<>();
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<long[][]> expected = new ArrayList<>();
      for (ForwardCase c : cases) {
        Problem p = allocate(c);
        serial.add(p);
        reported(c.name(), () -> {
          runForward(p);
          checkForward(p);
        });
        expected.add(bits(p.forwardOutputs()));
      }
      for (int t = 0; t < threads; t++) {
        Problem p = allocate(cases.get(t % cases.size()));
        parallel.add(p);
        reported(p.spec.name(), () -> requireAccepted(p.spec, p.request()));
      }
      for (int round = 0; round < rounds; round++) {
        for (Problem p : parallel) {
          p.poisonOutputs();
        }
        CountDownLatch start = new CountDownLatch(1);
        List<Future<?>> runs = new ArrayList<>();
        for (Problem p : parallel) {
          runs.add(pool.submit(() -> {
            start.await();
            provider.forward(p.request());
            return null;
          }));
        }
        start.countDown();
        for (int t = 0; t < runs.size(); t++) {
          String name = parallel.get(t).spec.name();
          String where = " (" + threads + " threads at once; thread " + t + ", round " + (round + 1) + ")";
          try {
            runs.get(t).get(10, TimeUnit.MINUTES);
          } catch (java.util.concurrent.ExecutionException e) {
            throw report(name, problem("forward threw when called concurrently" + where + ": " + e.getCause(),
                e.getCause()));
          } catch (Exception e) {
            throw report(name, problem("concurrent forward did not complete" + where + ": " + e, e));
          }
        }
        for (int t = 0; t < parallel.size(); t++) {
          Problem p = parallel.get(t);
          p.downloadOutputs();
          String where = " (" + threads + " threads at once; thread " + t + ", round " + (round + 1) + ")";
          try {
            if (bitwise) {
              requireSameBits("forward, run concurrently" + where + ",", p.forwardOutputs(),
                  expected.get(t % cases.size()));
            } else {
              checkForward(p);
            }
          } catch (CaseProblem e) {
            throw report(p.spec.name(), problem("concurrent calls differ from serial ones" + where + ": "
                + e.getMessage(), e.getCause()));
          }
        }
      }
    } finally {
      pool.shutdownNow();
      serial.forEach(Problem::close);
      parallel.forEach(Problem::close);
    }
  }

  // ---- refusals ----

  /**
   * A request using an unclaimed feature: {@code notSupportedReasons} gives at least one reason, the registry of
   * just this provider refuses it with {@link NoSuitableProviderException}, the provider never runs, outputs stay
   * poisoned.
   */
  void refusal(Grid.Refusal refusal) {
    ForwardCase c = refusal.spec();
    reported(c.name(), () -> {
      try (Problem p = allocate(c)) {
        List<String> reasons;
        try {
          reasons = provider.notSupportedReasons(p.request());
        } catch (RuntimeException e) {
          throw problem("notSupportedReasons threw instead of returning reasons: " + e, e);
        }
        if (reasons == null || reasons.isEmpty()) {
          throw problem("accepts a request using " + refusal.claim()
              + ", which its capabilities do not claim; notSupportedReasons must give at least one reason");
        }
        for (String reason : reasons) {
          if (reason == null || reason.isBlank()) {
            throw problem("notSupportedReasons gave a blank reason: " + reasons);
          }
        }
        CountingProvider counting = new CountingProvider(provider);
        boolean refused = false;
        try {
          ProviderRegistry.of(counting).forward(p.request());
        } catch (NoSuitableProviderException expected) {
          refused = true;
        } catch (RuntimeException e) {
          throw problem("the registry must refuse it with NoSuitableProviderException, got " + e, e);
        }
        if (!refused) {
          throw problem("the registry ran a request the provider refuses (" + refusal.claim() + ")");
        }
        if (counting.forwardCalls() > 0) {
          throw problem("forward ran on a refused request");
        }
        for (Staged s : p.forwardOutputs()) {
          requireStillPoisoned(s);
        }
      }
    });
  }

  void requireStillPoisoned(Staged s) {
    s.download();
    long poison = Staged.poisonBits(s.dtype());
    for (long slot = 0; slot < s.slots(); slot++) {
      if (s.rawAt(slot) != poison) {
        throw problem("an output was written although the call was rejected: " + s.host() + ", element offset "
            + slot);
      }
    }
  }

  // ---- bad inputs ----

  /**
   * A malformed call through a registry of just this provider fails with {@link AttentionArgumentException} naming
   * the argument; the provider never runs it; outputs stay poisoned and inputs untouched.
   */
  void badInput(BadInputs.BadCall call, ForwardCase base) {
    ForwardCase c = call.training() ? base.training(true) : base;
    reported(call.name(), () -> {
      try (Problem p = allocate(c)) {
        List<Staged> outputs = p.forwardOutputs();
        if (call.training()) {
          Problem.Backward b = p.backward(memory);
          outputs = List.of(b.gradQuery(), b.gradKey(), b.gradValue());
        }
        CountingProvider counting = new CountingProvider(provider);
        ProviderRegistry registry = ProviderRegistry.of(counting);
        AttentionArgumentException rejected = null;
        try {
          call.call().run(p, registry, memory);
        } catch (AttentionArgumentException e) {
          rejected = e;
        } catch (RuntimeException | Error e) {
          throw problem("a malformed call (" + call.name() + ") must fail with AttentionArgumentException, got "
              + e, e);
        }
        if (rejected == null) {
          throw problem("a malformed call (" + call.name() + ") was accepted");
        }
        if (rejected.argument() == null || rejected.argument().isBlank() || rejected.getMessage().isBlank()) {
          throw problem("the rejection does not name the argument: " + rejected);
        }
        int ran = call.training() ? counting.backwardCalls() : counting.forwardCalls();
        if (ran > 0) {
          throw problem("the provider ran a malformed call (" + call.name() + ")");
        }
        for (Staged s : outputs) {
          requireStillPoisoned(s);
        }
        requireInputsUntouched(p.inputs(), "a rejected call");
      }
    });
  }

  AttentionProvider provider() {
    return provider;
  }

  TensorMemory memory() {
    return memory;
  }
}
