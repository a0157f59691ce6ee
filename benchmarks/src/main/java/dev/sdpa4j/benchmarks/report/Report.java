package dev.sdpa4j.benchmarks.report;

import dev.sdpa4j.benchmarks.BenchCase;
import dev.sdpa4j.benchmarks.Measurement;
import dev.sdpa4j.benchmarks.Memory;
import dev.sdpa4j.benchmarks.Status;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;

/**
 * Markdown tables and figures from measurements: fused against eager (speedup and memory saving by head dim and
 * sequence length, the post's figures), sdpa4j against a peer (GFLOP/s and the ratio, saying plainly where sdpa4j is
 * behind), and where each implementation runs out of memory.
 */
public final class Report {
  /**
   * Whether figures can be drawn: XChart needs {@code java.desktop}, which the GPU host's trimmed runtime lacks. There
   * the tables are written and the figures are left to a rerun of the same command with a full JDK.
   */
  public static final boolean FIGURES = ModuleLayer.boot().findModule("java.desktop").isPresent();

  private static final String NO_FIGURES = "(figures not drawn: this Java runtime has no java.desktop module; rerun "
      + "the command with a full JDK to draw them)\n";

  private final List<Measurement> ms;
  private final String unit;
  private final double perGflops;

  /** A report in GFLOP/s. */
  public Report(List<Measurement> ms) {
    this(ms, "GFLOP/s", 1);
  }

  /**
   * A report whose throughput is shown in {@code unit}, {@code perGflops} GFLOP/s to one unit (TFLOP/s: 1000).
   */
  public Report(List<Measurement> ms, String unit, double perGflops) {
    this.ms = List.copyOf(ms);
    this.unit = unit;
    this.perGflops = perGflops;
  }

  /** The pass cell of a table row: the pass, then the dtype unless fp32, then the dropout if any. */
  static String passCell(BenchCase c) {
    return c.pass().label() + (c.dtype().equals("fp32") ? "" : " " + c.dtype())
        + (c.dropout() > 0 ? String.format(Locale.ROOT, " p=%.2g", c.dropout()) : "");
  }

  /** The length cell: {@code L} for self-attention, {@code Lq/Lk} otherwise. */
  static String lengthCell(BenchCase c) {
    return c.selfAttention() ? String.valueOf(c.seqLen()) : c.seqLen() + "/" + c.kvLen();
  }

  /**
   * A family of cases drawn as one figure: the lines are head dims, the x axis the key length. Either a fixed batch
   * and head count ({@code bh}: the post's sweep, decode steps) or a fixed number of tokens {@code B·L} and hidden
   * size {@code H·E} ({@code tokens}: the training-step shapes, where B shrinks as L grows). Cases also share dtype,
   * pass, causal masking, dropout and, for cross-attention, the query length.
   */
  record Family(String kind, int a, int b, int queryLen, String dtype, boolean causal, String pass, double dropout) {
    static Family byBatch(BenchCase c) {
      return new Family("bh", c.batch(), c.heads(), c.selfAttention() ? 0 : c.seqLen(), c.dtype(), c.causal(),
          c.pass().label(), c.dropout());
    }

    static Family byTokens(BenchCase c) {
      return new Family("tokens", c.batch() * c.seqLen(), c.heads() * c.headDim(), 0, c.dtype(), c.causal(),
          c.pass().label(), c.dropout());
    }

    boolean contains(BenchCase c) {
      return byBatch(c).equals(this) || (c.selfAttention() && byTokens(c).equals(this));
    }

    String describe() {
      String size = kind.equals("bh") ? "B=" + a + ", H=" + b + (queryLen > 0 ? ", Lq=" + queryLen : "")
          : "B·L=" + a + " tokens, H·E=" + b;
      return size + ", " + dtype + ", " + pass + (causal ? ", causal" : "")
          + (dropout > 0 ? String.format(Locale.ROOT, ", dropout %.2g", dropout) : "");
    }

    String slug() {
      String size = kind.equals("bh") ? "b" + a + "-h" + b + (queryLen > 0 ? "-lq" + queryLen : "")
          : "t" + a + "-d" + b;
      return size + "-" + dtype + "-" + pass.replace("+", "") + (causal ? "-causal" : "")
          + (dropout > 0 ? String.format(Locale.ROOT, "-drop%02d", Math.round(dropout * 100)) : "");
    }
  }

