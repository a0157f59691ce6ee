package dev.sdpa4j.benchmarks.report;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.VectorGraphicsEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.internal.chartpart.IChart;
import org.knowm.xchart.style.Styler;

/** Draws the figures with XChart and saves each as PNG and SVG. Headless. */
public final class Charts {
  private static final int WIDTH = 900;
  private static final int HEIGHT = 560;

  static {
    System.setProperty("java.awt.headless", "true");
  }

  private Charts() {}

  /** A line: x and y values of equal length. */
  public record Line(String name, List<Double> x, List<Double> y) {
    public Line {
      if (x.size() != y.size()) {
        throw new IllegalArgumentException("x and y differ in length for " + name);
      }
      x = List.copyOf(x);
      y = List.copyOf(y);
    }
  }

  /**
   * A line chart (one line per entry), x on a base-2 logarithmic scale (sequence lengths are powers of two). Lines
   * with no point are left out. Saves {@code base.png} and {@code base.svg}; returns the PNG's path, or null when no
   * line had a point.
   */
  public static Path lines(Path base, String title, String xTitle, String yTitle, List<Line> lines, boolean logY)
      throws IOException {
    XYChart chart = new XYChartBuilder().width(WIDTH).height(HEIGHT).title(title).xAxisTitle(xTitle)
        .yAxisTitle(yTitle).build();
    // x is drawn as log2(L) on a linear axis, labelled with L at the powers of two
    chart.setCustomXAxisTickLabelsFormatter(x -> Math.abs(x - Math.rint(x)) < 1e-9
        ? String.valueOf(Math.round(Math.pow(2, Math.rint(x)))) : "");
    chart.getStyler().setYAxisLogarithmic(logY);
    chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
    chart.getStyler().setMarkerSize(7);
    int drawn = 0;
    for (Line l : lines) {
      if (!l.x().isEmpty()) {
        chart.addSeries(l.name(), l.x().stream().map(x -> Math.log(x) / Math.log(2)).toList(), l.y());
        drawn++;
      }
    }
    if (drawn == 0) {
      return null;
    }
    return save(chart, base);
  }

  /**
   * A grouped bar chart: one group per category, one bar per series ({@code series → values}, one value per
   * category; null leaves a gap). Saves PNG and SVG; returns the PNG's path, or null when empty.
   */
  public static Path bars(Path base, String title, String yTitle, List<String> categories,
      Map<String, List<Double>> series) throws IOException {
    if (categories.isEmpty() || series.isEmpty()) {
      return null;
    }
    CategoryChart chart = new CategoryChartBuilder().width(Math.max(WIDTH, 90 * categories.size())).height(HEIGHT)
        .title(title).yAxisTitle(yTitle).build();
    chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
    chart.getStyler().setXAxisLabelRotation(30);
    chart.getStyler().setOverlapped(false);
    for (var e : series.entrySet()) {
      List<Double> ys = new ArrayList<>();
      for (Double d : e.getValue()) {
        ys.add(d == null || d.isNaN() ? 0.0 : d);
      }
      chart.addSeries(e.getKey(), categories, ys);
    }
    return save(chart, base);
  }

  private static Path save(IChart chart, Path base) throws IOException {
    Files.createDirectories(base.toAbsolutePath().getParent());
    BitmapEncoder.saveBitmap(chart, base.toString(), BitmapEncoder.BitmapFormat.PNG);
    VectorGraphicsEncoder.saveVectorGraphic(chart, base.toString(), VectorGraphicsEncoder.VectorGraphicsFormat.SVG);
    return Path.of(base + ".png");
  }
}
