package dev.sdpa4j.conformance;

import dev.sdpa4j.DType;
import java.util.Locale;
import java.util.Optional;

/**
 * PyTorch's fused-kernel tolerance scheme. For a quantity in input type {@code T}:
 * <pre>
 *   atol = fudge · max(max |ref_T − ref_64|, atolFloor(T) · max(1, √(K / 64)))      rtol = fudge · rtolFloor(T)
 *   element ok  ⇔  |got − ref_64| ≤ atol + rtol · |ref_64|
 * </pre>
 * where {@code ref_64} is the float64 reference, {@code ref_T} the same algorithm run in {@code T} and {@code K} the
 * longest reduction of the problem ({@code max(E, Ev, Lq, Lk)}). (PyTorch also
 * derives the relative tolerance from {@code ref_T}; that quotient is unbounded near zero, so the kit keeps the
 * per-type floor, which covers rounding the result to {@code T}.) Besides: NaN only where the reference has NaN,
 * infinities exactly, and fully masked output rows exactly zero.
 */
final class Closeness {
  private Closeness() {}

  /**
   * The tolerance for one quantity.
   *
   * @param atol absolute part
   * @param rtol relative part
   * @param lowPrecisionError {@code max |ref_T − ref_64|}, reported in messages
   */
  record Tolerance(double atol, double rtol, double lowPrecisionError) {
    double allowed(double expected) {
      return atol + rtol * Math.abs(expected);
    }
  }

  /**
   * The tolerance for one quantity.
   *
   * @param reduction the longest sum behind an element ({@code max(E, Ev, Lq, Lk)}): the absolute floor grows with
   *                  its square root beyond 64, as rounding errors accumulate in a kernel's running sums while the
   *                  eager emulation sums exactly and rounds once
   */
  static Tolerance tolerance(Quantity q, DType inputs, double[] exact, double[] lowPrecision, long reduction) {
    DType t = q.storedAs(inputs);
    double lpError = 0;
    for (int n = 0; n < exact.length; n++) {
      double d = Math.abs(lowPrecision[n] - exact[n]);
      if (Double.isFinite(d)) {
        lpError = Math.max(lpError, d);
      }
    }
    double floor = Quantity.atolFloor(t) * Math.max(1, Math.sqrt(reduction / 64.0));
    return new Tolerance(q.fudge() * Math.max(lpError, floor), q.fudge() * Quantity.rtolFloor(t), lpError);
  }

  /**
   * The mismatch report, or empty when every element of {@code got} is close to {@code exact}.
   *
   * @param fullyMaskedRows per row of {@code rowLength} elements, whether the reference masked it fully (then the
   *                        element must be exactly 0); null when not applicable
   */
  static Optional<String> mismatch(Quantity q, DType inputs, double[] got, double[] exact, Tolerance tol,
      long[] shape, boolean[] fullyMaskedRows, int rowLength) {
    int bad = 0;
    int worst = -1;
    double worstRatio = -1;
    String worstWhy = "";
    for (int n = 0; n < exact.length; n++) {
      double e = exact[n];
      double g = got[n];
      String why = null;
      double ratio;
      if (Double.isNaN(e)) {
        ratio = Double.isNaN(g) ? 0 : Double.POSITIVE_INFINITY;
        why = "the reference is NaN here";
      } else if (Double.isNaN(g)) {
        ratio = Double.POSITIVE_INFINITY;
        why = "NaN where the reference is not";
      } else if (Double.isInfinite(e) || Double.isInfinite(g)) {
        ratio = g == e ? 0 : Double.POSITIVE_INFINITY;
        why = "infinities must match exactly";
      } else if (fullyMaskedRows != null && fullyMaskedRows[n / rowLength]) {
        ratio = g == 0 ? 0 : Double.POSITIVE_INFINITY;
        why = "a fully masked row must be exactly zero";
      } else {
        ratio = Math.abs(g - e) / tol.allowed(e);
      }
      if (ratio > 1) {
        bad++;
        if (ratio > worstRatio) {
          worstRatio = ratio;
          worst = n;
          worstWhy = why;
        }
      }
    }
    if (bad == 0) {
      return Optional.empty();
    }
    double e = exact[worst];
    double g = got[worst];
    String detail = worstWhy != null ? worstWhy
        : String.format(Locale.ROOT, "error %.3e > allowed %.3e = atol %.3e + rtol %.3e * |expected|",
            Math.abs(g - e), tol.allowed(e), tol.atol(), tol.rtol());
    return Optional.of(String.format(Locale.ROOT,
        "%s: %d of %d elements differ from the float64 reference; worst at %s: got %s, expected %s (%s; the %s"
            + " reference errs by at most %.3e, fudge %.0f)",
        q.label(), bad, exact.length, Values.index(worst, shape), g, e, detail, inputs.shortName(),
        tol.lowPrecisionError(), q.fudge()));
  }
}
