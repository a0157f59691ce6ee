package dev.sdpa4j.cuda;

/**
 * A CUDA grid or block size.
 *
 * @param x first dimension, at least 1
 * @param y second dimension, at least 1
 * @param z third dimension, at least 1
 */
public record Dim3(int x, int y, int z) {
  public Dim3 {
    if (x < 1 || y < 1 || z < 1) {
      throw new IllegalArgumentException("dimensions must be >= 1, got (" + x + ", " + y + ", " + z + ")");
    }
  }

  /** {@code (x, 1, 1)}. */
  public static Dim3 of(int x) {
    return new Dim3(x, 1, 1);
  }

  /** {@code (x, y, 1)}. */
  public static Dim3 of(int x, int y) {
    return new Dim3(x, y, 1);
  }

  /** {@code (x, y, z)}. */
  public static Dim3 of(int x, int y, int z) {
    return new Dim3(x, y, z);
  }
}
