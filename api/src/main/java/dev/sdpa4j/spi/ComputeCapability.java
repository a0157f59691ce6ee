package dev.sdpa4j.spi;

/**
 * A CUDA compute capability such as 8.0 or 9.0.
 *
 * @param major the major version
 * @param minor the minor version
 */
public record ComputeCapability(int major, int minor) implements Comparable<ComputeCapability> {
  @Override
  public int compareTo(ComputeCapability o) {
    return major != o.major ? Integer.compare(major, o.major) : Integer.compare(minor, o.minor);
  }

  /** Parses "8.0" or "sm_80". */
  public static ComputeCapability parse(String text) {
    String t = text.startsWith("sm_") ? text.substring(3) : text;
    if (t.contains(".")) {
      String[] p = t.split("\\.");
      return new ComputeCapability(Integer.parseInt(p[0]), Integer.parseInt(p[1]));
    }
    int v = Integer.parseInt(t.replaceAll("[^0-9]", ""));
    return new ComputeCapability(v / 10, v % 10);
  }

  @Override
  public String toString() {
    return major + "." + minor;
  }
}
