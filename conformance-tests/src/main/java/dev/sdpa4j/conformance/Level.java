package dev.sdpa4j.conformance;

import java.util.Locale;

/** How much of the grid the kit runs: {@code -Dsdpa4j.conformance.level=quick|full}. */
enum Level {
  /** A covering sample of every claimed feature, small sizes: CI, well under two minutes per provider. */
  QUICK,
  /** The large grid: every head dim and length pair, long sequences; for a host with the device. */
  FULL;

  static Level parse(String text) {
    for (Level l : values()) {
      if (l.name().equalsIgnoreCase(text.trim())) {
        return l;
      }
    }
    throw new IllegalArgumentException(Settings.LEVEL + " must be quick or full, got '" + text + "'");
  }

  String label() {
    return name().toLowerCase(Locale.ROOT);
  }
}
