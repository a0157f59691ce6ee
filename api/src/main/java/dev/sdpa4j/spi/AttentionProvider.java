package dev.sdpa4j.spi;

import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.Platform;
import java.util.List;
import java.util.Optional;

/**
 * A hardware provider of scaled dot-product attention, found through {@link java.util.ServiceLoader} (register it
 * with {@code @AutoService(AttentionProvider.class)} and a {@code provides} clause in {@code module-info.java}).
 *
 * <p>Contract:
 * <ul>
 *   <li>The constructor is cheap and never throws for a missing driver or device: it reports that through
 *       {@link #availability()}.</li>
 *   <li>{@link #notSupportedReasons} is the only place a request is refused: every request it accepts runs without
 *       throwing, except for device failures ({@link dev.sdpa4j.ProviderException}).</li>
 *   <li>{@link #forward} and {@link #backward} receive validated requests, write every element of their outputs and
 *       nothing else, and are safe to call from many threads at once.</li>
 *   <li>Semantics are those of {@link dev.sdpa4j.Sdpa#scaledDotProductAttention}: a row with every key masked gives
 *       zeros and LSE {@code -inf}; dropout follows {@link dev.sdpa4j.Dropout} exactly.</li>
 * </ul>
 */
public interface AttentionProvider {

  /** A short unique name: {@code math}, {@code cuda-flash}; used in allow-lists and messages. */
  String name();

  /** Rank among providers that accept a request: higher wins. Ties keep discovery order. */
  default int priority() {
    return 0;
  }

  /** Whether this provider can run here, and if not why. */
  Availability availability();

  /** The devices this provider runs on, each with its capabilities; empty when unavailable. */
  List<DeviceInfo> devices();

  /**
   * The device and capabilities that would serve {@code request}: the device holding its tensors, or for host
   * tensors the first device whose capabilities accept host memory.
   */
  default Optional<DeviceInfo> deviceFor(AttentionRequest request) {
    for (DeviceInfo d : devices()) {
      if (request.device().platform() == Platform.HOST
          ? d.capabilities().memory().contains(Platform.HOST)
          : d.device().equals(request.device())) {
        return Optional.of(d);
      }
    }
    return Optional.empty();
  }

  /**
   * Every reason this provider refuses {@code request}, in words a user can act on; empty when it accepts. The
   * default checks availability, the device, and the device's {@link Capabilities}; override to add reasons.
   */
  default List<String> notSupportedReasons(AttentionRequest request) {
    Availability a = availability();
    if (!a.available()) {
      return List.of("provider unavailable: " + a.reason());
    }
    return deviceFor(request)
        .map(d -> d.capabilities().reasonsAgainst(request))
        .orElseGet(() -> List.of("no device of this provider holds tensors in " + request.device() + " memory"));
  }

  /** Runs the forward pass: writes the output, and the LSE when the request has one. */
  void forward(AttentionRequest request);

  /** Runs the backward pass: writes gradQuery, gradKey and gradValue. */
  default void backward(BackwardRequest request) {
    throw new UnsupportedOperationException(name() + " does not implement backward");
  }
}
