package dev.sdpa4j.conformance;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.Optional;

/**
 * The kit's run settings, read from JUnit configuration parameters (which fall back to system properties):
 * {@value #LEVEL}, {@value #SEED} and {@value #CASE}.
 *
 * @param level      how much of the grid runs
 * @param seed       the master seed every case's data derive from
 * @param caseFilter only cases whose name contains this run; empty runs all
 * @param rerun      the start of the command that reruns this test class, e.g. {@code ./mvnw test -pl m -Dtest=C}
 */
record Settings(Level level, long seed, String caseFilter, String rerun) {
  /** quick (default) or full. */
  static final String LEVEL = "sdpa4j.conformance.level";
  /** The master seed (decimal or 0x hex); random when absent, and printed. */
  static final String SEED = "sdpa4j.conformance.seed";
  /** Runs only the cases whose name contains this text. */
  static final String CASE = "sdpa4j.conformance.case";

  /** One random seed per JVM, so every test class of a run shares it and one printed seed reruns them all. */
  private static final long RUN_SEED = new SecureRandom().nextLong() >>> 1;

  static Settings of(java.util.function.Function<String, Optional<String>> parameters, Class<?> testClass) {
    Level level = parameters.apply(LEVEL).filter(s -> !s.isBlank()).map(Level::parse).orElse(Level.QUICK);
    long seed = parameters.apply(SEED).filter(s -> !s.isBlank()).map(Settings::parseSeed).orElse(RUN_SEED);
    String filter = parameters.apply(CASE).orElse("").trim();
    return new Settings(level, seed, filter, rerunCommand(testClass));
  }

  private static long parseSeed(String text) {
    String t = text.trim();
    try {
      return t.startsWith("0x") || t.startsWith("0X") ? Long.parseUnsignedLong(t.substring(2), 16) : Long.parseLong(t);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(SEED + " must be a decimal or 0x-hex long, got '" + text + "'", e);
    }
  }

  /** Whether the case of this name runs under the case filter. */
  boolean selects(String caseName) {
    return caseFilter.isEmpty() || caseName.contains(caseFilter);
  }

  /** The seed of one case: the master seed mixed with the case's name (so filters and order do not change data). */
  long caseSeed(String caseName) {
    long z = seed ^ (caseName.hashCode() * 0x9E3779B97F4A7C15L);
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }

  /** The one-line command that reruns exactly this case with this seed. */
  String rerunCase(String caseName) {
    return rerun + " -D" + SEED + "=" + seed + " -D" + CASE + "='" + caseName.replace("'", "'\\''") + "'"
        + (level == Level.QUICK ? "" : " -D" + LEVEL + "=" + level.label());
  }

  /**
   * {@code ./mvnw test -pl <module> -Dtest=<class>}, the module found from where the test class was compiled to
   * ({@code <module>/target/test-classes}); {@code mvn test -Dtest=<class>} when that is unknown.
   */
  private static String rerunCommand(Class<?> testClass) {
    String simple = testClass.getName().substring(testClass.getPackageName().isEmpty() ? 0
        : testClass.getPackageName().length() + 1);
    String test = " -Dtest=" + (simple.contains("$") ? "'" + simple + "'" : simple);
    try {
      var source = testClass.getProtectionDomain().getCodeSource();
      if (source != null) {
        Path classes = Path.of(source.getLocation().toURI());
        Path module = classes.getParent() == null ? null : classes.getParent().getParent();
        if (module != null && Files.exists(module.resolve("pom.xml"))) {
          Path root = module;
          while (root.getParent() != null && Files.exists(root.getParent().resolve("pom.xml"))) {
            root = root.getParent();
          }
          String mvn = Files.exists(root.resolve("mvnw")) ? "./mvnw" : "mvn";
          String pl = root.equals(module) ? "" : " -pl " + root.relativize(module);
          return mvn + " test" + pl + test;
        }
      }
    } catch (Exception e) {
      // fall through to the plain command: the location is only a convenience
    }
    return "mvn test" + test;
  }
}
