package dev.sdpa4j.provider.opencl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.jocl.CL;
import org.jocl.cl_program;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BinaryCacheTest {
  @TempDir
  Path dir;

  @Test
  void keysDependOnDeviceDriverSourceAndOptions() {
    ClDevice d = TileTraitsTest.nvidiaLike();
    ClDevice otherDriver = new ClDevice(0, null, null, d.platformName(), d.platformVersion(), d.name(), d.vendor(),
        "581.00", d.deviceVersion(), d.type(), d.computeUnits(), d.maxWorkGroup(), d.localMemBytes(),
        d.globalMemBytes(), d.maxAllocBytes(), d.fp16());
    String k = BinaryCache.key(d, "src", "-DA=1");
    assertThat(k).hasSize(64).isEqualTo(BinaryCache.key(d, "src", "-DA=1"));
    assertThat(Stream.of(BinaryCache.key(otherDriver, "src", "-DA=1"), BinaryCache.key(d, "src2", "-DA=1"),
        BinaryCache.key(d, "src", "-DA=2"))).doesNotContain(k).doesNotHaveDuplicates();
  }

  @Test
  void storesLoadsAndEvicts() {
    BinaryCache cache = new BinaryCache(dir.resolve("nested"));
    assertThat(cache.load("k")).isEmpty();
    cache.store("k", new byte[] {1, 2, 3});
    assertThat(cache.load("k")).hasValueSatisfying(b -> assertThat(b).containsExactly(1, 2, 3));
    cache.store("k", new byte[] {4});
    assertThat(cache.load("k")).hasValueSatisfying(b -> assertThat(b).containsExactly(4));
    cache.evict("k");
    assertThat(cache.load("k")).isEmpty();
  }

  @Test
  void concurrentWritersLeaveOneWholeFile() throws Exception {
    BinaryCache cache = new BinaryCache(dir);
    ExecutorService pool = Executors.newFixedThreadPool(8);
    try {
      List<Future<?>> fs = new ArrayList<>();
      for (int w = 0; w < 16; w++) {
        byte fill = (byte) w;
        fs.add(pool.submit(() -> {
          byte[] data = new byte[256 * 1024];
          Arrays.fill(data, fill);
          for (int i = 0; i < 5; i++) {
            cache.store("same", data);
            byte[] read = cache.load("same").orElseThrow();
            assertThat(read).hasSize(data.length);
            byte first = read[0];
            for (byte b : read) {
              assertThat(b).isEqualTo(first);
            }
          }
        }));
      }
      for (Future<?> f : fs) {
        f.get();
      }
    } finally {
      pool.shutdownNow();
    }
    try (Stream<Path> files = Files.list(dir)) {
      assertThat(files.map(p -> p.getFileName().toString())).containsExactly("same.bin");
    }
  }

  @Test
  void programsAreCachedAndABadCachedBinaryIsRebuilt() throws Exception {
    Fixtures.assumeOpenCl();
    ClDevice device = ClDevice.discover().getFirst();
    ContextRuntime rt = ContextRuntime.create(device, Optional.empty());
    BinaryCache cache = new BinaryCache(dir);
    String source = "__kernel void twice(__global float* x) { x[get_global_id(0)] *= 2.0f; }";
    String key = BinaryCache.key(device, source, "-DX=1");
    cl_program built = KernelProgram.compile(rt.context(), device, source, "-DX=1", Optional.of(cache));
    CL.clReleaseProgram(built);
    Path file = dir.resolve(key + ".bin");
    assertThat(file).exists();
    byte[] good = Files.readAllBytes(file);
    cl_program loaded = KernelProgram.compile(rt.context(), device, source, "-DX=1", Optional.of(cache));
    CL.clReleaseProgram(loaded);
    Files.write(file, new byte[] {0, 1, 2, 3});
    cl_program rebuilt = KernelProgram.compile(rt.context(), device, source, "-DX=1", Optional.of(cache));
    CL.clReleaseProgram(rebuilt);
    assertThat(Files.readAllBytes(file)).hasSize(good.length);
  }

  @Test
  void aFailedBuildCarriesTheBuildLog() {
    Fixtures.assumeOpenCl();
    ClDevice device = ClDevice.discover().getFirst();
    ContextRuntime rt = ContextRuntime.create(device, Optional.empty());
    assertThatThrownBy(() -> KernelProgram.compile(rt.context(), device,
        "__kernel void broken(__global float* x) { x[0] = undeclared_name; }", "", Optional.empty()))
        .isInstanceOf(OpenClException.class)
        .hasMessageContaining("CL_BUILD_PROGRAM_FAILURE")
        .hasMessageContaining("clBuildProgram")
        .hasMessageContaining("build log")
        .hasMessageContaining("undeclared_name");
  }
}
