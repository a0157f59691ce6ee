package dev.sdpa4j.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.bytedeco.cuda.global.cudart.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL;
import static org.bytedeco.cuda.global.cudart.cuGraphDestroy;
import static org.bytedeco.cuda.global.cudart.cuStreamBeginCapture;
import static org.bytedeco.cuda.global.cudart.cuStreamEndCapture;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sdpa4j.DType;
import dev.sdpa4j.Storage;
import dev.sdpa4j.Tensor;
import java.io.ByteArrayInputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.bytedeco.cuda.cudart.CUgraph_st;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Runs only where a CUDA device is present (skipped by assumption elsewhere). */
class CudaGpuTest {
  private static final String SAXPY = """
      extern "C" __global__ void saxpy(float a, const float* x, float* y, int n) {
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < n) y[i] = a * x[i] + y[i];
      }
      """;

  // each block of a cluster publishes its rank in shared memory, then reads the next block's through the cluster
  private static final String CLUSTER_RING = """
      extern "C" __global__ void cluster_ring(int* out) {
        __shared__ int mine;
        unsigned rank, size, next;
        asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
        asm volatile("mov.u32 %0, %%cluster_nctarank;" : "=r"(size));
        if (threadIdx.x == 0) mine = 1000 * blockIdx.x + (int)rank;
        asm volatile("barrier.cluster.arrive.release.aligned;\\nbarrier.cluster.wait.acquire.aligned;" ::: "memory");
        if (threadIdx.x == 0) {
          unsigned local = (unsigned)__cvta_generic_to_shared(&mine);
          unsigned remote;
          int v;
          asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(local), "r"((rank + 1) % size));
          asm volatile("ld.shared::cluster.s32 %0, [%1];" : "=r"(v) : "r"(remote) : "memory");
          out[blockIdx.x] = v;
        }
        asm volatile("barrier.cluster.arrive.release.aligned;\\nbarrier.cluster.wait.acquire.aligned;" ::: "memory");
      }
      """;

  @BeforeEach
  void needsGpu() {
    assumeTrue(CudaDriver.availability().available(), () -> "no GPU: " + CudaDriver.availability().reason());
  }

  @Test
  void deviceFactsAreSane() {
    CudaDevice d = CudaDriver.device(0);
    System.out.println("CUDA device 0: " + d.name() + ", " + d.describe());
    assertThat(d.computeCapability().major()).isGreaterThanOrEqualTo(3);
    assertThat(d.totalMemoryBytes()).isPositive();
    assertThat(d.multiprocessorCount()).isPositive();
    // HBM2e / HBM3 / GDDR6 devices: from about 200 GB/s to a few TB/s; L2 of several MiB
    assertThat(d.memoryBandwidth()).isBetween(100_000_000_000L, 20_000_000_000_000L);
    assertThat(d.l2CacheBytes()).isBetween(1L << 20, 1L << 30);
    assertThat(d.memoryBusBits()).isBetween(64, 16_384);
  }

  @Test
  void deviceTensorRoundTripsStridedHostTensors() {
    long seed = System.nanoTime();
    System.out.println("deviceTensorRoundTripsStridedHostTensors seed " + seed);
    Random rnd = new Random(seed);
    try (CudaContext ctx = CudaContext.retainPrimary(0); Arena arena = Arena.ofConfined()) {
      Tensor host = Tensor.blhe(DType.BFLOAT16, new Storage.Host(arena.allocate(2L * 7 * 3 * 16 * 2)), 2, 7, 3, 16);
      for (int b = 0; b < 2; b++) {
        for (int h = 0; h < 3; h++) {
          for (int l = 0; l < 7; l++) {
            for (int e = 0; e < 16; e++) {
              host.set(rnd.nextGaussian(), b, h, l, e);
            }
          }
        }
      }
      Tensor back = Tensor.allocate(arena, DType.BFLOAT16, 2, 3, 7, 16);
      try (DeviceTensor d = DeviceTensor.upload(ctx, host)) {
        assertThat(d.tensor().storage()).isInstanceOf(Storage.DeviceBuffer.class);
        assertThat(d.tensor().device()).isEqualTo(ctx.device().device());
        d.download(back);
      }
      for (int b = 0; b < 2; b++) {
        for (int h = 0; h < 3; h++) {
          for (int l = 0; l < 7; l++) {
            for (int e = 0; e < 16; e++) {
              assertThat(back.get(b, h, l, e)).isEqualTo(host.get(b, h, l, e));
            }
          }
        }
      }
    }
  }

