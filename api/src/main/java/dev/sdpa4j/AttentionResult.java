package dev.sdpa4j;

import dev.sdpa4j.spi.AttentionProvider;
import java.lang.foreign.Arena;
import java.util.Optional;

/**
 * What a forward call produced: the output, the log-sum-exp if kept, the dropout seed used, and which provider ran
 * it. When the call was made with {@code training(true)}, {@link #backward} runs the backward pass on the same
 * provider.
 */
public final class AttentionResult {
  private final AttentionRequest request;
  private final AttentionProvider provider;

  AttentionResult(AttentionRequest request, AttentionProvider provider) {
    this.request = request;
    this.provider = provider;
  }

  public Tensor output() {
    return request.output();
  }

  public Optional<Tensor> lse() {
    return request.lse();
  }

  /** The seed and offset that fixed the dropout mask; empty without dropout. */
  public Optional<DropoutSeed> dropoutSeed() {
    return request.dropoutSeed();
  }

  /** The name of the provider that ran the call. */
  public String provider() {
    return provider.name();
  }

  /** The validated request, as the provider saw it. */
  public AttentionRequest request() {
    return request;
  }

  /**
   * Runs the backward pass on the provider that ran the forward, writing dQ, dK and dV (dK and dV summed over each
   * grouped-query group).
   *
   * @throws AttentionArgumentException when the forward was not run with {@code training(true)}, or a gradient
   *     tensor is malformed
   */
  public void backward(Tensor gradOutput, Tensor gradQuery, Tensor gradKey, Tensor gradValue) {
    if (!request.options().training()) {
      throw new AttentionArgumentException("options.training", "backward needs a forward run with training(true)");
    }
    provider.backward(BackwardRequest.create(request, gradOutput, gradQuery, gradKey, gradValue));
  }

  /**
   * Host convenience: allocates dQ, dK, dV (the inputs' dtype, contiguous, in an automatic arena), runs
   * {@link #backward(Tensor, Tensor, Tensor, Tensor)} and returns them.
   */
  public Gradients backward(Tensor gradOutput) {
    Arena arena = Arena.ofAuto();
    Tensor dq = Tensor.allocate(arena, request.dtype(), request.query().shape());
    Tensor dk = Tensor.allocate(arena, request.dtype(), request.key().shape());
    Tensor dv = Tensor.allocate(arena, request.dtype(), request.value().shape());
    backward(gradOutput, dq, dk, dv);
    return new Gradients(dq, dk, dv);
  }

  /**
   * The gradients of a backward pass.
   *
   * @param query dQ
   * @param key   dK
   * @param value dV
   */
  public record Gradients(Tensor query, Tensor key, Tensor value) {}
}
