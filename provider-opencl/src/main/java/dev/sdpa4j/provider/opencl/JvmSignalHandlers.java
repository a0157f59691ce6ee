package dev.sdpa4j.provider.opencl;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps the JVM's handlers for SIGSEGV, SIGBUS, SIGILL and SIGFPE in place around OpenCL calls.
 *
 * <p>HotSpot takes these signals for its own purposes (implicit null checks, safepoint polls in compiled code). An
 * OpenCL driver built on LLVM (PoCL does it when its first context is created) installs crash handlers for them
 * with {@code sigaction}, without chaining to the JVM's; from then on the next such trap in compiled Java code kills
 * the process with "Segmentation fault" and no error report. The provider captures the JVM's handlers before its
 * first OpenCL call ({@link #INSTANCE} is created when the class loads) and puts them back after each call that may
 * load or initialise a driver ({@link #restore}), logging once at WARN. The drivers' crash handlers are lost, which
 * only affects the stack traces they would print. Starting the JVM with {@code LD_PRELOAD=$JAVA_HOME/lib/libjsig.so}
 * (HotSpot's signal chaining) keeps both; then nothing needs restoring.
 *
 * <p>POSIX only: where {@code sigaction} is not found (Windows) this does nothing.
 */
final class JvmSignalHandlers {
  private static final Logger LOG = LoggerFactory.getLogger(JvmSignalHandlers.class);
  /** SIGILL, SIGFPE, SIGSEGV, SIGBUS: the same numbers on Linux x86-64 and aarch64. */
  private static final int[] SIGNALS = {4, 8, 11, 7};
  private static final String[] NAMES = {"SIGILL", "SIGFPE", "SIGSEGV", "SIGBUS"};
  /** Room for {@code struct sigaction} (152 bytes with glibc), copied back verbatim. */
  private static final int ACTION_BYTES = 256;

  static final JvmSignalHandlers INSTANCE = new JvmSignalHandlers(sigaction());

  private final Optional<MethodHandle> sigaction;
  private final byte[][] saved;
  private final AtomicBoolean warned = new AtomicBoolean();

  private JvmSignalHandlers(Optional<MethodHandle> sigaction) {
    this.sigaction = sigaction;
    this.saved = sigaction.map(h -> current()).orElse(null);
  }

  /**
   * Puts the JVM's handlers back where a driver replaced them during {@code call}; returns the names of the signals
   * restored (empty when none was replaced).
   */
  synchronized List<String> restore(String call) {
    if (saved == null) {
      return List.of();
    }
    byte[][] now = current();
    List<String> restored = new ArrayList<>();
    for (int i = 0; i < SIGNALS.length; i++) {
      if (!Arrays.equals(handler(now[i]), handler(saved[i]))) {
        set(SIGNALS[i], saved[i]);
        restored.add(NAMES[i]);
      }
    }
    if (!restored.isEmpty() && warned.compareAndSet(false, true)) {
      LOG.warn("the OpenCL driver replaced the JVM's {} handlers during {} (HotSpot needs them: compiled Java code "
          + "would crash the process); restored them. Start the JVM with LD_PRELOAD=$JAVA_HOME/lib/libjsig.so to "
          + "chain the driver's handlers instead", String.join(", ", restored), call);
    } else if (!restored.isEmpty()) {
      LOG.debug("restored the JVM's {} handlers after {}", String.join(", ", restored), call);
    }
    return restored;
  }

  /** Whether the JVM's handlers could be captured here (a POSIX system). */
  boolean active() {
    return saved != null;
  }

  private byte[][] current() {
    byte[][] actions = new byte[SIGNALS.length][];
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment buf = arena.allocate(ACTION_BYTES, 16);
      for (int i = 0; i < SIGNALS.length; i++) {
        buf.fill((byte) 0);
        call(SIGNALS[i], MemorySegment.NULL, buf);
        actions[i] = buf.toArray(ValueLayout.JAVA_BYTE);
      }
    }
    return actions;
  }

  private void set(int signal, byte[] action) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment buf = arena.allocate(ACTION_BYTES, 16);
      MemorySegment.copy(action, 0, buf, ValueLayout.JAVA_BYTE, 0, action.length);
      call(signal, buf, MemorySegment.NULL);
    }
  }

  private void call(int signal, MemorySegment act, MemorySegment old) {
    try {
      int rc = (int) sigaction.orElseThrow().invokeExact(signal, act, old);
      if (rc != 0) {
        throw new IllegalStateException("sigaction(" + signal + ") failed");
      }
    } catch (RuntimeException | Error e) {
      throw e;
    } catch (Throwable t) {
      throw new IllegalStateException(t);
    }
  }

  /** The handler address: the first field of {@code struct sigaction} on Linux. */
  private static byte[] handler(byte[] action) {
    return Arrays.copyOf(action, Long.BYTES);
  }

  private static Optional<MethodHandle> sigaction() {
    if (!System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).contains("linux")) {
      return Optional.empty();
    }
    try {
      Linker linker = Linker.nativeLinker();
      return linker.defaultLookup().find("sigaction").map(f -> linker.downcallHandle(f,
          FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
              ValueLayout.ADDRESS)));
    } catch (RuntimeException | LinkageError e) {
      LOG.debug("sigaction unavailable: {}", e.toString());
      return Optional.empty();
    }
  }
}