  @Test
  void failedCallsNameTheCallAndTheError() {
    try (CudaContext ctx = CudaContext.retainPrimary(0)) {
      assertThatThrownBy(() -> DeviceMemory.allocate(ctx, 1L << 50))
          .isInstanceOf(CudaException.class)
          .hasMessageContaining("cuMemAlloc")
          .hasMessageContaining("CUDA_ERROR_OUT_OF_MEMORY");
    }
  }

  @Test
  void nvrtcCompilesCachesAndLaunches(@TempDir Path cache) {
    String old = System.getProperty(KernelModule.CACHE_DIR_PROPERTY);
    System.setProperty(KernelModule.CACHE_DIR_PROPERTY, cache.toString());
    try (CudaContext ctx = CudaContext.retainPrimary(0); Arena arena = Arena.ofConfined()) {
      KernelSource src = new KernelSource("saxpy-test", "/test", "saxpy.cu", List.of("-std=c++17"),
          name -> name.equals("/test/saxpy.cu") ? new ByteArrayInputStream(SAXPY.getBytes(StandardCharsets.UTF_8)) : null);
      int n = 1000;
      Tensor x = Tensor.allocate(arena, DType.FLOAT32, n);
      Tensor y = Tensor.allocate(arena, DType.FLOAT32, n);
      for (int i = 0; i < n; i++) {
        x.set(i, i);
        y.set(1, i);
      }
      try (KernelModule m = KernelModule.load(ctx, src); KernelModule again = KernelModule.load(ctx, src);
           DeviceTensor dx = DeviceTensor.upload(ctx, x); DeviceTensor dy = DeviceTensor.upload(ctx, y);
           CudaStream stream = CudaStream.create(ctx);
           CudaEvent start = CudaEvent.create(ctx, true); CudaEvent end = CudaEvent.create(ctx, true)) {
        assertThat(m.origin()).isEqualTo(KernelModule.Origin.NVRTC_COMPILED);
        assertThat(again.origin()).isEqualTo(KernelModule.Origin.NVRTC_CACHED);
        start.record(stream);
        m.function("saxpy").launch(Dim3.of((n + 255) / 256), Dim3.of(256), 0, stream,
            KernelArgs.builder().f32(2f).pointer(dx.memory().address()).pointer(dy.memory().address()).i32(n).build());
        end.record(stream);
        stream.synchronize();
        assertThat(CudaEvent.elapsedMillis(start, end)).isGreaterThanOrEqualTo(0f);
        dy.download(y);
        for (int i = 0; i < n; i++) {
          assertThat(y.get(i)).isEqualTo(2.0 * i + 1);
        }
        assertThatThrownBy(() -> m.function("no_such_kernel")).isInstanceOf(CudaException.class)
            .hasMessageContaining("cuModuleGetFunction(no_such_kernel)");
      }
    } finally {
      if (old == null) {
        System.clearProperty(KernelModule.CACHE_DIR_PROPERTY);
      } else {
        System.setProperty(KernelModule.CACHE_DIR_PROPERTY, old);
      }
    }
  }

