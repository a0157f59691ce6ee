package dev.sdpa4j.provider.cuda.flash;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** The merge slabs' concurrency contract, with plain objects as slabs (no GPU). */
class MergeSlabsTest {
  /** A slab that records whether a call holds it. */
  private static final class Slab {
    final AtomicInteger holders = new AtomicInteger();
  }

  @Test
  void eachStreamHandleKeepsItsOwnSlab() {
    AtomicInteger created = new AtomicInteger();
    MergeSlabs<Object> slabs = new MergeSlabs<>(() -> {
      created.incrementAndGet();
      return new Object();
    });
    Object a = slabs.forStream(0x1000).orElseThrow();
    Object b = slabs.forStream(0x2000).orElseThrow();
    assertThat(a).isNotSameAs(b);
    assertThat(slabs.forStream(0x1000).orElseThrow()).isSameAs(a);
    assertThat(slabs.forStream(0x2000).orElseThrow()).isSameAs(b);
    assertThat(created.get()).isEqualTo(2);
    assertThat(slabs.streams()).isEqualTo(2);
  }

  @Test
  void streamsBeyondTheLimitGetNoSlab() {
    MergeSlabs<Object> slabs = new MergeSlabs<>(Object::new);
    for (int i = 0; i < MergeSlabs.MAX_STREAMS; i++) {
      assertThat(slabs.forStream(0x1000 + i)).isPresent();
    }
    assertThat(slabs.forStream(0x9999_0000L)).isEmpty();
    // streams that have one keep it
    assertThat(slabs.forStream(0x1000)).isPresent();
    assertThat(slabs.streams()).isEqualTo(MergeSlabs.MAX_STREAMS);
  }

  @Test
  void threadsRacingForOneStreamShareOneSlabAndDistinctStreamsNeverShare() throws Exception {
    AtomicInteger created = new AtomicInteger();
    MergeSlabs<Object> slabs = new MergeSlabs<>(() -> {
      created.incrementAndGet();
      return new Object();
    });
    int threads = 8;
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      CountDownLatch start = new CountDownLatch(1);
      List<Future<Object[]>> results = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        results.add(pool.submit(() -> {
          start.await();
          Object[] got = new Object[16];
          for (int s = 0; s < got.length; s++) {
            got[s] = slabs.forStream(0x4000 + s).orElseThrow();
          }
          return got;
        }));
      }
      start.countDown();
      Object[] first = results.get(0).get(10, TimeUnit.SECONDS);
      for (Future<Object[]> f : results) {
        assertThat(f.get(10, TimeUnit.SECONDS)).containsExactly(first);
      }
      Set<Object> distinct = Collections.newSetFromMap(new IdentityHashMap<>());
      Collections.addAll(distinct, first);
      assertThat(distinct).hasSize(16);
      assertThat(created.get()).isEqualTo(16);
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void aBorrowedSlabHasOneHolderUntilItIsGivenBack() throws Exception {
    long seed = System.nanoTime();
    System.out.println("aBorrowedSlabHasOneHolderUntilItIsGivenBack seed " + seed);
    AtomicInteger created = new AtomicInteger();
    MergeSlabs<Slab> slabs = new MergeSlabs<>(() -> {
      created.incrementAndGet();
      return new Slab();
    });
    int threads = 8;
    AtomicInteger overlaps = new AtomicInteger();
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<?>> done = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        java.util.Random rnd = new java.util.Random(seed + t);
        done.add(pool.submit(() -> {
          for (int i = 0; i < 20_000; i++) {
            Slab s = slabs.borrow();
            if (s.holders.incrementAndGet() != 1) {
              overlaps.incrementAndGet();
            }
            if (rnd.nextInt(8) == 0) {
              Thread.yield();
            }
            s.holders.decrementAndGet();
            slabs.giveBack(s);
          }
          return null;
        }));
      }
      for (Future<?> f : done) {
        f.get(60, TimeUnit.SECONDS);
      }
    } finally {
      pool.shutdownNow();
    }
    assertThat(overlaps.get()).isZero();
    // slabs are reused: no more than one per thread that held one at the same time
    assertThat(created.get()).isBetween(1, threads);
  }

  @Test
  void borrowedSlabsAreNotTheStreamsSlabs() {
    MergeSlabs<Object> slabs = new MergeSlabs<>(Object::new);
    Object stream = slabs.forStream(0x1000).orElseThrow();
    Object borrowed = slabs.borrow();
    assertThat(borrowed).isNotSameAs(stream);
    slabs.giveBack(borrowed);
    assertThat(slabs.borrow()).isSameAs(borrowed);
  }
}
