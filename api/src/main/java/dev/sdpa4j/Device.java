package dev.sdpa4j;

import java.util.Objects;

/**
 * A memory space: the host, or one device of a platform. For CUDA the index is the CUDA device ordinal; for
 * OpenCL it is the device's position in the flattened list of all platforms' devices, as {@code sdpa4j info}
 * prints it.
 *
 * @param platform the platform
 * @param index    the device index within the platform; 0 for the host
 */
public record Device(Platform platform, int index) {
  /** The host. */
  public static final Device HOST = new Device(Platform.HOST, 0);

  public Device {
    Objects.requireNonNull(platform, "platform");
    if (index < 0) {
      throw new IllegalArgumentException("device index must be >= 0, got " + index);
    }
    if (platform == Platform.HOST && index != 0) {
      throw new IllegalArgumentException("the host device has index 0, got " + index);
    }
  }

  /** CUDA device {@code index}. */
  public static Device cuda(int index) {
    return new Device(Platform.CUDA, index);
  }

  /** OpenCL device {@code index}. */
  public static Device opencl(int index) {
    return new Device(Platform.OPENCL, index);
  }

  @Override
  public String toString() {
    return platform == Platform.HOST ? "host" : platform.name().toLowerCase(java.util.Locale.ROOT) + ":" + index;
  }
}