  @Test
  void clusterLaunchesShareSharedMemory(@TempDir Path cache) {
    assumeTrue(CudaDriver.device(0).computeCapability().major() >= 9, "thread-block clusters need sm_90");
    String old = System.getProperty(KernelModule.CACHE_DIR_PROPERTY);
    System.setProperty(KernelModule.CACHE_DIR_PROPERTY, cache.toString());
    try (CudaContext ctx = CudaContext.retainPrimary(0); Arena arena = Arena.ofConfined()) {
      KernelSource src = new KernelSource("cluster-test", "/test", "cluster.cu", List.of("-std=c++17"),
          name -> name.equals("/test/cluster.cu")
              ? new ByteArrayInputStream(CLUSTER_RING.getBytes(StandardCharsets.UTF_8)) : null);
      try (KernelModule m = KernelModule.load(ctx, src); CudaStream stream = CudaStream.create(ctx)) {
        for (int size : new int[] {2, 8, 16}) {
          int blocks = 4 * size;
          try (DeviceMemory out = DeviceMemory.allocate(ctx, 4L * blocks)) {
            m.function("cluster_ring").launchCluster(Dim3.of(blocks), Dim3.of(size), Dim3.of(32), 0, stream,
                KernelArgs.builder().pointer(out.address()).build());
            MemorySegment got = arena.allocate(4L * blocks, 16);
            out.copyToHostAndWait(0, got, stream);
            for (int b = 0; b < blocks; b++) {
              int next = b / size * size + (b % size + 1) % size;  // the next block of b's cluster, rank next % size
              assertThat(got.getAtIndex(ValueLayout.JAVA_INT, b)).as("cluster %d block %d", size, b)
                  .isEqualTo(1000 * next + next % size);
            }
          }
        }
        assertThatThrownBy(() -> m.function("cluster_ring").launchCluster(Dim3.of(6), Dim3.of(4), Dim3.of(32), 0,
            stream, KernelArgs.builder().pointer(0).build())).isInstanceOf(CudaException.class)
            .hasMessageContaining("cuLaunchKernelEx(cluster_ring");
      }
    } finally {
      if (old == null) {
        System.clearProperty(KernelModule.CACHE_DIR_PROPERTY);
      } else {
        System.setProperty(KernelModule.CACHE_DIR_PROPERTY, old);
      }
    }
  }

  @Test
  void poolKeepsItsMemoryAcrossSynchronisationsAndReturnsItWhenClosed() {
    try (CudaContext ctx = CudaContext.retainPrimary(0); CudaStream stream = CudaStream.create(ctx);
         Arena arena = Arena.ofConfined()) {
      long before = ctx.memoryInfo()[0];
      long bytes = 32L << 20;
      try (CudaMemoryPool pool = CudaMemoryPool.create(ctx, 256L << 20)) {
        assertThat(pool.releaseThreshold()).isEqualTo(256L << 20);
        for (int i = 0; i < 50; i++) {
          try (DeviceScratch scratch = new DeviceScratch(pool, stream)) {
            DeviceMemory m = scratch.allocate(bytes);
            m.fill(0, bytes, (byte) (i + 1), stream);
            MemorySegment tail = arena.allocate(16);
            m.copyToHost(bytes - 16, tail, stream);
            stream.synchronize();
            assertThat(tail.get(ValueLayout.JAVA_BYTE, 15)).isEqualTo((byte) (i + 1));
          }
          stream.synchronize();
        }
        // the pool still holds the buffer's memory after the last synchronisation (below its release threshold)
        assertThat(ctx.memoryInfo()[0]).isLessThanOrEqualTo(before - bytes);
      }
      assertThat(ctx.memoryInfo()[0]).isGreaterThan(before - bytes);
      assertThatThrownBy(() -> CudaMemoryPool.create(ctx, -1)).isInstanceOf(IllegalArgumentException.class);
    }
  }

  @Test
  void capturingIsTrueOnlyWhileAStreamIsCapturedIntoAGraph() {
    try (CudaContext ctx = CudaContext.retainPrimary(0); CudaStream stream = CudaStream.create(ctx)) {
      assertThat(stream.capturing()).isFalse();
      try (CudaContext.Scope s = ctx.enter()) {
        CudaDriver.check(cuStreamBeginCapture(stream.pointer(), CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
            "cuStreamBeginCapture");
        assertThat(stream.capturing()).isTrue();
        CUgraph_st graph = new CUgraph_st();
        CudaDriver.check(cuStreamEndCapture(stream.pointer(), graph), "cuStreamEndCapture");
        CudaDriver.check(cuGraphDestroy(graph), "cuGraphDestroy");
      }
      assertThat(stream.capturing()).isFalse();
      assertThat(CudaStream.perThread(ctx).capturing()).isFalse();
    }
  }

  @Test
  void allocationsAreFreed() {
    try (CudaContext ctx = CudaContext.retainPrimary(0)) {
      for (int i = 0; i < 3; i++) {
        DeviceMemory.allocate(ctx, 64 << 20).close();
      }
      long before = ctx.memoryInfo()[0];
      for (int i = 0; i < 200; i++) {
        DeviceMemory.allocate(ctx, 64 << 20).close();
      }
      assertThat(ctx.memoryInfo()[0]).isGreaterThanOrEqualTo(before - (64 << 20));
    }
  }
}
