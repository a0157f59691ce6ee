package dev.sdpa4j.benchmarks;

import java.util.SplittableRandom;

/**
 * Deterministic input sets for one case: {@code query}, {@code key}, {@code value} and the output gradient, each a
 * contiguous {@code [B, H, L, E]} float array of standard normal values, drawn from a seed. Every candidate copies
 * the same numbers into its own memory.
 */
public final class InputSets {
  private final BenchCase benchCase;
  private final int count;
  private final long seed;

  /**
   * @param benchCase the case
   * @param count     the number of sets (at least 1)
   * @param seed      the seed of the first set; set {@code i} uses {@code seed + i}
   */
  public InputSets(BenchCase benchCase, int count, long seed) {
    if (count < 1) {
      throw new IllegalArgumentException("need at least one input set, got " + count);
    }
    if ((long) benchCase.batch() * benchCase.heads() * benchCase.seqLen() * benchCase.headDim() > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("tensors over 2^31 elements: " + benchCase.describe());
    }
    this.benchCase = benchCase;
    this.count = count;
    this.seed = seed;
  }

  public BenchCase benchCase() {
    return benchCase;
  }

  public int count() {
    return count;
  }

  /** The seed of set 0 (set {@code i} uses {@code seed + i}). */
  public long seed() {
    return seed;
  }

  /** Elements of one tensor. */
  public int elements() {
    return benchCase.batch() * benchCase.heads() * benchCase.seqLen() * benchCase.headDim();
  }

  /** The four tensors of set {@code i}: query, key, value, output gradient. Freshly allocated on each call. */
  public float[][] tensors(int i) {
    if (i < 0 || i >= count) {
      throw new IndexOutOfBoundsException("set " + i + " of " + count);
    }
    SplittableRandom r = new SplittableRandom(seed + i);
    float[][] t = new float[4][elements()];
    for (float[] a : t) {
      for (int j = 0; j < a.length; j++) {
        a[j] = (float) r.nextGaussian();
      }
    }
    return t;
  }
}
