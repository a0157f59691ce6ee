package dev.sdpa4j.benchmarks;

import java.io.PrintStream;
import java.time.Duration;
import java.util.Locale;

/**
 * A one-line progress bar for long sweeps: {@code [=======>      ] 45/120  37%  1m02s elapsed, ~1m45s left  math
 * B=1 H=8 L=4096 E=64 fwd}. On a terminal the line is redrawn in place; otherwise (a log file) a line is printed at
 * each 10% step. The estimate of time left weights steps by their expected cost (FLOPs), not their count.
 */
public final class ProgressBar {
  private static final int WIDTH = 30;

  private final PrintStream out;
  private final boolean interactive;
  private final double totalWork;
  private final int totalSteps;
  private final long startNanos = System.nanoTime();
  private double doneWork;
  private int doneSteps;
  private int lastDecile = -1;

  /**
   * @param out         where to draw (normally {@code System.err})
   * @param interactive redraw in place (a terminal) rather than print a line per 10%
   * @param totalSteps  the number of steps
   * @param totalWork   their summed cost, in any unit (FLOPs)
   */
  public ProgressBar(PrintStream out, boolean interactive, int totalSteps, double totalWork) {
    this.out = out;
    this.interactive = interactive;
    this.totalSteps = totalSteps;
    this.totalWork = Math.max(totalWork, 1e-9);
  }

  /** A bar on {@code System.err}, interactive when the JVM has a console. */
  public static ProgressBar onStderr(int totalSteps, double totalWork) {
    return new ProgressBar(System.err, System.console() != null, totalSteps, totalWork);
  }

  /** Marks one step of cost {@code work} as done and redraws, naming what runs next. */
  public synchronized void step(double work, String label) {
    doneSteps++;
    doneWork += work;
    draw(label);
  }

  /** Redraws with a new label, nothing done. */
  public synchronized void show(String label) {
    draw(label);
  }

  /** Ends the line. */
  public synchronized void finish() {
    if (interactive) {
      out.println();
    }
    out.flush();
  }

  private void draw(String label) {
    double frac = Math.min(1, doneWork / totalWork);
    long elapsed = System.nanoTime() - startNanos;
    String eta = frac > 0.001 && doneSteps < totalSteps
        ? ", ~" + format(Duration.ofNanos((long) (elapsed / frac - elapsed))) + " left" : "";
    int filled = (int) Math.round(frac * WIDTH);
    String bar = "=".repeat(Math.max(0, filled - 1)) + (filled > 0 ? ">" : "") + " ".repeat(WIDTH - filled);
    String line = String.format(Locale.ROOT, "[%s] %d/%d %3.0f%%  %s elapsed%s  %s", bar, doneSteps, totalSteps,
        frac * 100, format(Duration.ofNanos(elapsed)), eta, label);
    if (interactive) {
      out.print("\r" + line + "\u001b[K");
      out.flush();
    } else {
      int decile = (int) (frac * 10);
      if (decile != lastDecile || doneSteps == totalSteps) {
        lastDecile = decile;
        out.println(line);
      }
    }
  }

  static String format(Duration d) {
    long s = d.toSeconds();
    return s >= 3600 ? String.format(Locale.ROOT, "%dh%02dm", s / 3600, s % 3600 / 60)
        : s >= 60 ? String.format(Locale.ROOT, "%dm%02ds", s / 60, s % 60) : s + "s";
  }
}
