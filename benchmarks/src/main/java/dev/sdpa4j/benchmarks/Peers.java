package dev.sdpa4j.benchmarks;

import java.lang.reflect.InvocationTargetException;

/**
 * The libtorch CPU peer, loaded by name: a build made with {@code -Dnolibtorch} (the GPU bundle) leaves its class
 * and natives out, and the peer is then reported unavailable instead of breaking the run.
 */
public final class Peers {
  private static final String LIBTORCH = "dev.sdpa4j.benchmarks.libtorch.LibTorchCandidate";

  private Peers() {}

  /**
   * The libtorch candidate with {@code threads} intra-op threads.
   *
   * @throws PeerUnavailableException when libtorch is not in this build or its natives fail to load
   */
  public static Candidate libtorch(int threads) {
    try {
      return (Candidate) Class.forName(LIBTORCH).getConstructor(int.class).newInstance(threads);
    } catch (ClassNotFoundException e) {
      throw new PeerUnavailableException("libtorch peer not in this build (built with -Dnolibtorch)", e);
    } catch (InvocationTargetException e) {
      throw new PeerUnavailableException("libtorch failed to load: " + e.getCause(), e.getCause());
    } catch (ReflectiveOperationException | LinkageError e) {
      throw new PeerUnavailableException("libtorch failed to load: " + e, e);
    }
  }

  /** libtorch's version and threading, or why it is unavailable. */
  public static String libtorchDescription() {
    try {
      return (String) Class.forName(LIBTORCH).getMethod("describe").invoke(null);
    } catch (ReflectiveOperationException | LinkageError e) {
      return "unavailable: " + e;
    }
  }

  /** A peer that cannot run here. */
  public static final class PeerUnavailableException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    PeerUnavailableException(String message, Throwable cause) {
      super(message, cause);
    }
  }
}
