package dev.sdpa4j.provider.math;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.CausalMode;
import dev.sdpa4j.DType;
import dev.sdpa4j.Storage;
import dev.sdpa4j.Tensor;
import java.lang.foreign.Arena;
import java.util.SplittableRandom;

/** Random attention problems for the tests, and comparisons that name the first bad element. */
final class Fixtures {
  private Fixtures() {}

  /** How a case is masked. */
  enum Masking {
    NONE, CAUSAL_TOP_LEFT, CAUSAL_BOTTOM_RIGHT,
    /** Boolean [B, Hq, Lq, Lk], about a third false. */
    BOOL_FULL,
    /** Boolean [Lq, Lk], broadcast over batch and heads. */
    BOOL_BROADCAST,
    /** Additive fp32 [B, 1, Lq, Lk] with some -inf. */
    ADDITIVE_FP32,
    /** Additive in the query's dtype, [1, Hq, 1, Lk] (a per-key bias), with some -inf. */
    ADDITIVE_BIAS
  }

  /** The sizes and options of one case. */
  record Case(int b, int hq, int hkv, int lq, int lk, int e, int ev, DType dtype, Masking masking, boolean blhe,
              double dropout, Double scale) {
    Case with(DType t) {
      return new Case(b, hq, hkv, lq, lk, e, ev, t, masking, blhe, dropout, scale);
    }

    Case with(Masking m) {
      return new Case(b, hq, hkv, lq, lk, e, ev, dtype, m, blhe, dropout, scale);
    }

    Case withDropout(double p) {
      return new Case(b, hq, hkv, lq, lk, e, ev, dtype, masking, blhe, p, scale);
    }

    Case withBlhe(boolean v) {
      return new Case(b, hq, hkv, lq, lk, e, ev, dtype, masking, v, dropout, scale);
    }

    static Case of(int b, int hq, int hkv, int lq, int lk, int e, int ev) {
      return new Case(b, hq, hkv, lq, lk, e, ev, DType.FLOAT32, Masking.NONE, false, 0, null);
    }
  }

  /** A forward request with its own memory, and tensors for a backward call. */
  record Problem(Case c, AttentionRequest request, Tensor gradOut, Tensor gradQ, Tensor gradK, Tensor gradV) {
    BackwardRequest backward() {
      return BackwardRequest.create(request, gradOut, gradQ, gradK, gradV);
    }
  }

  /** Builds a random problem of case {@code c}; values are standard normal, rounded to the dtype. */
  static Problem problem(Arena arena, Case c, long seed) {
    SplittableRandom rnd = new SplittableRandom(seed);
    Tensor q = tensor(arena, c.dtype, c.blhe, c.b, c.hq, c.lq, c.e, rnd);
    Tensor k = tensor(arena, c.dtype, c.blhe, c.b, c.hkv, c.lk, c.e, rnd);
    Tensor v = tensor(arena, c.dtype, c.blhe, c.b, c.hkv, c.lk, c.ev, rnd);
    Tensor out = empty(arena, c.dtype, c.blhe, c.b, c.hq, c.lq, c.ev);
    Tensor lse = Tensor.allocate(arena, DType.FLOAT32, c.b, c.hq, c.lq);
    AttentionOptions.Builder o = AttentionOptions.builder().enableGqa(c.hq != c.hkv).training(true);
    switch (c.masking) {
      case NONE -> { }
      case CAUSAL_TOP_LEFT -> o.causal(CausalMode.TOP_LEFT);
      case CAUSAL_BOTTOM_RIGHT -> o.causal(CausalMode.BOTTOM_RIGHT);
      case BOOL_FULL -> o.attnMask(boolMask(arena, rnd, c.b, c.hq, c.lq, c.lk));
      case BOOL_BROADCAST -> o.attnMask(boolMask(arena, rnd, c.lq, c.lk));
      case ADDITIVE_FP32 -> o.attnMask(additiveMask(arena, DType.FLOAT32, rnd, c.b, 1, c.lq, c.lk));
      case ADDITIVE_BIAS -> o.attnMask(additiveMask(arena, c.dtype, rnd, 1, c.hq, 1, c.lk));
    }
    if (c.dropout > 0) {
      o.dropoutP(c.dropout).dropoutSeed(rnd.nextLong(), rnd.nextLong(0, 1L << 32));
    }
    if (c.scale != null) {
      o.scale(c.scale);
    }
    AttentionRequest r = AttentionRequest.create(q, k, v, out, lse, o.build());
    Tensor gradOut = tensor(arena, c.dtype, c.blhe, c.b, c.hq, c.lq, c.ev, rnd);
    return new Problem(c, r, gradOut, empty(arena, c.dtype, c.blhe, c.b, c.hq, c.lq, c.e),
        empty(arena, c.dtype, c.blhe, c.b, c.hkv, c.lk, c.e), empty(arena, c.dtype, c.blhe, c.b, c.hkv, c.lk, c.ev));
  }

