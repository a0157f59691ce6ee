package dev.sdpa4j.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdpa4j.spi.Availability;
import dev.sdpa4j.spi.ComputeCapability;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

class CudaDriverTest {

  private static CudaDevice device(int major, int minor) {
    return new CudaDevice(0, "test", new ComputeCapability(major, minor), 1L << 30, 10, 100_000, 1_000_000_000_000L,
        40L << 20, 5120);
  }

  @Test
  void probeNeverThrowsAndExplainsUnavailability() {
    Availability a = CudaDriver.availability();
    if (a.available()) {
      assertThat(CudaDriver.devices()).isNotEmpty();
      assertThat(CudaDriver.driverVersion()).isPositive();
    } else {
      assertThat(a.reason()).isNotBlank();
      assertThat(CudaDriver.devices()).isEmpty();
    }
  }

  @Test
  void missingDriverLibraryIsNamed() {
    boolean driverPresent = List.of("/usr/lib/x86_64-linux-gnu/libcuda.so.1", "/usr/lib64/libcuda.so.1",
        "/usr/local/nvidia/lib64/libcuda.so.1", "/usr/lib/libcuda.so.1").stream().anyMatch(p -> Files.exists(Path.of(p)))
        || System.getenv().getOrDefault("LD_LIBRARY_PATH", "").contains("nvidia");
    org.junit.jupiter.api.Assumptions.assumeFalse(driverPresent || CudaDriver.availability().available(),
        "a CUDA driver is installed here");
    assertThat(CudaDriver.availability().reason()).isEqualTo("no CUDA driver: libcuda.so.1 not found");
  }

  @Test
  void computeCapabilityBelowMinimumIsTheReason() {
    ComputeCapability min = new ComputeCapability(8, 0);
    assertThat(CudaDriver.availability(Availability.ok(), List.of(device(7, 5)), min))
        .isEqualTo(Availability.unavailable("compute capability 7.5 < 8.0"));
    assertThat(CudaDriver.availability(Availability.ok(), List.of(device(7, 5), device(9, 0)), min).available())
        .isTrue();
    assertThat(CudaDriver.availability(Availability.ok(), List.of(), min).reason()).isEqualTo("no CUDA device");
    Availability none = Availability.unavailable("no CUDA driver: libcuda.so.1 not found");
    assertThat(CudaDriver.availability(none, List.of(device(9, 0)), min)).isEqualTo(none);
  }

  @Test
  void unknownDeviceIsRefusedWithTheCount() {
    assertThatThrownBy(() -> CudaDriver.device(1000)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("no CUDA device 1000");
  }

  @Test
  void architectureNames() {
    assertThat(KernelModule.cubinNames(new ComputeCapability(9, 0))).containsExactly("sm_90a.cubin", "sm_90.cubin");
    assertThat(KernelModule.cubinNames(new ComputeCapability(8, 6))).containsExactly("sm_86.cubin");
    assertThat(KernelModule.nvrtcArch(new ComputeCapability(9, 0))).isEqualTo("sm_90a");
    assertThat(KernelModule.nvrtcArch(new ComputeCapability(8, 9))).isEqualTo("sm_89");
  }
}
