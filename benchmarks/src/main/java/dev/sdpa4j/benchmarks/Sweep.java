package dev.sdpa4j.benchmarks;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs candidates over cases and measures each: warm-up calls (at least {@code warmup}, and more until half a second
 * has passed, up to {@link #MAX_WARMUP_CALLS}), one call that probes memory, the timed repeats (each timed alone: {@link System#nanoTime} on the CPU,
 * device events on GPUs), and three more memory probes (the smallest probe is kept); the input set rotates on
 * every call. Before the first case, every candidate runs a small case of each kind in the sweep to warm the JIT up.
 *
 * <p>Before a case runs, its memory need (inputs of every set, outputs and the candidate's
 * {@linkplain Candidate#workingBytes working memory}) is checked against the memory budget: over it, the case is
 * recorded {@link Status#OOM} without running, as a device of that size would fail. An {@link OutOfMemoryError}
 * while running is recorded the same way. A case whose time, extrapolated from the same candidate's previous
 * shorter sequence length (time ∝ L²), would pass the per-call limit is {@link Status#SKIPPED}.
 */
public final class Sweep {
  private static final Logger LOG = LoggerFactory.getLogger(Sweep.class);
  /**
   * The most warm-up calls of one case: enough for the JIT to compile the host path of a decode call (on an H100 a
   * batch-1 decode call measured 140-200 µs after 50 warm-up calls and 26-32 µs after a few thousand).
   */
  static final int MAX_WARMUP_CALLS = 2000;

  /**
   * How to measure.
   *
   * @param warmup         the least number of untimed calls before timing
   * @param repeats        timed calls
   * @param inputSets      input sets rotated between calls
   * @param memoryBudget   bytes a case may need in all; more is recorded as OOM
   * @param maxCallSeconds a call predicted to take longer is skipped
   * @param seed           seed of the inputs
   * @param warmupSeconds  warm-up continues past {@code warmup} calls (up to {@link #MAX_WARMUP_CALLS}) until this
   *                       much time has passed: the JIT's time, which a call of a few microseconds of GPU work needs
   *                       too (its host path runs interpreted for the first hundreds of calls)
   */
  public record Settings(int warmup, int repeats, int inputSets, long memoryBudget, double maxCallSeconds, long seed,
                         double warmupSeconds) {
    public Settings {
      if (warmup < 0 || repeats < 1 || inputSets < 1 || memoryBudget < 1 || !(maxCallSeconds > 0)
          || !(warmupSeconds >= 0)) {
        throw new IllegalArgumentException("need warmup >= 0, repeats >= 1, inputSets >= 1, a positive budget and"
            + " time limit, and a warm-up time >= 0");
      }
    }

    /** Settings with half a second of warm-up time. */
    public Settings(int warmup, int repeats, int inputSets, long memoryBudget, double maxCallSeconds, long seed) {
      this(warmup, repeats, inputSets, memoryBudget, maxCallSeconds, seed, 0.5);
    }

    long warmupNanos() {
      return (long) (warmupSeconds * 1e9);
    }
  }

  private final Settings settings;
  /** The current case's forward output from the first implementation that ran it, for the output check. */
  private BenchCase referenceCase;
  private String referenceName;
  private float[] reference;

  public Sweep(Settings settings) {
    this.settings = settings;
  }

  public Settings settings() {
    return settings;
  }

  /**
   * Bytes of inputs and outputs a case allocates for {@code sets} input sets (query, key, value and output gradient
   * a set; the output, and for training the three gradients and the fp32 LSE).
   */
  public static long ioBytes(BenchCase c, int sets) {
    long q = c.tensorBytes();
    long kv = c.kvTensorBytes();
    long in = sets * (2 * q + 2 * kv);
    if (c.pass() == Pass.FORWARD_BACKWARD) {
      return in + 2 * q + 2 * kv + (long) c.batch() * c.heads() * c.seqLen() * 4;
    }
    return in + q;
  }

  /**
   * Runs every candidate on every case, cases in the given order (ascending sequence length within a family, so the
   * time extrapolation has a previous point).
   */
  public List<Measurement> run(List<Candidate> candidates, List<BenchCase> cases) {
    double work = cases.stream().mapToDouble(BenchCase::flops).sum() * candidates.size();
    ProgressBar bar = ProgressBar.onStderr(cases.size() * candidates.size(), work);
    warmUpCompilers(candidates, cases);
    List<Measurement> results = new ArrayList<>();
    Map<String, double[]> lastTime = new HashMap<>();
    for (BenchCase c : cases) {
      for (Candidate cand : candidates) {
        bar.show(cand.name() + " " + c.describe());
        Measurement m = measure(cand, c, lastTime);
        results.add(m);
        LOG.debug("{}", m);
        bar.step(c.flops(), cand.name() + " " + c.describe() + ": " + summary(m));
      }
    }
    bar.finish();
    return results;
  }

  /**
   * Runs every candidate, untimed, for about half a second on a small case of each head dim, pass and masking that
   * the sweep contains, so that the first measured cases are not charged for JIT compilation of code every case of
   * that kind shares.
   */
  private void warmUpCompilers(List<Candidate> candidates, List<BenchCase> cases) {
    List<BenchCase> kinds = cases.stream().map(c -> c.withLengths(Math.min(c.seqLen(), 256),
        Math.min(c.kvLen(), 256))).distinct().toList();
    for (BenchCase small : kinds) {
      for (Candidate cand : candidates) {
        if (cand.unsupported(small).isPresent()) {
          continue;
        }
        try (Candidate.Prepared p = cand.prepare(small, new InputSets(small, 1, settings.seed()))) {
          long end = System.nanoTime() + settings.warmupNanos();
          for (int i = 0; i < MAX_WARMUP_CALLS && System.nanoTime() < end; i++) {
            p.run(0);
          }
        } catch (RuntimeException | LinkageError e) {
          LOG.debug("warm-up of {} failed: {}", cand.name(), e.toString());
        }
      }
    }
  }

  /**
   * Compares the forward output on input set 0 with the first implementation's output on the same case: every
   * timed implementation must compute the same attention. Returns a note, starting with {@code MISMATCH} when the
   * largest difference relative to {@code 1 + |reference|} passes the dtype's tolerance (fp32 1e-3, else 3e-2).
   */
  private String checkOutput(Candidate cand, BenchCase c, Candidate.Prepared p) {
    float[] out = p.forwardOutput(0);
    BenchCase key = c.withPass(Pass.FORWARD).withoutDropout();
    if (reference == null || !key.equals(referenceCase)) {
      referenceCase = key;
      referenceName = cand.name();
      reference = out;
      return "output: reference for the check";
    }
    double worst = 0;
    for (int i = 0; i < out.length; i++) {
      double d = Math.abs(out[i] - reference[i]) / (1 + Math.abs(reference[i]));
      worst = Double.isNaN(d) ? Double.POSITIVE_INFINITY : Math.max(worst, d);
    }
    double tol = c.dtype().equals("fp32") ? 1e-3 : 3e-2;
    String text = String.format(java.util.Locale.ROOT, "output vs %s: max rel diff %.1e", referenceName, worst);
    return worst > tol ? "MISMATCH " + text + " > " + tol : text;
  }

  private static String summary(Measurement m) {
    return m.ok() ? String.format(java.util.Locale.ROOT, "%.2f ms, %.1f GFLOP/s", m.medianMs(), m.gflops())
        : m.status().name();
  }

  private static String family(Candidate cand, BenchCase c) {
    return cand.name() + "|" + c.batch() + "|" + c.heads() + "|" + c.headDim() + "|" + c.causal() + "|" + c.dtype()
        + "|" + c.pass() + "|" + c.dropout() + "|" + (c.selfAttention() ? "self" : "lq" + c.seqLen());
  }

  /** What a case's time grows with inside a family: {@code Lq·Lk}. */
  private static double growth(BenchCase c) {
    return (double) c.seqLen() * c.kvLen();
  }

  /** Measures one candidate on one case. */
  public Measurement measure(Candidate cand, BenchCase c, Map<String, double[]> lastTime) {
    String name = cand.name();
    var unsupported = cand.unsupported(c);
    if (unsupported.isPresent()) {
      return Measurement.failed(name, cand.kind(), cand.device(), c, Status.UNSUPPORTED, -1, "", unsupported.get());
    }
    long need = ioBytes(c, settings.inputSets()) + cand.workingBytes(c);
    if (need > settings.memoryBudget()) {
      return Measurement.failed(name, cand.kind(), cand.device(), c, Status.OOM, need, "estimate",
          "needs " + Memory.format(need) + " (" + Memory.format(cand.workingBytes(c)) + " of it score matrices)"
              + " > memory budget " + Memory.format(settings.memoryBudget()));
    }
    String fam = family(cand, c);
    double[] prev = lastTime.get(fam);
    if (prev != null) {
      double predicted = prev[1] * growth(c) / prev[0] / 1000;
      if (predicted > settings.maxCallSeconds()) {
        return Measurement.failed(name, cand.kind(), cand.device(), c, Status.SKIPPED, -1, "",
            String.format(java.util.Locale.ROOT, "predicted %.0f s per call > limit %.0f s", predicted,
                settings.maxCallSeconds()));
      }
    }
    InputSets inputs = new InputSets(c, settings.inputSets(), settings.seed());
    try (Candidate.Prepared p = cand.prepare(c, inputs)) {
      int sets = inputs.count();
      // warm-up: at least `warmup` calls, and more (up to MAX_WARMUP_CALLS) until the warm-up time has passed, so that
      // the JIT has compiled this case's code paths before timing whatever earlier cases ran
      long warmEnd = System.nanoTime() + settings.warmupNanos();
      int calls = 0;
      while (calls < settings.warmup() || (calls < MAX_WARMUP_CALLS && System.nanoTime() < warmEnd)) {
        p.run(calls++ % sets);
      }
      long mem = p.memoryProbe(calls % sets);
      double[] samples = new double[settings.repeats()];
      for (int i = 0; i < samples.length; i++) {
        int set = (calls + 1 + i) % sets;
        samples[i] = p.timedRunMs(set);
        if (i == 0 && samples[0] / 1000 * (samples.length - 1) > 4 * settings.maxCallSeconds()) {
          samples = java.util.Arrays.copyOf(samples, 1);
          break;
        }
      }
      // a second probe after timing; the smaller counts: allocation seen while code still runs interpreted or in C1
      // (the Vector API boxes vectors there) is not the algorithm's memory
      for (int i = 0; i < 3; i++) {
        long again = p.memoryProbe((calls + i) % sets);
        if (again >= 0 && (mem < 0 || again < mem)) {
          mem = again;
        }
      }
      Timing t = new Timing(samples);
      lastTime.put(fam, new double[] {growth(c), t.medianMs()});
      String note = t.repeats() < settings.repeats() ? "1 repeat only (slow case); " : "";
      String check = checkOutput(cand, c, p);
      if (check.startsWith("MISMATCH")) {
        return Measurement.failed(name, cand.kind(), cand.device(), c, Status.ERROR, mem, cand.memoryMethod(), check);
      }
      return Measurement.ok(name, cand.kind(), cand.device(), c, t, mem, cand.memoryMethod(), note + check);
    } catch (OutOfMemoryError e) {
      return Measurement.failed(name, cand.kind(), cand.device(), c, Status.OOM, need, "estimate",
          "OutOfMemoryError: " + e.getMessage());
    } catch (Candidate.UnsupportedCaseException e) {
      return Measurement.failed(name, cand.kind(), cand.device(), c, Status.UNSUPPORTED, -1, "", e.getMessage());
    } catch (RuntimeException | LinkageError e) {
      if (String.valueOf(e.getMessage()).toLowerCase(java.util.Locale.ROOT).contains("out of memory")) {
        return Measurement.failed(name, cand.kind(), cand.device(), c, Status.OOM, need, "estimate", e.toString());
      }
      LOG.warn("{} failed on {}: {}", name, c.describe(), e.toString());
      return Measurement.failed(name, cand.kind(), cand.device(), c, Status.ERROR, -1, "", e.toString());
    } finally {
      System.gc();
    }
  }
}
