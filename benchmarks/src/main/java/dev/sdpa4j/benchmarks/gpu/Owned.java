package dev.sdpa4j.benchmarks.gpu;

import dev.sdpa4j.cuda.CudaStream;
import java.util.ArrayList;
import java.util.List;

/**
 * The device resources of one prepared case (streams, memory, events, handles), closed together in reverse order of
 * creation once every stream among them has finished its work. Not thread-safe.
 */
final class Owned implements AutoCloseable {
  private final List<AutoCloseable> resources = new ArrayList<>();

  /** Adds {@code r} and returns it. */
  <T extends AutoCloseable> T add(T r) {
    resources.add(r);
    return r;
  }

  @Override
  public void close() {
    for (AutoCloseable r : resources) {
      if (r instanceof CudaStream s) {
        s.synchronize();
      }
    }
    RuntimeException failure = null;
    for (int i = resources.size() - 1; i >= 0; i--) {
      try {
        resources.get(i).close();
      } catch (Exception e) {
        if (failure == null) {
          failure = new IllegalStateException("releasing " + resources.get(i), e);
        } else {
          failure.addSuppressed(e);
        }
      }
    }
    resources.clear();
    if (failure != null) {
      throw failure;
    }
  }
}
