package dev.sdpa4j.benchmarks;

import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.DType;
import dev.sdpa4j.Device;
import dev.sdpa4j.MaskKind;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.provider.math.ReferenceAttention;
import dev.sdpa4j.spi.AttentionProvider;
import dev.sdpa4j.spi.Availability;
import dev.sdpa4j.spi.Capabilities;
import dev.sdpa4j.spi.DeviceInfo;
import java.util.List;

/**
 * A small host provider for the module's tests, named {@code test-reference}: forward and backward computed by
 * {@link ReferenceAttention} in float64 and written to the outputs. Lets the sweep run end to end without depending
 * on the speed or presence of the real math provider. Contiguous fp32 tensors only. Unavailable unless the system
 * property {@value #ENABLE} is true, so that class paths holding the test classes (the GPU bundle) list it as
 * unavailable rather than use it.
 */
public final class ReferenceBackedProvider implements AttentionProvider {
  static final String NAME = "test-reference";
  /** The system property that enables this provider (the module's tests set it); unavailable otherwise. */
  static final String ENABLE = "sdpa4j.benchmarks.testProvider";

  private static final Capabilities CAPS = Capabilities.builder().dtypes(DType.FLOAT32)
      .maskKinds(MaskKind.CAUSAL_TOP_LEFT, MaskKind.CAUSAL_BOTTOM_RIGHT).backward(true).logSumExp(true).build();

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public Availability availability() {
    return Boolean.getBoolean(ENABLE) ? Availability.ok()
        : Availability.unavailable("a test provider of sdpa4j-benchmarks, enabled only by -D" + ENABLE + "=true");
  }

  @Override
  public List<DeviceInfo> devices() {
    return List.of(new DeviceInfo(Device.HOST, "host", "float64 reference, tests only", 0, CAPS));
  }

  @Override
  public List<String> notSupportedReasons(AttentionRequest request) {
    List<String> reasons = new java.util.ArrayList<>(AttentionProvider.super.notSupportedReasons(request));
    if (!request.output().isContiguous() || request.lse().map(t -> !t.isContiguous()).orElse(false)) {
      reasons.add("outputs must be contiguous");
    }
    return reasons;
  }

  @Override
  public void forward(AttentionRequest request) {
    ReferenceAttention.Forward f = ReferenceAttention.forward(request, DType.FLOAT64);
    write(request.output(), f.output());
    request.lse().ifPresent(lse -> write(lse, f.lse()));
  }

  @Override
  public void backward(BackwardRequest request) {
    ReferenceAttention.Gradients g = ReferenceAttention.backward(request, DType.FLOAT64);
    write(request.gradQuery(), g.query());
    write(request.gradKey(), g.key());
    write(request.gradValue(), g.value());
  }

  private static void write(Tensor t, double[] values) {
    var seg = t.hostSegment();
    for (int i = 0; i < values.length; i++) {
      t.dtype().write(seg, (long) i * t.dtype().byteSize(), values[i]);
    }
  }
}
