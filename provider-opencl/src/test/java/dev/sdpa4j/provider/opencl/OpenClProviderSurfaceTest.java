package dev.sdpa4j.provider.opencl;

import static dev.sdpa4j.provider.opencl.Fixtures.PROVIDER;
import static dev.sdpa4j.provider.opencl.Fixtures.random;
import static org.assertj.core.api.Assertions.assertThat;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.DType;
import dev.sdpa4j.Device;
import dev.sdpa4j.Platform;
import dev.sdpa4j.Storage;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.provider.math.ReferenceAttention;
import dev.sdpa4j.spi.AttentionProvider;
import dev.sdpa4j.spi.DeviceInfo;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.ServiceLoader;
import org.jocl.CL;
import org.jocl.Pointer;
import org.jocl.cl_command_queue;
import org.jocl.cl_mem;
import org.junit.jupiter.api.Test;

/** Discovery, ranking, reasons, and the no-copy path through a caller's buffers and queue. */
class OpenClProviderSurfaceTest {
  private final long seed = System.nanoTime();
  private final Random rnd = new Random(seed);

  @Test
  void isFoundByServiceLoaderAndRanksByDeviceType() {
    assertThat(ServiceLoader.load(AttentionProvider.class).stream().map(ServiceLoader.Provider::type))
        .contains(OpenClProvider.class);
    Fixtures.assumeOpenCl();
    boolean gpu = ClDevice.discover().stream().anyMatch(ClDevice::isGpu);
    assertThat(PROVIDER.priority()).isEqualTo(gpu ? 100 : -10);
    List<DeviceInfo> devices = PROVIDER.devices();
    assertThat(devices).isNotEmpty().allSatisfy(d -> {
      assertThat(d.device().platform()).isEqualTo(Platform.OPENCL);
      assertThat(d.capabilities().memory()).contains(Platform.HOST, Platform.OPENCL);
      assertThat(d.capabilities().maxHeadDim()).isEqualTo(256);
    });
  }

  @Test
  void refusesWithReasonsAUserCanActOn() {
    Fixtures.assumeOpenCl();
    try (Arena arena = Arena.ofConfined()) {
      AttentionRequest big = AttentionRequest.create(Tensor.allocate(arena, DType.FLOAT32, 1, 1, 4, 320),
          Tensor.allocate(arena, DType.FLOAT32, 1, 1, 4, 320), Tensor.allocate(arena, DType.FLOAT32, 1, 1, 4, 320),
          Tensor.allocate(arena, DType.FLOAT32, 1, 1, 4, 320), null, AttentionOptions.DEFAULTS);
      assertThat(PROVIDER.notSupportedReasons(big)).contains("head dim 320 > 256");
      Tensor odd = Tensor.contiguous(DType.FLOAT32, new Storage.DeviceBuffer(Device.opencl(0), 1, 2, 1 << 20),
          1, 1, 4, 8);
      Tensor ok = Tensor.contiguous(DType.FLOAT32, new Storage.DeviceBuffer(Device.opencl(0), 2, 0, 1 << 20),
          1, 1, 4, 8);
      Tensor out = Tensor.contiguous(DType.FLOAT32, new Storage.DeviceBuffer(Device.opencl(0), 3, 0, 1 << 20),
          1, 1, 4, 8);
      AttentionRequest misaligned = AttentionRequest.create(odd, ok, ok, out, null, AttentionOptions.DEFAULTS);
      assertThat(PROVIDER.notSupportedReasons(misaligned))
          .containsExactly("query buffer byte offset 2 is not a multiple of its element size 4");
      Tensor elsewhere = Tensor.contiguous(DType.FLOAT32, new Storage.DeviceBuffer(Device.opencl(99), 2, 0, 1 << 20),
          1, 1, 4, 8);
      Tensor elsewhereOut = Tensor.contiguous(DType.FLOAT32,
          new Storage.DeviceBuffer(Device.opencl(99), 3, 0, 1 << 20), 1, 1, 4, 8);
      assertThat(PROVIDER.notSupportedReasons(AttentionRequest.create(elsewhere, elsewhere, elsewhere, elsewhereOut,
          null, AttentionOptions.DEFAULTS))).singleElement().asString().contains("opencl:99");
    }
  }

  @Test
  void hostRequestsRankAmongProviders() {
    Fixtures.assumeOpenCl();
    try (Arena arena = Arena.ofConfined()) {
      AttentionRequest r = AttentionRequest.create(random(arena, rnd, DType.FLOAT16, 1, 2, 8, 16),
          random(arena, rnd, DType.FLOAT16, 1, 2, 8, 16), random(arena, rnd, DType.FLOAT16, 1, 2, 8, 16),
          Tensor.allocate(arena, DType.FLOAT16, 1, 2, 8, 16), null, AttentionOptions.DEFAULTS);
      assertThat(PROVIDER.notSupportedReasons(r)).isEmpty();
      assertThat(PROVIDER.deviceFor(r)).isPresent();
    }
  }

