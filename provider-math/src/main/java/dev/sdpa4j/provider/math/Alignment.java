package dev.sdpa4j.provider.math;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Puts the kernels' vector operands on 64-byte boundaries. A 512-bit load that straddles two cache lines is much
 * slower than an aligned one, and the JVM aligns a {@code float[]}'s elements to 8 bytes only: measured here, the
 * score product runs 10-15% faster on an aligned panel of queries (see PERF_NOTES.md). The JDK has no API for an
 * array's address, so it is read through a critical downcall of {@code memset(p, 0, 0)}, which returns {@code p} and
 * writes nothing. That needs native access: where the application has not granted it to this module, every offset
 * is 0. An array that the garbage collector moves afterwards may lose its alignment; only speed, never a result,
 * depends on it.
 */
final class Alignment {
  /** Elements of padding that an array needs for {@link #offset}: one 64-byte line of floats. */
  static final int PAD = 16;
  private static final int LINE = PAD * Float.BYTES;
  /** {@code memset} as a critical downcall that may take a heap segment, or null without native access. */
  private static final MethodHandle MEMSET = memset();

  private Alignment() {}

  /**
   * The offset, in {@code [0, PAD)}, of the first element of {@code a} that lies on a 64-byte boundary, or 0 when the
   * address cannot be read.
   */
  static int offset(float[] a) {
    if (MEMSET == null) {
      return 0;
    }
    long address;
    try {
      address = ((MemorySegment) MEMSET.invokeExact(MemorySegment.ofArray(a), 0, 0L)).address();
    } catch (Throwable t) {
      throw new IllegalStateException("memset(p, 0, 0) failed", t);
    }
    return (int) ((LINE - (address & (LINE - 1))) & (LINE - 1)) / Float.BYTES;
  }

  private static MethodHandle memset() {
    if (!Alignment.class.getModule().isNativeAccessEnabled()) {
      return null;
    }
    Linker linker = Linker.nativeLinker();
    return linker.defaultLookup().find("memset")
        .map(f -> linker.downcallHandle(f, FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS,
            ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG), Linker.Option.critical(true)))
        .orElse(null);
  }
}