  /** A [B, H, L, E] tensor of standard normal values, laid out [B, H, L, E] or (blhe) [B, L, H, E]. */
  static Tensor tensor(Arena arena, DType t, boolean blhe, int b, int h, int l, int e, SplittableRandom rnd) {
    Tensor x = empty(arena, t, blhe, b, h, l, e);
    fill(x, rnd);
    return x;
  }

  static Tensor empty(Arena arena, DType t, boolean blhe, int b, int h, int l, int e) {
    if (!blhe) {
      return Tensor.allocate(arena, t, b, h, l, e);
    }
    long bytes = (long) b * h * l * e * t.byteSize();
    return Tensor.blhe(t, new Storage.Host(arena.allocate(bytes, 16)), b, l, h, e);
  }

  static void fill(Tensor x, SplittableRandom rnd) {
    for (long a = 0; a < x.size(0); a++) {
      for (long b = 0; b < x.size(1); b++) {
        for (long c = 0; c < x.size(2); c++) {
          for (long d = 0; d < x.size(3); d++) {
            x.set(gaussian(rnd), a, b, c, d);
          }
        }
      }
    }
  }

  static double gaussian(SplittableRandom rnd) {
    double u = rnd.nextDouble(1e-300, 1);
    double w = rnd.nextDouble();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * w);
  }

  static Tensor boolMask(Arena arena, SplittableRandom rnd, long... shape) {
    Tensor m = Tensor.allocate(arena, DType.BOOL, shape);
    forEach(m, idx -> m.set(rnd.nextInt(3) != 0 ? 1 : 0, idx));
    return m;
  }

  static Tensor additiveMask(Arena arena, DType t, SplittableRandom rnd, long... shape) {
    Tensor m = Tensor.allocate(arena, t, shape);
    forEach(m, idx -> m.set(rnd.nextInt(5) == 0 ? Double.NEGATIVE_INFINITY : rnd.nextDouble(-2, 2), idx));
    return m;
  }

  interface IndexConsumer {
    void accept(long[] idx);
  }

  static void forEach(Tensor t, IndexConsumer f) {
    long n = t.elementCount();
    long[] idx = new long[t.rank()];
    for (long x = 0; x < n; x++) {
      long rest = x;
      for (int d = t.rank() - 1; d >= 0; d--) {
        idx[d] = rest % t.size(d);
        rest /= t.size(d);
      }
      f.accept(idx.clone());
    }
  }

  /** The values of a rank-3 or rank-4 host tensor, row-major. */
  static double[] values(Tensor t) {
    if (t.rank() == 4) {
      return HostTensors.read4(t);
    }
    double[] out = new double[(int) t.elementCount()];
    long[] i = {0};
    forEach(t, idx -> out[(int) i[0]++] = t.get(idx));
    return out;
  }

  /** Asserts {@code |actual - expected| <= atol * scale + rtol * |expected|}, scale = max |expected| (at least 1). */
  static void assertClose(String what, double[] actual, double[] expected, double atol, double rtol) {
    assertThat(actual).as(what + " length").hasSameSizeAs(expected);
    double scale = 1;
    for (double x : expected) {
      if (Double.isFinite(x)) {
        scale = Math.max(scale, Math.abs(x));
      }
    }
    for (int x = 0; x < expected.length; x++) {
      double a = actual[x];
      double e = expected[x];
      if (Double.isNaN(e) || Double.isInfinite(e)) {
        if (!(Double.isNaN(e) ? Double.isNaN(a) : a == e)) {
          throw new AssertionError(what + "[" + x + "]: expected " + e + ", got " + a);
        }
        continue;
      }
      double tol = atol * scale + rtol * Math.abs(e);
      if (!(Math.abs(a - e) <= tol)) {
        throw new AssertionError(what + "[" + x + "]: expected " + e + ", got " + a + " (|diff| "
            + Math.abs(a - e) + " > " + tol + ")");
      }
    }
  }

  /** Absolute tolerance (relative to the largest value) for outputs of {@code t} computed in float32. */
  static double tolerance(DType t) {
    return switch (t) {
      case FLOAT64 -> 1e-12;
      case FLOAT32 -> 2e-5;
      case FLOAT16 -> 2e-3;
      case BFLOAT16 -> 1.6e-2;
      case BOOL -> throw new IllegalArgumentException();
    };
  }

  /** A fresh random seed, printed so that a failure can be replayed. */
  static long seed(String test) {
    long s = Long.getLong("sdpa4j.test.seed", new SplittableRandom().nextLong());
    System.out.println(test + " seed=" + s + " (replay with -Dsdpa4j.test.seed=" + s + ")");
    return s;
  }
}