  /**
   * Tensors in a caller's cl_mem buffers (with byte offsets) run with no copy: on the caller's queue
   * ({@code stream} = its handle) and on the provider's own queue in the buffers' context ({@code stream} = 0).
   */
  @Test
  void callersBuffersRunOnTheCallersQueueWithNoCopy() {
    Fixtures.assumeOpenCl();
    ClDevice device = ClDevice.discover().getFirst();
    ContextRuntime caller = ContextRuntime.create(device, Optional.empty());
    cl_command_queue queue = caller.borrowQueue();
    System.out.println("seed " + seed);
    int b = 1;
    int h = 2;
    int l = 40;
    int e = 32;
    DType dt = DType.FLOAT32;
    try (Arena arena = Arena.ofConfined()) {
      Tensor hq = random(arena, rnd, dt, b, h, l, e);
      Tensor hk = random(arena, rnd, dt, b, h, l, e);
      Tensor hv = random(arena, rnd, dt, b, h, l, e);
      long bytes = hq.elementCount() * dt.byteSize();
      long offset = 256;
      long total = offset + 4 * bytes + 4L * b * h * l;
      cl_mem mem = ClStatus.create("clCreateBuffer", err -> CL.clCreateBuffer(caller.context(), CL.CL_MEM_READ_WRITE,
          total, null, err));
      try {
        write(queue, mem, offset, hq.hostSegment());
        write(queue, mem, offset + bytes, hk.hostSegment());
        write(queue, mem, offset + 2 * bytes, hv.hostSegment());
        Device d = Device.opencl(device.index());
        long handle = mem.getNativePointer();
        Tensor q = Tensor.contiguous(dt, new Storage.DeviceBuffer(d, handle, offset, bytes), b, h, l, e);
        Tensor k = Tensor.contiguous(dt, new Storage.DeviceBuffer(d, handle, offset + bytes, bytes), b, h, l, e);
        Tensor v = Tensor.contiguous(dt, new Storage.DeviceBuffer(d, handle, offset + 2 * bytes, bytes), b, h, l, e);
        Tensor o = Tensor.contiguous(dt, new Storage.DeviceBuffer(d, handle, offset + 3 * bytes, bytes), b, h, l, e);
        Tensor lse = Tensor.contiguous(DType.FLOAT32,
            new Storage.DeviceBuffer(d, handle, offset + 4 * bytes, 4L * b * h * l), b, h, l);
        AttentionRequest hostRequest = AttentionRequest.create(hq, hk, hv, Tensor.allocate(arena, dt, b, h, l, e),
            Tensor.allocate(arena, DType.FLOAT32, b, h, l), AttentionOptions.builder().isCausal(true).build());
        ReferenceAttention.Forward ref = ReferenceAttention.forward(hostRequest, DType.FLOAT64);
        for (long stream : new long[] {queue.getNativePointer(), 0}) {
          AttentionRequest r = AttentionRequest.create(q, k, v, o, lse,
              AttentionOptions.builder().isCausal(true).stream(stream).build());
          assertThat(PROVIDER.notSupportedReasons(r)).isEmpty();
          PROVIDER.forward(r);
          Tensor outHost = Tensor.allocate(arena, dt, b, h, l, e);
          Tensor lseHost = Tensor.allocate(arena, DType.FLOAT32, b, h, l);
          read(queue, mem, offset + 3 * bytes, outHost.hostSegment());
          read(queue, mem, offset + 4 * bytes, lseHost.hostSegment());
          Fixtures.assertClose("output (stream " + stream + ")", outHost, ref.output(), Fixtures.tolerance(dt));
          Fixtures.assertClose("lse (stream " + stream + ")", lseHost, ref.lse(), 2e-5);
        }
      } finally {
        CL.clReleaseMemObject(mem);
        caller.releaseQueue(queue);
      }
    }
  }

  private static void write(cl_command_queue queue, cl_mem mem, long offset, MemorySegment host) {
    ClStatus.call("clEnqueueWriteBuffer", () -> CL.clEnqueueWriteBuffer(queue, mem, true, offset, host.byteSize(),
        Pointer.toBuffer(host.asByteBuffer()), 0, null, null));
  }

  private static void read(cl_command_queue queue, cl_mem mem, long offset, MemorySegment host) {
    ClStatus.call("clEnqueueReadBuffer", () -> CL.clEnqueueReadBuffer(queue, mem, true, offset, host.byteSize(),
        Pointer.toBuffer(host.asByteBuffer()), 0, null, null));
  }
}
