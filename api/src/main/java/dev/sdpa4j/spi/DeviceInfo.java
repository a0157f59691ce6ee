package dev.sdpa4j.spi;

import dev.sdpa4j.Device;
import java.util.Objects;

/**
 * A device a provider runs on, and what the provider supports there.
 *
 * @param device       the device; {@link Device#HOST} for CPU providers
 * @param name         the device's name, e.g. "NVIDIA H100 80GB HBM3"
 * @param description  facts worth printing, e.g. "compute capability 9.0, driver 13.0"; may be empty
 * @param memoryBytes  device memory in bytes; 0 when not meaningful
 * @param capabilities what the provider supports on this device
 */
public record DeviceInfo(Device device, String name, String description, long memoryBytes, Capabilities capabilities) {
  public DeviceInfo {
    Objects.requireNonNull(device, "device");
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(description, "description");
    Objects.requireNonNull(capabilities, "capabilities");
  }
}
