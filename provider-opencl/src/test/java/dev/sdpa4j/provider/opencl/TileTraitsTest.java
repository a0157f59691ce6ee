package dev.sdpa4j.provider.opencl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.jocl.CL;
import org.junit.jupiter.api.Test;

class TileTraitsTest {
  /** A device as NVIDIA's OpenCL reports an H100: 48 KiB local memory, 1024 work-items, no cl_khr_fp16. */
  static ClDevice nvidiaLike() {
    return new ClDevice(0, null, null, "NVIDIA CUDA", "OpenCL 3.0 CUDA 13.0.0", "NVIDIA H100 80GB HBM3", "NVIDIA",
        "580.00", "OpenCL 3.0 CUDA", CL.CL_DEVICE_TYPE_GPU, 132, 1024, 48 * 1024, 80L << 30, 20L << 30, false);
  }

  static ClDevice tinyGpu() {
    return new ClDevice(0, null, null, "small", "OpenCL 1.2", "small GPU", "x", "1", "OpenCL 1.2",
        CL.CL_DEVICE_TYPE_GPU, 4, 256, 16 * 1024, 1L << 30, 1L << 28, true);
  }

  @Test
  void gpuTilesFitNvidiaForEveryHeadDim() {
    for (int dmax : new int[] {64, 128, 256}) {
      assertThat(TileTraits.forDevice(nvidiaLike(), dmax)).contains(TileTraits.GPU);
      assertThat(TileTraits.GPU.localBytes(dmax)).isLessThanOrEqualTo(48 * 1024);
    }
    assertThat(TileTraits.GPU.tileM()).isEqualTo(64);
    assertThat(TileTraits.GPU.tileN()).isEqualTo(64);
    assertThat(TileTraits.GPU.workGroupSize()).isEqualTo(256);
  }

  @Test
  void smallDevicesGetSmallerTilesOrNone() {
    TileTraits t = TileTraits.forDevice(tinyGpu(), 64).orElseThrow();
    assertThat(t.workGroupSize()).isLessThanOrEqualTo(256);
    assertThat(t.localBytes(64)).isLessThanOrEqualTo(16 * 1024);
    assertThat(TileTraits.GPU.smaller(nvidiaLike(), 128)).get()
        .satisfies(s -> assertThat(s.workGroupSize()).isLessThan(256));
    assertThat(OpenClProvider.capabilities(tinyGpu())).get()
        .satisfies(c -> assertThat(c.maxHeadDim()).isLessThanOrEqualTo(256));
  }

  @Test
  void gpusGetTightHeadDimBoundsAndCpusOne() {
    assertThat(KernelProgram.headDimBucket(nvidiaLike(), 8)).isEqualTo(64);
    assertThat(KernelProgram.headDimBucket(nvidiaLike(), 80)).isEqualTo(128);
    assertThat(KernelProgram.headDimBucket(nvidiaLike(), 129)).isEqualTo(256);
    ClDevice cpu = new ClDevice(0, null, null, "PoCL", "OpenCL 3.0", "cpu", "x", "1", "OpenCL 3.0",
        CL.CL_DEVICE_TYPE_CPU, 2, 4096, 2 << 20, 4L << 30, 1L << 30, false);
    assertThat(KernelProgram.headDimBucket(cpu, 8)).isEqualTo(256);
    assertThat(TileTraits.forDevice(cpu, 256)).contains(TileTraits.CPU);
  }

  @Test
  void parsesTheOverrideAndRejectsBadTiles() {
    assertThat(TileTraits.parse("4, 8, 16, 8, 16, 16")).isEqualTo(new TileTraits(4, 8, 16, 8, 16, 16));
    assertThat(TileTraits.GPU.buildOptions()).isEqualTo("-DTM=4 -DTN=4 -DNTY=16 -DNTX=16 -DBK=16 -DBKV=16");
    assertThatThrownBy(() -> TileTraits.parse("4,4,16")).hasMessageContaining(TileTraits.PROPERTY);
    assertThatThrownBy(() -> new TileTraits(3, 4, 8, 8, 16, 16)).hasMessageContaining("multiples of 4");
    assertThatThrownBy(() -> new TileTraits(4, 4, 8, 8, 16, 24)).hasMessageContaining("multiple of 4 and divide");
  }
}
