package dev.sdpa4j.provider.cuda.flash;

import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.function.Supplier;

/**
 * The decode kernel's merge slabs: buffers for the merge counters of its workspace path that are zero whenever no
 * launch is using them, so that a call needs no memset before its launch. The kernel keeps that state itself: the last
 * block of each (query block, batch, head) merges the splits and then returns its counter to zero
 * ({@code flash_fwd.cu}), so a slab is zero again once the launch that used it has completed. The fp32 partial outputs
 * and LSEs need no zeroing and stay per-call scratch.
 *
 * <p>Concurrency contract - a slab serves one launch at a time:
 * <ul>
 *   <li>{@link #forStream(long)}: calls on one caller stream share that stream's slab. The stream orders their
 *       launches (the provider launches no work that overlaps its predecessor on a stream), so each starts after the
 *       previous one has left the slab at zero. Different stream handles get different slabs; at most
 *       {@link #MAX_STREAMS} streams get one, calls on further streams get none.</li>
 *   <li>{@link #borrow()} / {@link #giveBack}: calls that wait for their stream before returning (the per-thread
 *       default stream, which one handle names on every thread) take a slab from an idle pool and give it back once
 *       their stream is idle; a slab is held by one call at a time, and a call that failed keeps its slab.</li>
 * </ul>
 * Calls on a stream that is being captured into a graph must not use a slab: the graph keeps its address and may be
 * replayed on another stream while later calls use the slab. They take a per-call workspace and a memset instead. A
 * slab lives as long as this object (the provider's device state); the driver frees a destroyed stream (and may hand
 * its handle out again) only once its work has completed, so a new stream with an old handle finds that slab at zero.
 *
 * @param <T> the slab (a device buffer; anything in the unit tests)
 */
final class MergeSlabs<T> {
  /** The most caller streams that get a slab of their own. */
  static final int MAX_STREAMS = 64;

  private final Supplier<T> factory;
  private final ConcurrentHashMap<Long, T> byStream = new ConcurrentHashMap<>();
  private final ConcurrentLinkedQueue<T> idle = new ConcurrentLinkedQueue<>();

  /** @param factory creates a zeroed slab (called under no lock of this object's callers' choosing) */
  MergeSlabs(Supplier<T> factory) {
    this.factory = Objects.requireNonNull(factory, "factory");
  }

  /** The slab of the caller stream {@code handle}, created on first use; empty once {@link #MAX_STREAMS} have one. */
  Optional<T> forStream(long handle) {
    T s = byStream.get(handle);
    if (s != null) {
      return Optional.of(s);
    }
    synchronized (byStream) {
      s = byStream.get(handle);
      if (s == null && byStream.size() < MAX_STREAMS) {
        s = factory.get();
        byStream.put(handle, s);
      }
    }
    return Optional.ofNullable(s);
  }

  /** An idle slab for a call that waits for its stream before returning; give it back with {@link #giveBack}. */
  T borrow() {
    T s = idle.poll();
    return s != null ? s : factory.get();
  }

  /** Returns a borrowed slab once the stream of the call that held it is idle (its launch completed). */
  void giveBack(T slab) {
    idle.offer(Objects.requireNonNull(slab, "slab"));
  }

  /** Streams that have a slab (for tests and diagnostics). */
  int streams() {
    return byStream.size();
  }
}
