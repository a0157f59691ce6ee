package dev.sdpa4j.conformance;

import dev.sdpa4j.DType;

/**
 * What the kit compares, each with the fudge factor of PyTorch's fused-kernel tests: a provider may err against the
 * float64 reference by at most {@code fudge} times what the reference algorithm itself errs when run in the inputs'
 * precision, and never by less than a floor per type.
 */
enum Quantity {
  OUTPUT("output", 4),
  LSE("lse", 4),
  GRAD_QUERY("dQ", 16),
  GRAD_KEY("dK", 16),
  GRAD_VALUE("dV", 8);

  private final String label;
  private final double fudge;

  Quantity(String label, double fudge) {
    this.label = label;
    this.fudge = fudge;
  }

  String label() {
    return label;
  }

  double fudge() {
    return fudge;
  }

  /** The type whose floors apply: the LSE is always fp32, the others are in the inputs' type. */
  DType storedAs(DType inputs) {
    return this == LSE ? DType.FLOAT32 : inputs;
  }

  /** PyTorch's default absolute tolerance of a type (test_transformers). */
  static double atolFloor(DType t) {
    return switch (t) {
      case FLOAT16, BFLOAT16 -> 1e-3;
      case FLOAT32 -> 1e-5;
      default -> 1e-12;
    };
  }

  /** PyTorch's default relative tolerance of a type (test_transformers). */
  static double rtolFloor(DType t) {
    return switch (t) {
      case FLOAT16 -> 1e-3;
      case BFLOAT16 -> 1.6e-2;
      case FLOAT32 -> 1.3e-6;
      default -> 1e-12;
    };
  }
}
