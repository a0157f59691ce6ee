package dev.sdpa4j.conformance;

import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.spi.AttentionProvider;
import dev.sdpa4j.spi.Availability;
import dev.sdpa4j.spi.DeviceInfo;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;

/** The provider under test, counting its forward and backward calls (to prove rejected calls never reach it). */
final class CountingProvider implements AttentionProvider {
  private final AttentionProvider delegate;
  private final AtomicInteger forwardCalls = new AtomicInteger();
  private final AtomicInteger backwardCalls = new AtomicInteger();

  CountingProvider(AttentionProvider delegate) {
    this.delegate = delegate;
  }

  int forwardCalls() {
    return forwardCalls.get();
  }

  int backwardCalls() {
    return backwardCalls.get();
  }

  @Override
  public String name() {
    return delegate.name();
  }

  @Override
  public int priority() {
    return delegate.priority();
  }

  @Override
  public Availability availability() {
    return delegate.availability();
  }

  @Override
  public List<DeviceInfo> devices() {
    return delegate.devices();
  }

  @Override
  public Optional<DeviceInfo> deviceFor(AttentionRequest request) {
    return delegate.deviceFor(request);
  }

  @Override
  public List<String> notSupportedReasons(AttentionRequest request) {
    return delegate.notSupportedReasons(request);
  }

  @Override
  public void forward(AttentionRequest request) {
    forwardCalls.incrementAndGet();
    delegate.forward(request);
  }

  @Override
  public void backward(BackwardRequest request) {
    backwardCalls.incrementAndGet();
    delegate.backward(request);
  }
}