  private Optional<Measurement> find(String impl, BenchCase c) {
    return ms.stream().filter(m -> m.implementation().equals(impl) && m.benchCase().equals(c)).findFirst();
  }

  /**
   * The families to draw: every family with at least two key lengths (the same cases only once), then, for a case
   * in none of those, its fixed-batch family.
   */
  List<Family> families() {
    List<BenchCase> all = ms.stream().map(Measurement::benchCase).distinct().toList();
    LinkedHashSet<Family> candidates = new LinkedHashSet<>();
    for (BenchCase c : all) {
      candidates.add(Family.byBatch(c));
      if (c.selfAttention()) {
        candidates.add(Family.byTokens(c));
      }
    }
    List<Family> out = new ArrayList<>();
    List<List<BenchCase>> seen = new ArrayList<>();
    for (Family f : candidates) {
      List<BenchCase> cs = cases(f);
      if (cs.stream().map(BenchCase::kvLen).distinct().count() >= 2 && !seen.contains(cs)) {
        out.add(f);
        seen.add(cs);
      }
    }
    for (BenchCase c : all) {
      if (out.stream().noneMatch(f -> f.contains(c)) && !out.contains(Family.byBatch(c))) {
        out.add(Family.byBatch(c));
      }
    }
    return out;
  }

  private List<BenchCase> cases(Family f) {
    return ms.stream().map(Measurement::benchCase).filter(f::contains).distinct().toList();
  }

  /** Implementations measured, in order of first appearance. */
  public List<String> implementations() {
    return ms.stream().map(Measurement::implementation).distinct().toList();
  }

  static String fmt(double v) {
    if (Double.isNaN(v)) {
      return "–";
    }
    return v >= 100 ? String.format(Locale.ROOT, "%.0f", v) : v >= 10 ? String.format(Locale.ROOT, "%.1f", v)
        : String.format(Locale.ROOT, "%.2f", v);
  }

  /**
   * Speedup and memory-saving tables (rows head dim, columns L) of {@code fused} against {@code eager}, for every
   * family, and the post's two figures per family under {@code figures/}. Returns markdown.
   */
  public String fusedVsEager(String fused, String eager, Path figureDir, String figurePrefix, Path mdDir)
      throws IOException {
    StringBuilder s = new StringBuilder();
    for (Family f : families()) {
      List<BenchCase> cs = cases(f);
      TreeSet<Integer> dims = new TreeSet<>();
      TreeSet<Integer> lens = new TreeSet<>();
      cs.forEach(c -> {
        dims.add(c.headDim());
        lens.add(c.kvLen());
      });
      boolean any = cs.stream().anyMatch(c -> find(fused, c).isPresent() && find(eager, c).isPresent());
      if (!any) {
        continue;
      }
      s.append("\n#### ").append(fused).append(" vs ").append(eager).append(": ").append(f.describe()).append("\n\n");
      s.append("Speedup (eager time / ").append(fused).append(" time); memory saving (eager memory / ").append(fused)
          .append(" memory, memory as defined in the method section) in brackets. `OOM`: eager ran out of the memory ")
          .append("budget where ").append(fused).append(" ran.\n\n");
      s.append(cs.stream().allMatch(BenchCase::selfAttention) ? "| E \\ L |" : "| E \\ Lk |");
      lens.forEach(l -> s.append(' ').append(l).append(" |"));
      s.append("\n|---|");
      lens.forEach(l -> s.append("---|"));
      s.append('\n');
      List<Charts.Line> speed = new ArrayList<>();
      List<Charts.Line> memory = new ArrayList<>();
      for (int e : dims) {
        s.append("| ").append(e).append(" |");
        List<Double> sx = new ArrayList<>();
        List<Double> sy = new ArrayList<>();
        List<Double> mx = new ArrayList<>();
        List<Double> my = new ArrayList<>();
        for (int l : lens) {
          Optional<BenchCase> c = cs.stream().filter(x -> x.headDim() == e && x.kvLen() == l).findFirst();
          Optional<Measurement> a = c.flatMap(x -> find(fused, x));
          Optional<Measurement> b = c.flatMap(x -> find(eager, x));
          s.append(' ').append(cell(a, b, sx, sy, mx, my, l)).append(" |");
        }
        s.append('\n');
        speed.add(new Charts.Line("E=" + e, sx, sy));
        memory.add(new Charts.Line("E=" + e, mx, my));
      }
      if (lens.size() < 2) {
        continue; // a single length draws no line
      }
      if (!FIGURES) {
        s.append('\n').append(NO_FIGURES);
        continue;
      }
      String base = figurePrefix + "-" + fused + "-vs-" + eager + "-" + f.slug();
      Path sp = Charts.lines(figureDir.resolve(base + "-speedup"), fused + " speedup over eager (" + f.describe()
          + ")", xTitle(cs), "speedup (×)", speed, false);
      Path mp = Charts.lines(figureDir.resolve(base + "-memory"), fused + " memory saving over eager ("
          + f.describe() + ")", xTitle(cs), "memory saving (×, log)", memory, true);
      s.append('\n');
      for (Path p : new Path[] {sp, mp}) {
        if (p != null) {
          s.append("![").append(p.getFileName()).append("](").append(mdDir.relativize(p.toAbsolutePath()))
              .append(")\n");
        }
      }
    }
    return s.toString();
  }

