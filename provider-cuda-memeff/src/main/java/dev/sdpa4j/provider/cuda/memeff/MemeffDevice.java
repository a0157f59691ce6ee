package dev.sdpa4j.provider.cuda.memeff;

import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.DType;
import dev.sdpa4j.Platform;
import dev.sdpa4j.Storage;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.cuda.CudaContext;
import dev.sdpa4j.cuda.CudaStream;
import dev.sdpa4j.cuda.DeviceMemory;
import dev.sdpa4j.cuda.DeviceScratch;
import dev.sdpa4j.cuda.Dim3;
import dev.sdpa4j.cuda.HostStaging;
import dev.sdpa4j.cuda.KernelArgs;
import dev.sdpa4j.cuda.KernelModule;
import dev.sdpa4j.cuda.LazyKernelModule;
import dev.sdpa4j.cuda.KernelSource;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The provider's state on one device (its primary context and the loaded kernels) and the forward pass there.
 * Thread-safe: calls share the module and run on the caller's stream or the calling thread's per-thread stream.
 */
final class MemeffDevice {
  private static final Logger LOG = LoggerFactory.getLogger(MemeffDevice.class);
  static final String SOURCE_FILE = "memeff_fwd.cu";
  static final KernelSource KERNELS = new KernelSource("memeff", "/dev/sdpa4j/cuda/memeff", SOURCE_FILE,
      List.of("-std=c++17"), CudaMemeffProvider.class::getResourceAsStream);

  private final CudaContext context;
  private final LazyKernelModule module;

  MemeffDevice(CudaContext context) {
    this.context = context;
    this.module = new LazyKernelModule(context, KERNELS);
  }

  CudaContext context() {
    return context;
  }

  /** The kernels, loaded on first use (packaged cubin, else NVRTC, else PTX). */
  KernelModule module() {
    return module.get();
  }

  void forward(AttentionRequest r) {
    if (r.device().platform() == Platform.HOST) {
      forwardHost(r);
    } else {
      forwardDevice(r);
    }
  }

  /**
   * Device tensors: the kernel reads and writes the caller's memory in place through its strides (no copy), on the
   * caller's stream; with stream 0, on the calling thread's per-thread stream, waited for before returning.
   */
  private void forwardDevice(AttentionRequest r) {
    long handle = r.options().stream();
    CudaStream stream = handle != 0 ? CudaStream.wrap(context, handle) : CudaStream.perThread(context);
    Tensor mask = r.mask().orElse(null);
    launch(r, view(r.query()), view(r.key()), view(r.value()), view(r.output()),
        r.lse().map(MemeffDevice::view).orElse(null), mask == null ? null : view(mask),
        mask == null ? null : mask.dtype(), stream);
    if (handle == 0) {
      stream.synchronize();
    }
  }

  /**
   * Host tensors: copies q, k, v and the mask (in its own, unbroadcast shape) to the device row-major, runs, copies
   * the output and LSE back, and waits.
   */
  private void forwardHost(AttentionRequest r) {
    CudaStream stream = CudaStream.perThread(context);
    DeviceScratch temps = new DeviceScratch(context, stream);
    try (Arena arena = Arena.ofConfined()) {
      MemeffLaunch.Operand q = upload(r.query(), stream, temps, arena);
      MemeffLaunch.Operand k = upload(r.key(), stream, temps, arena);
      MemeffLaunch.Operand v = upload(r.value(), stream, temps, arena);
      MemeffLaunch.Operand mask = null;
      DType maskType = null;
      if (r.mask().isPresent()) {
        Tensor original = r.options().attnMask().orElseThrow();
        MemeffLaunch.Operand packed = upload(original, stream, temps, arena);
        mask = new MemeffLaunch.Operand(packed.address(), broadcastStrides(original.shape(), r.mask().get().shape()));
        maskType = original.dtype();
      }
      DeviceMemory o = temps.allocate(HostStaging.packedBytes(r.output()));
      Tensor lseT = r.lse().orElse(null);
      DeviceMemory lse = lseT == null ? null : temps.allocate(HostStaging.packedBytes(lseT));
      launch(r, q, k, v, contiguous(o.address(), r.output().shape()),
          lse == null ? null : contiguous(lse.address(), lseT.shape()), mask, maskType, stream);
      MemorySegment oHost = arena.allocate(o.byteSize(), 16);
      o.copyToHost(0, oHost, stream);
      MemorySegment lseHost = lse == null ? null : arena.allocate(lse.byteSize(), 16);
      if (lse != null) {
        lse.copyToHost(0, lseHost, stream);
      }
      stream.synchronize();
      HostStaging.unpack(oHost, r.output());
      if (lse != null) {
        HostStaging.unpack(lseHost, lseT);
      }
    } catch (RuntimeException e) {
      // copies from host memory freed with the arena may still be queued: drain the stream first
      try {
        stream.synchronize();
      } catch (RuntimeException again) {
        e.addSuppressed(again);
      }
      throw e;
    } finally {
      temps.close();
    }
  }

  private void launch(AttentionRequest r, MemeffLaunch.Operand q, MemeffLaunch.Operand k, MemeffLaunch.Operand v,
      MemeffLaunch.Operand o, MemeffLaunch.Operand lse, MemeffLaunch.Operand mask, DType maskType,
      CudaStream stream) {
    MemeffLaunch plan = MemeffLaunch.plan(r, q, k, v, o, lse, mask, maskType,
        context.device().maxSharedMemoryPerBlockOptin());
    LOG.debug("{}: {} blocks x {} threads, {} B shared, flags 0x{} for {}", plan.kernel().name(), plan.blocks(),
        plan.kernel().threads(), plan.sharedBytes(), Integer.toHexString(plan.flags()), r.describe());
    module().function(plan.kernel().name()).launch(Dim3.of(Math.toIntExact(plan.blocks())),
        Dim3.of(plan.kernel().threads()), plan.sharedBytes(), stream,
        KernelArgs.builder().struct(plan.params()).build());
  }

  /**
   * Strides that view a row-major tensor of shape {@code original} (rank 1..4, aligned at the right) as
   * {@code target} = {@code [B, Hq, Lq, Lk]}: 0 where the original has no such dimension or size 1.
   */
  static long[] broadcastStrides(long[] original, long[] target) {
    long[] contiguous = Tensor.contiguousStrides(original);
    long[] out = new long[4];
    for (int d = 0; d < 4; d++) {
      int src = d - (4 - original.length);
      out[d] = src < 0 || original[src] == 1 || target[d] == 1 ? 0 : contiguous[src];
    }
    return out;
  }

  /** A device tensor's address and strides, padded to four (rank-3 LSE gets a zero fourth stride). */
  static MemeffLaunch.Operand view(Tensor t) {
    Storage.DeviceBuffer b = (Storage.DeviceBuffer) t.storage();
    return new MemeffLaunch.Operand(b.handle() + b.byteOffset(), padded(t.strides()));
  }

  private static MemeffLaunch.Operand contiguous(long address, long[] shape) {
    return new MemeffLaunch.Operand(address, padded(Tensor.contiguousStrides(shape)));
  }

  private static long[] padded(long[] strides) {
    long[] s = new long[4];
    System.arraycopy(strides, 0, s, 0, strides.length);
    return s;
  }

  private MemeffLaunch.Operand upload(Tensor t, CudaStream stream, DeviceScratch temps, Arena arena) {
    MemorySegment packed = HostStaging.pack(t, arena);
    DeviceMemory m = temps.allocate(packed.byteSize());
    m.copyFromHost(packed, 0, stream);
    return contiguous(m.address(), t.shape());
  }


}
