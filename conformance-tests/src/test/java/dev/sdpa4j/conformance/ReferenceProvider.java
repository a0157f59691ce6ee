package dev.sdpa4j.conformance;

import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.DType;
import dev.sdpa4j.Device;
import dev.sdpa4j.DropoutResolution;
import dev.sdpa4j.MaskKind;
import dev.sdpa4j.Platform;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.provider.math.ReferenceAttention;
import dev.sdpa4j.spi.AttentionProvider;
import dev.sdpa4j.spi.Availability;
import dev.sdpa4j.spi.Capabilities;
import dev.sdpa4j.spi.DeviceInfo;
import dev.sdpa4j.spi.Determinism;
import java.util.List;

/**
 * A provider that writes the float64 reference's results, rounded to the output type: correct by construction, so
 * the kit must pass it. Subclasses break one thing each ({@link BrokenProviders}) and the kit must fail them.
 */
class ReferenceProvider implements AttentionProvider {
  /** Every feature, fp32/fp16/bf16, head dims up to 128 (so the kit's quick grid stays small). */
  static final Capabilities EVERYTHING = Capabilities.builder()
      .dtypes(DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16)
      .headDims(1, 128, 1)
      .valueDimMayDiffer(128)
      .maskKinds(MaskKind.values())
      .dropoutResolutions(DropoutResolution.values())
      .backward(true)
      .groupedQuery(true)
      .customScale(true)
      .logSumExp(true)
      .unitHeadDimStride(false)
      .memory(Platform.HOST)
      .determinism(Determinism.ALWAYS)
      .build();

  private final String name;
  private final Capabilities capabilities;

  ReferenceProvider(String name, Capabilities capabilities) {
    this.name = name;
    this.capabilities = capabilities;
  }

  ReferenceProvider() {
    this("reference", EVERYTHING);
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public Availability availability() {
    return Availability.ok();
  }

  @Override
  public List<DeviceInfo> devices() {
    return List.of(new DeviceInfo(Device.HOST, "host", "", 0, capabilities));
  }

  /** The request whose reference results are written; broken providers change it. */
  AttentionRequest computed(AttentionRequest r) {
    return r;
  }

  @Override
  public void forward(AttentionRequest r) {
    ReferenceAttention.Forward f = ReferenceAttention.forward(computed(r), DType.FLOAT64);
    write(r.output(), f.output());
    r.lse().ifPresent(l -> write(l, f.lse()));
  }

  @Override
  public void backward(BackwardRequest r) {
    ReferenceAttention.Gradients g = ReferenceAttention.backward(r, DType.FLOAT64);
    write(r.gradQuery(), g.query());
    write(r.gradKey(), g.key());
    write(r.gradValue(), g.value());
  }

  /** Writes row-major {@code values} into {@code t} (rank 3 or 4), element by element. */
  void write(Tensor t, double[] values) {
    long[] s = t.shape();
    long[] idx = new long[s.length];
    for (int n = 0; n < values.length; n++) {
      writeElement(t, idx, values[n]);
      for (int d = s.length - 1; d >= 0; d--) {
        if (++idx[d] < s[d]) {
          break;
        }
        idx[d] = 0;
      }
    }
  }

  /** Writes one element; broken providers override it. */
  void writeElement(Tensor t, long[] index, double value) {
    t.set(value, index);
  }
}