  private static String xTitle(List<BenchCase> cs) {
    return cs.stream().allMatch(BenchCase::selfAttention) ? "sequence length L" : "key length Lk";
  }

  private static String cell(Optional<Measurement> fused, Optional<Measurement> eager, List<Double> sx,
      List<Double> sy, List<Double> mx, List<Double> my, int l) {
    if (fused.isEmpty() || eager.isEmpty()) {
      return "";
    }
    Measurement a = fused.get();
    Measurement b = eager.get();
    if (a.ok() && b.ok()) {
      double speedup = b.medianMs() / a.medianMs();
      sx.add((double) l);
      sy.add(speedup);
      String mem = "";
      if (a.memoryBytes() > 0 && b.memoryBytes() > 0) {
        double saving = (double) b.memoryBytes() / a.memoryBytes();
        mx.add((double) l);
        my.add(saving);
        mem = " (" + fmt(saving) + "×)";
      }
      return fmt(speedup) + "×" + mem;
    }
    if (a.ok() && b.status() == Status.OOM) {
      return "OOM";
    }
    return a.status() == Status.OK ? "eager " + b.status() : a.status().name();
  }

  /**
   * For sweeps over batch size: one row per case (B, E, L, pass, causal), {@code fused} and {@code eager} side by
   * side with their time, memory and status, and the speedup and memory saving where both ran. Markdown.
   */
  public String byBatch(String fused, String eager) {
    StringBuilder s = new StringBuilder("| pass | B | H | E | L | causal | " + fused + " ms | " + fused + " memory | "
        + eager + " ms | " + eager + " memory | speedup | memory saving |\n"
        + "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (BenchCase c : ms.stream().map(Measurement::benchCase).distinct().toList()) {
      Optional<Measurement> a = find(fused, c);
      Optional<Measurement> b = find(eager, c);
      if (a.isEmpty() || b.isEmpty()) {
        continue;
      }
      boolean both = a.get().ok() && b.get().ok();
      s.append("| ").append(passCell(c)).append(" | ").append(c.batch()).append(" | ").append(c.heads())
          .append(" | ").append(c.headDim()).append(" | ").append(lengthCell(c)).append(" | ")
          .append(c.causal() ? "yes" : "no").append(" | ").append(timeOrStatus(a.get())).append(" | ")
          .append(Memory.format(a.get().memoryBytes())).append(" | ").append(timeOrStatus(b.get())).append(" | ")
          .append(b.get().ok() ? Memory.format(b.get().memoryBytes())
              : b.get().status() == Status.OOM ? "needs " + Memory.format(b.get().memoryBytes()) : "–")
          .append(" | ").append(both ? fmt(b.get().medianMs() / a.get().medianMs()) + "×" : "–").append(" | ")
          .append(both && a.get().memoryBytes() > 0 && b.get().memoryBytes() > 0
              ? fmt((double) b.get().memoryBytes() / a.get().memoryBytes()) + "×" : "–")
          .append(" |\n");
    }
    return s.toString();
  }

  private static String timeOrStatus(Measurement m) {
    return m.ok() ? fmt(m.medianMs()) : m.status().name();
  }

