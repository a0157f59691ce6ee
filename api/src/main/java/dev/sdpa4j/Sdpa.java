package dev.sdpa4j;

import java.lang.foreign.Arena;
import java.util.List;
import java.util.Set;

/**
 * The front door: {@code scaled_dot_product_attention} with PyTorch's semantics, run by the best provider found.
 *
 * <p>For query {@code Q [B, Hq, Lq, E]}, key {@code K [B, Hkv, Lk, E]} and value {@code V [B, Hkv, Lk, Ev]}, each
 * query head {@code h} attends to key/value head {@code h / (Hq / Hkv)}:
 * <pre>
 *   S = scale · Q·Kᵀ  (+ additive mask; -inf where a boolean mask is false or causality forbids)
 *   P = softmax(S) over keys,   LSE = log(sum(exp(S))) over keys
 *   O = dropout(P) · V
 * </pre>
 * A row in which every key is masked gives an output row of zeros and LSE {@code -inf} on every provider. Dropout is
 * {@link Dropout}'s portable Philox mask.
 *
 * <p>Every argument is checked before any provider runs ({@link AttentionArgumentException}, output untouched); a
 * request no provider accepts fails with {@link NoSuitableProviderException}, listing each provider's reasons.
 * Calls are thread-safe.
 */
public final class Sdpa {
  private Sdpa() {}

  /** Attention over host tensors with default options; allocates the output. */
  public static AttentionResult scaledDotProductAttention(Tensor query, Tensor key, Tensor value) {
    return scaledDotProductAttention(query, key, value, AttentionOptions.DEFAULTS);
  }

  /**
   * Attention over host tensors; allocates the output {@code [B, Hq, Lq, Ev]} (the query's dtype) and, when the
   * options ask for it, the LSE, in an automatic arena.
   */
  public static AttentionResult scaledDotProductAttention(Tensor query, Tensor key, Tensor value,
      AttentionOptions options) {
    AttentionRequest.require(query, "query");
    AttentionRequest.require(key, "key");
    AttentionRequest.require(value, "value");
    AttentionRequest.rank(query, "query", 4, "[B, Hq, Lq, E]");
    AttentionRequest.rank(value, "value", 4, "[B, Hkv, Lk, Ev]");
    if (query.device().platform() != Platform.HOST) {
      throw new AttentionArgumentException("output", "tensors in " + query.device()
          + " memory need a caller-allocated output; use the overload that takes output and lse");
    }
    Arena arena = Arena.ofAuto();
    Tensor out = Tensor.allocate(arena, query.dtype(), query.size(0), query.size(1), query.size(2), value.size(3));
    Tensor lse = options.returnLse()
        ? Tensor.allocate(arena, DType.FLOAT32, query.size(0), query.size(1), query.size(2)) : null;
    return scaledDotProductAttention(query, key, value, out, lse, options);
  }

  /**
   * Attention into caller-provided output (and LSE, or null), in any memory the chosen provider accepts.
   */
  public static AttentionResult scaledDotProductAttention(Tensor query, Tensor key, Tensor value, Tensor output,
      Tensor lse, AttentionOptions options) {
    return ProviderRegistry.discovered().forward(AttentionRequest.create(query, key, value, output, lse, options));
  }

  /** What every discovered provider says about {@code request}, and which would run it. */
  public static Selection explain(AttentionRequest request) {
    return ProviderRegistry.discovered().select(request);
  }

  /** Only these providers, tried in this order, on this thread until the scope closes. */
  public static ProviderScope useProviders(String... names) {
    return ProviderScope.open(List.of(names), Set.of());
  }

  /** Never these providers, on this thread until the scope closes. */
  public static ProviderScope forbidProviders(String... names) {
    return ProviderScope.open(null, Set.of(names));
  }
}
