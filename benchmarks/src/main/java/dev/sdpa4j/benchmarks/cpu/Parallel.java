package dev.sdpa4j.benchmarks.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.RecursiveAction;
import java.util.function.IntConsumer;

/** A fork-join loop over {@code [0, n)} on a pool of a fixed number of threads. */
final class Parallel {
  private final ForkJoinPool pool;

  Parallel(int threads) {
    this.pool = new ForkJoinPool(threads);
  }

  int threads() {
    return pool.getParallelism();
  }

  /** Runs {@code body} for every index in {@code [0, n)}, split in halves down to single indices. */
  void forEach(int n, IntConsumer body) {
    pool.invoke(new Range(0, n, body));
  }

  private static final class Range extends RecursiveAction {
    private final int from;
    private final int to;
    private final transient IntConsumer body;

    Range(int from, int to, IntConsumer body) {
      this.from = from;
      this.to = to;
      this.body = body;
    }

    @Override
    protected void compute() {
      if (to - from == 1) {
        body.accept(from);
      } else if (to > from) {
        int mid = (from + to) >>> 1;
        invokeAll(new Range(from, mid, body), new Range(mid, to, body));
      }
    }
  }
}