  /**
   * A throughput table of {@code mine} against {@code peer} for every case both ran: the ratio, and a plain verdict
   * where {@code mine} is behind. Returns markdown.
   */
  public String versusPeer(String mine, String peer) {
    StringBuilder s = new StringBuilder();
    s.append("| pass | B | H | E | L | causal | ").append(mine).append(" ms | ").append(peer).append(" ms | ")
        .append(mine).append(' ').append(unit).append(" | ").append(peer).append(' ').append(unit)
        .append(" | ratio | verdict |\n");
    s.append("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    List<BenchCase> cs = ms.stream().map(Measurement::benchCase).distinct().toList();
    for (BenchCase c : cs) {
      Optional<Measurement> a = find(mine, c);
      Optional<Measurement> b = find(peer, c);
      if (a.isEmpty() || b.isEmpty()) {
        continue;
      }
      String ratio;
      String verdict;
      if (a.get().ok() && b.get().ok()) {
        double r = a.get().gflops() / b.get().gflops();
        ratio = String.format(Locale.ROOT, "%.2f×", r);
        verdict = r >= 1.0 ? "at or above " + peer : "**behind " + peer + "**";
      } else {
        ratio = "–";
        verdict = mine + " " + a.get().status() + ", " + peer + " " + b.get().status();
      }
      s.append("| ").append(passCell(c)).append(" | ").append(c.batch()).append(" | ").append(c.heads())
          .append(" | ").append(c.headDim()).append(" | ").append(lengthCell(c)).append(" | ")
          .append(c.causal() ? "yes" : "no").append(" | ").append(fmt(a.get().medianMs())).append(" | ")
          .append(fmt(b.get().medianMs())).append(" | ").append(fmt(a.get().gflops() / perGflops)).append(" | ")
          .append(fmt(b.get().gflops() / perGflops)).append(" | ").append(ratio).append(" | ").append(verdict)
          .append(" |\n");
    }
    return s.toString();
  }

  /** On how many cases both ran {@code mine} is slower than {@code peer}. */
  public int behindCount(String mine, String peer) {
    int n = 0;
    for (BenchCase c : ms.stream().map(Measurement::benchCase).distinct().toList()) {
      Optional<Measurement> a = find(mine, c);
      Optional<Measurement> b = find(peer, c);
      if (a.isPresent() && b.isPresent() && a.get().ok() && b.get().ok() && a.get().gflops() < b.get().gflops()) {
        n++;
      }
    }
    return n;
  }

  /** Every measurement that did not run (unsupported, out of memory, failed, skipped), with its reason. Markdown. */
  public String notRun() {
    StringBuilder s = new StringBuilder("| implementation | pass | B | H | E | L | causal | status | reason |\n"
        + "|---|---|---|---|---|---|---|---|---|\n");
    for (Measurement m : ms) {
      if (m.ok()) {
        continue;
      }
      BenchCase c = m.benchCase();
      s.append("| ").append(m.implementation()).append(" | ").append(passCell(c)).append(" | ").append(c.batch())
          .append(" | ").append(c.heads()).append(" | ").append(c.headDim()).append(" | ").append(lengthCell(c))
          .append(" | ").append(c.causal() ? "yes" : "no").append(" | ").append(m.status()).append(" | ")
          .append(m.note().replace("|", "/").replace("\n", " ")).append(" |\n");
    }
    return s.toString();
  }

  /** Geometric mean, min and max of {@code mine}/{@code peer} GFLOP/s over the cases both ran; empty if none. */
  public Optional<double[]> ratioSummary(String mine, String peer) {
    List<Double> rs = new ArrayList<>();
    for (BenchCase c : ms.stream().map(Measurement::benchCase).distinct().toList()) {
      Optional<Measurement> a = find(mine, c);
      Optional<Measurement> b = find(peer, c);
      if (a.isPresent() && b.isPresent() && a.get().ok() && b.get().ok()) {
        rs.add(a.get().gflops() / b.get().gflops());
      }
    }
    if (rs.isEmpty()) {
      return Optional.empty();
    }
    double g = Math.exp(rs.stream().mapToDouble(Math::log).average().orElseThrow());
    return Optional.of(new double[] {g, rs.stream().mapToDouble(d -> d).min().orElseThrow(),
        rs.stream().mapToDouble(d -> d).max().orElseThrow(), rs.size()});
  }

  /**
   * Grouped bar charts of throughput per implementation, one per family (categories: head dim and length); returns
   * the markdown image links.
   */
  public String gflopsFigures(Path figureDir, String prefix, Path mdDir, List<String> impls) throws IOException {
    if (!FIGURES) {
      return NO_FIGURES;
    }
    StringBuilder s = new StringBuilder();
    for (Family f : families()) {
      List<String> cats = new ArrayList<>();
      Map<String, List<Double>> series = new LinkedHashMap<>();
      impls.forEach(i -> series.put(i, new ArrayList<>()));
      for (BenchCase c : cases(f).stream().sorted(java.util.Comparator.comparingInt(BenchCase::headDim)
          .thenComparingInt(BenchCase::kvLen)).toList()) {
        boolean anyOk = impls.stream().anyMatch(i -> find(i, c).map(Measurement::ok).orElse(false));
        if (!anyOk) {
          continue;
        }
        cats.add("E" + c.headDim() + " L" + lengthCell(c));
        for (String i : impls) {
          series.get(i).add(find(i, c).filter(Measurement::ok).map(m -> m.gflops() / perGflops).orElse(Double.NaN));
        }
      }
      series.values().removeIf(v -> v.stream().allMatch(d -> d.isNaN()));
      Path p = Charts.bars(figureDir.resolve(prefix + "-" + unit.toLowerCase(Locale.ROOT).replace("/", "")
          + "-" + f.slug()), unit + " per implementation (" + f.describe() + ")", unit, cats, series);
      if (p != null) {
        s.append("![").append(p.getFileName()).append("](").append(mdDir.relativize(p.toAbsolutePath()))
            .append(")\n");
      }
    }
    return s.toString();
  }

  /** Per implementation and family: the longest L that ran, and the first L that ran out of memory. Markdown. */
  public String memoryLimits() {
    StringBuilder s = new StringBuilder("| implementation | setting | longest L run | first L out of memory |\n"
        + "|---|---|---|---|\n");
    for (String impl : implementations()) {
      for (Family f : families()) {
        TreeSet<Integer> dims = new TreeSet<>();
        cases(f).forEach(c -> dims.add(c.headDim()));
        for (int e : dims) {
          List<Measurement> mine = ms.stream().filter(m -> m.implementation().equals(impl)
              && f.contains(m.benchCase()) && m.benchCase().headDim() == e).toList();
          if (mine.isEmpty()) {
            continue;
          }
          int longest = mine.stream().filter(Measurement::ok).mapToInt(m -> m.benchCase().kvLen()).max().orElse(0);
          Optional<Measurement> oom = mine.stream().filter(m -> m.status() == Status.OOM)
              .min(java.util.Comparator.comparingInt(m -> m.benchCase().kvLen()));
          s.append("| ").append(impl).append(" | ").append(f.describe()).append(", E=").append(e).append(" | ")
              .append(longest == 0 ? "none" : longest).append(" | ")
              .append(oom.map(m -> m.benchCase().kvLen() + (m.note().isEmpty() ? "" : " (" + m.note() + ")"))
                  .orElse("none")).append(" |\n");
        }
      }
    }
    return s.toString();
  }

  /** All measurements as one markdown table (time, GFLOP/s, memory, status). */
  public String fullTable() {
    StringBuilder s = new StringBuilder("| implementation | pass | B | H | E | L | causal | median ms | " + unit
        + " | memory | status |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (Measurement m : ms) {
      BenchCase c = m.benchCase();
      s.append("| ").append(m.implementation()).append(" | ").append(passCell(c)).append(" | ")
          .append(c.batch()).append(" | ").append(c.heads()).append(" | ").append(c.headDim()).append(" | ")
          .append(lengthCell(c)).append(" | ").append(c.causal() ? "yes" : "no").append(" | ").append(fmt(m.medianMs()))
          .append(" | ").append(fmt(m.gflops() / perGflops)).append(" | ").append(Memory.format(m.memoryBytes()))
          .append(" | ")
          .append(m.status()).append(m.note().isEmpty() ? "" : ": " + m.note().replace("|", "/")).append(" |\n");
    }
    return s.toString();
  }
}
