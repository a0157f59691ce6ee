package dev.sdpa4j;

import static dev.sdpa4j.AttentionRequest.disjoint;
import static dev.sdpa4j.AttentionRequest.expectShape;
import static dev.sdpa4j.AttentionRequest.inBounds;
import static dev.sdpa4j.AttentionRequest.rank;
import static dev.sdpa4j.AttentionRequest.require;
import static dev.sdpa4j.AttentionRequest.sameDevice;
import static dev.sdpa4j.AttentionRequest.sameDtype;
import static dev.sdpa4j.AttentionRequest.writable;

import java.util.Objects;

/**
 * One validated backward call: the forward request it follows (whose output and log-sum-exp were written by a
 * forward pass with the same inputs and options), the gradient of the output, and the three gradient outputs.
 * {@code gradKey} and {@code gradValue} are summed over each grouped-query group. Dropout regenerates the forward's
 * mask from its seed and offset.
 */
public final class BackwardRequest {
  private final AttentionRequest forward;
  private final Tensor gradOutput;
  private final Tensor gradQuery;
  private final Tensor gradKey;
  private final Tensor gradValue;

  private BackwardRequest(AttentionRequest forward, Tensor gradOutput, Tensor gradQuery, Tensor gradKey,
      Tensor gradValue) {
    this.forward = forward;
    this.gradOutput = gradOutput;
    this.gradQuery = gradQuery;
    this.gradKey = gradKey;
    this.gradValue = gradValue;
  }

  /** The forward call this backward call follows. */
  public AttentionRequest forward() {
    return forward;
  }

  /** dOut, shaped like the output. */
  public Tensor gradOutput() {
    return gradOutput;
  }

  /** dQ, written by the provider. */
  public Tensor gradQuery() {
    return gradQuery;
  }

  /** dK, written by the provider; summed over each grouped-query group. */
  public Tensor gradKey() {
    return gradKey;
  }

  /** dV, written by the provider; summed over each grouped-query group. */
  public Tensor gradValue() {
    return gradValue;
  }

  /**
   * Validates a backward call: gradOutput shaped like the output, each gradient like its input, same dtype and
   * memory, gradients non-overlapping and disjoint from everything else; the forward must have kept its LSE.
   */
  public static BackwardRequest create(AttentionRequest forward, Tensor gradOutput, Tensor gradQuery, Tensor gradKey,
      Tensor gradValue) {
    Objects.requireNonNull(forward, "forward");
    if (forward.lse().isEmpty()) {
      throw new AttentionArgumentException("forward", "backward needs the forward's log-sum-exp; run the forward with training(true)");
    }
    require(gradOutput, "gradOutput");
    require(gradQuery, "gradQuery");
    require(gradKey, "gradKey");
    require(gradValue, "gradValue");
    rank(gradOutput, "gradOutput", 4, "[B, Hq, Lq, Ev]");
    rank(gradQuery, "gradQuery", 4, "[B, Hq, Lq, E]");
    rank(gradKey, "gradKey", 4, "[B, Hkv, Lk, E]");
    rank(gradValue, "gradValue", 4, "[B, Hkv, Lk, Ev]");
    DType dtype = forward.dtype();
    sameDtype(gradOutput, "gradOutput", dtype);
    sameDtype(gradQuery, "gradQuery", dtype);
    sameDtype(gradKey, "gradKey", dtype);
    sameDtype(gradValue, "gradValue", dtype);
    expectShape(gradOutput, "gradOutput", "[B, Hq, Lq, Ev]", forward.output().shape());
    expectShape(gradQuery, "gradQuery", "[B, Hq, Lq, E]", forward.query().shape());
    expectShape(gradKey, "gradKey", "[B, Hkv, Lk, E]", forward.key().shape());
    expectShape(gradValue, "gradValue", "[B, Hkv, Lk, Ev]", forward.value().shape());
    Device device = forward.device();
    sameDevice(gradOutput, "gradOutput", device);
    sameDevice(gradQuery, "gradQuery", device);
    sameDevice(gradKey, "gradKey", device);
    sameDevice(gradValue, "gradValue", device);
    inBounds(gradOutput, "gradOutput");
    inBounds(gradQuery, "gradQuery");
    inBounds(gradKey, "gradKey");
    inBounds(gradValue, "gradValue");
    Tensor mask = forward.mask().orElse(null);
    Tensor lse = forward.lse().orElseThrow();
    gradientWritable(gradQuery, "gradQuery", forward, mask, lse, gradOutput);
    gradientWritable(gradKey, "gradKey", forward, mask, lse, gradOutput);
    gradientWritable(gradValue, "gradValue", forward, mask, lse, gradOutput);
    disjoint(gradQuery, "gradQuery", gradKey, "gradKey");
    disjoint(gradQuery, "gradQuery", gradValue, "gradValue");
    disjoint(gradKey, "gradKey", gradValue, "gradValue");
    return new BackwardRequest(forward, gradOutput, gradQuery, gradKey, gradValue);
  }

  private static void gradientWritable(Tensor grad, String name, AttentionRequest forward, Tensor mask, Tensor lse,
      Tensor gradOutput) {
    writable(grad, name, forward.query(), forward.key(), forward.value(), mask);
    disjoint(grad, name, forward.output(), "output");
    disjoint(grad, name, lse, "lse");
    disjoint(grad, name, gradOutput, "gradOutput");
  }
}
