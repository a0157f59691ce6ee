package dev.sdpa4j.provider.cuda.memeff;

import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.BackwardRequest;
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
 * The provider's state on one device (its primary context and the loaded kernels) and the forward and backward
 * passes there.
 * Thread-safe: calls share the module and run on the caller's stream or the calling thread's per-thread stream.
 */
final class MemeffDevice {
  private static final Logger LOG = LoggerFactory.getLogger(MemeffDevice.class);
  static final String SOURCE_FILE = "memeff_fwd.cu";
  static final KernelSource KERNELS = new KernelSource("memeff", "/dev/sdpa4j/cuda/memeff", SOURCE_FILE,
      List.of("-std=c++17"), CudaMemeffProvider.class::getResourceAsStream);
  static final String BACKWARD_SOURCE_FILE = "memeff_bwd.cu";
  static final KernelSource BACKWARD_KERNELS = new KernelSource("memeff-bwd", "/dev/sdpa4j/cuda/memeff_bwd",
      BACKWARD_SOURCE_FILE, List.of("-std=c++17"), CudaMemeffProvider.class::getResourceAsStream);

  private final CudaContext context;
  private final LazyKernelModule module;
  private final LazyKernelModule backwardModule;

  MemeffDevice(CudaContext context) {
    this.context = context;
    this.module = new LazyKernelModule(context, KERNELS);
    this.backwardModule = new LazyKernelModule(context, BACKWARD_KERNELS);
  }

  CudaContext context() {
    return context;
  }

  /** The kernels, loaded on first use (packaged cubin, else NVRTC, else PTX). */
  KernelModule module() {
    return module.get();
  }

  /** The backward kernels, loaded on first use. */
  KernelModule backwardModule() {
    return backwardModule.get();
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
    CudaStream stream = CudaStream.forCall(context, handle);
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

  void backward(BackwardRequest r) {
    if (r.forward().device().platform() == Platform.HOST) {
      backwardHost(r);
    } else {
      backwardDevice(r);
    }
  }

  /**
   * Device tensors: the kernels read and write the caller's memory in place through its strides, on the forward
   * request's stream (with stream 0 the calling thread's per-thread stream, waited for). The only allocations are the
   * fp32 row statistics ({@code 8 * B * Hq * Lq} bytes) and, on the atomic path, the fp32 dQ accumulator
   * ({@code 4 * B * Hq * Lq * E} bytes), stream-ordered and freed in stream order.
   */
  private void backwardDevice(BackwardRequest r) {
    AttentionRequest f = r.forward();
    long handle = f.options().stream();
    CudaStream stream = CudaStream.forCall(context, handle);
    Tensor mask = f.mask().orElse(null);
    try (DeviceScratch temps = new DeviceScratch(context, stream)) {
      launchBackward(r, view(f.query()), view(f.key()), view(f.value()), view(f.output()), view(r.gradOutput()),
          view(f.lse().orElseThrow()), mask == null ? null : view(mask), mask == null ? null : mask.dtype(),
          view(r.gradQuery()), view(r.gradKey()), view(r.gradValue()), temps, stream);
    }
    if (handle == 0) {
      stream.synchronize();
    }
  }

  /**
   * Host tensors: copies the inputs, the forward's output and LSE, dOut and the mask (in its own shape) to the
   * device row-major, runs, copies dQ, dK and dV back, and waits.
   */
  private void backwardHost(BackwardRequest r) {
    AttentionRequest f = r.forward();
    CudaStream stream = CudaStream.perThread(context);
    DeviceScratch temps = new DeviceScratch(context, stream);
    try (Arena arena = Arena.ofConfined()) {
      MemeffLaunch.Operand q = upload(f.query(), stream, temps, arena);
      MemeffLaunch.Operand k = upload(f.key(), stream, temps, arena);
      MemeffLaunch.Operand v = upload(f.value(), stream, temps, arena);
      MemeffLaunch.Operand o = upload(f.output(), stream, temps, arena);
      MemeffLaunch.Operand dout = upload(r.gradOutput(), stream, temps, arena);
      MemeffLaunch.Operand lse = upload(f.lse().orElseThrow(), stream, temps, arena);
      MemeffLaunch.Operand mask = null;
      DType maskType = null;
      if (f.mask().isPresent()) {
        Tensor original = f.options().attnMask().orElseThrow();
        MemeffLaunch.Operand packed = upload(original, stream, temps, arena);
        mask = new MemeffLaunch.Operand(packed.address(), broadcastStrides(original.shape(), f.mask().get().shape()));
        maskType = original.dtype();
      }
      Tensor[] grads = {r.gradQuery(), r.gradKey(), r.gradValue()};
      DeviceMemory[] dev = new DeviceMemory[3];
      for (int i = 0; i < 3; i++) {
        dev[i] = temps.allocate(HostStaging.packedBytes(grads[i]));
      }
      launchBackward(r, q, k, v, o, dout, lse, mask, maskType, contiguous(dev[0].address(), grads[0].shape()),
          contiguous(dev[1].address(), grads[1].shape()), contiguous(dev[2].address(), grads[2].shape()), temps,
          stream);
      MemorySegment[] back = new MemorySegment[3];
      for (int i = 0; i < 3; i++) {
        back[i] = arena.allocate(dev[i].byteSize(), 16);
        dev[i].copyToHost(0, back[i], stream);
      }
      stream.synchronize();
      for (int i = 0; i < 3; i++) {
        HostStaging.unpack(back[i], grads[i]);
      }
    } catch (RuntimeException e) {
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

  /** Allocates the scratch (zeroing the dQ accumulator of the atomic path) and queues the three kernels. */
  private void launchBackward(BackwardRequest r, MemeffLaunch.Operand q, MemeffLaunch.Operand k,
      MemeffLaunch.Operand v, MemeffLaunch.Operand o, MemeffLaunch.Operand dout, MemeffLaunch.Operand lse,
      MemeffLaunch.Operand mask, DType maskType, MemeffLaunch.Operand dq, MemeffLaunch.Operand dk,
      MemeffLaunch.Operand dv, DeviceScratch temps, CudaStream stream) {
    AttentionRequest f = r.forward();
    DeviceMemory stat = temps.allocate(MemeffBackwardLaunch.statBytes(f.shape()));
    long accumulator = 0;
    if (MemeffBackwardLaunch.atomic(f)) {
      DeviceMemory acc = temps.allocate(MemeffBackwardLaunch.accumulatorBytes(f.shape()));
      acc.fill(0, acc.byteSize(), (byte) 0, stream);
      accumulator = acc.address();
    }
    MemeffBackwardLaunch plan = MemeffBackwardLaunch.plan(r, q, k, v, o, dout, lse, mask, maskType, dq, dk, dv,
        stat.address(), accumulator);
    KernelModule m = backwardModule();
    for (MemeffBackwardLaunch.Step step : plan.steps()) {
      LOG.debug("{}: {} blocks x {} threads, {} B shared, flags 0x{} for {}", step.name(), step.blocks(),
          step.threads(), step.sharedBytes(), Integer.toHexString(plan.flags()), r.forward().describe());
      m.function(step.name()).launch(Dim3.of(Math.toIntExact(step.blocks())), Dim3.of(step.threads()),
          step.sharedBytes(), stream, KernelArgs.builder().struct(step.params()).build());
    }
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
