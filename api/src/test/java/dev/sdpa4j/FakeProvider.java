package dev.sdpa4j;

import dev.sdpa4j.spi.AttentionProvider;
import dev.sdpa4j.spi.Availability;
import dev.sdpa4j.spi.Capabilities;
import dev.sdpa4j.spi.DeviceInfo;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/** A provider for dispatcher tests: declares capabilities, counts calls, fills the output with its marker value. */
class FakeProvider implements AttentionProvider {
  final String name;
  final int priority;
  final Capabilities capabilities;
  final Availability availability;
  final double marker;
  final AtomicInteger forwardCalls = new AtomicInteger();

  FakeProvider(String name, int priority, Capabilities capabilities) {
    this(name, priority, capabilities, Availability.ok(), priority);
  }

  FakeProvider(String name, int priority, Capabilities capabilities, Availability availability, double marker) {
    this.name = name;
    this.priority = priority;
    this.capabilities = capabilities;
    this.availability = availability;
    this.marker = marker;
  }

  static Capabilities everything() {
    return Capabilities.builder()
        .dtypes(DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16)
        .headDims(1, 256, 1)
        .valueDimMayDiffer(256)
        .maskKinds(MaskKind.values())
        .dropout(true).backward(true).groupedQuery(true).customScale(true).logSumExp(true)
        .build();
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public int priority() {
    return priority;
  }

  @Override
  public Availability availability() {
    return availability;
  }

  @Override
  public List<DeviceInfo> devices() {
    return availability.available() ? List.of(new DeviceInfo(Device.HOST, "test host", "", 0, capabilities)) : List.of();
  }

  @Override
  public void forward(AttentionRequest request) {
    forwardCalls.incrementAndGet();
    Tensor out = request.output();
    for (long b = 0; b < out.size(0); b++) {
      for (long h = 0; h < out.size(1); h++) {
        for (long i = 0; i < out.size(2); i++) {
          for (long e = 0; e < out.size(3); e++) {
            out.set(marker, b, h, i, e);
          }
        }
      }
    }
  }
}
