package dev.sdpa4j;

import java.util.List;
import java.util.Set;

/**
 * A scoped override of provider selection on the current thread, like PyTorch's {@code sdpa_kernel} context
 * manager: inside the {@code try} block only the allowed providers are considered (in the given order) and the
 * forbidden ones never. Scopes nest; closing one restores the previous state. Close it on the thread that opened
 * it.
 *
 * <pre>{@code
 * try (var scope = Sdpa.useProviders("cuda-flash", "math")) {
 *   Sdpa.scaledDotProductAttention(q, k, v, options);
 * }
 * }</pre>
 */
public final class ProviderScope implements AutoCloseable {
  private static final ThreadLocal<ProviderScope> CURRENT = new ThreadLocal<>();

  private final List<String> allowed;
  private final Set<String> forbidden;
  private final ProviderScope previous;
  private final Thread owner;
  private boolean closed;

  private ProviderScope(List<String> allowed, Set<String> forbidden, ProviderScope previous) {
    this.allowed = allowed;
    this.forbidden = forbidden;
    this.previous = previous;
    this.owner = Thread.currentThread();
  }

  static ProviderScope open(List<String> allowed, Set<String> forbidden) {
    ProviderScope prev = CURRENT.get();
    List<String> effectiveAllowed = allowed != null ? List.copyOf(allowed) : prev != null ? prev.allowed : null;
    java.util.Set<String> effectiveForbidden = new java.util.HashSet<>(forbidden);
    if (prev != null) {
      effectiveForbidden.addAll(prev.forbidden);
    }
    ProviderScope scope = new ProviderScope(effectiveAllowed, Set.copyOf(effectiveForbidden), prev);
    CURRENT.set(scope);
    return scope;
  }

  /** The scope in force on this thread, or null. */
  static ProviderScope current() {
    return CURRENT.get();
  }

  /** The ordered allow-list, or null when this scope only forbids. */
  List<String> allowed() {
    return allowed;
  }

  Set<String> forbidden() {
    return forbidden;
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    if (Thread.currentThread() != owner) {
      throw new IllegalStateException("a ProviderScope must be closed on the thread that opened it");
    }
    if (CURRENT.get() != this) {
      throw new IllegalStateException("ProviderScopes must be closed in reverse order of opening");
    }
    closed = true;
    if (previous == null) {
      CURRENT.remove();
    } else {
      CURRENT.set(previous);
    }
  }
}
