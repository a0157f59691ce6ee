package dev.sdpa4j.conformance;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Computes the reference results of the next cases of a group on spare cores while the current case runs on the
 * provider, a bounded window ahead. Cases whose dropout seed is drawn by the request cannot be computed ahead.
 */
final class Prefetch {
  private static final int THREADS = Math.max(1, Runtime.getRuntime().availableProcessors() / 2);
  private static final ExecutorService POOL = Executors.newFixedThreadPool(THREADS, r -> {
    Thread t = new Thread(r, "sdpa4j-conformance-reference");
    t.setDaemon(true);
    return t;
  });

  private final List<ForwardCase> cases;
  private final Settings settings;
  private final int window;
  private final Map<String, Future<ReferenceResults>> pending = new ConcurrentHashMap<>();
  private int submitted;

  Prefetch(List<ForwardCase> cases, Settings settings) {
    this.cases = List.copyOf(cases);
    this.settings = settings;
    this.window = 2 * THREADS;
  }

  /** Starts the cases up to {@code index + window} not started yet. */
  synchronized void ahead(int index) {
    while (submitted < cases.size() && submitted <= index + window) {
      ForwardCase c = cases.get(submitted++);
      if (c.dropoutP() == 0 || c.dropoutSeed() != null) {
        long seed = settings.caseSeed(c.name());
        pending.put(c.name(), POOL.submit(() -> ReferenceResults.of(c, seed)));
      }
    }
  }

  /** The results of {@code c} if they were computed ahead; empty otherwise (the caller computes them). */
  Optional<ReferenceResults> take(ForwardCase c) {
    Future<ReferenceResults> f = pending.remove(c.name());
    if (f == null) {
      return Optional.empty();
    }
    try {
      return Optional.of(f.get());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return Optional.empty();
    } catch (ExecutionException e) {
      return Optional.empty();
    }
  }
}
