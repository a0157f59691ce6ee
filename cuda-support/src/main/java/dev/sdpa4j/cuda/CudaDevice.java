package dev.sdpa4j.cuda;

import dev.sdpa4j.Device;
import dev.sdpa4j.spi.ComputeCapability;
import java.util.Objects;

/**
 * Facts about one CUDA device, read once when the driver is probed.
 *
 * @param ordinal                      the CUDA device ordinal
 * @param name                         e.g. "NVIDIA H100 80GB HBM3"
 * @param computeCapability            e.g. 9.0
 * @param totalMemoryBytes             device memory in bytes
 * @param multiprocessorCount          number of SMs
 * @param maxSharedMemoryPerBlockOptin the largest dynamic shared memory a block may opt in to, in bytes
 * @param memoryBandwidth              peak DRAM bandwidth in bytes per second: twice the memory clock times the bus
 *                                     width (0 where the driver reports neither)
 * @param l2CacheBytes                 size of the L2 cache in bytes
 * @param memoryBusBits                width of the memory bus in bits (1024 per HBM stack; 0 where not reported)
 */
public record CudaDevice(int ordinal, String name, ComputeCapability computeCapability, long totalMemoryBytes,
                         int multiprocessorCount, int maxSharedMemoryPerBlockOptin, long memoryBandwidth,
                         long l2CacheBytes, int memoryBusBits) {
  public CudaDevice {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(computeCapability, "computeCapability");
  }

  /** The api's name of this device: {@code Device.cuda(ordinal)}. */
  public Device device() {
    return Device.cuda(ordinal);
  }

  /** One line for {@code sdpa4j info}: compute capability, SMs, memory and its peak bandwidth. */
  public String describe() {
    return "compute capability " + computeCapability + ", " + multiprocessorCount + " SMs, "
        + (totalMemoryBytes >> 20) + " MiB at " + memoryBandwidth / 1_000_000_000L + " GB/s, driver "
        + CudaDriver.driverVersionString();
  }
}
