package dev.sdpa4j.provider.cuda.flash;

import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.AttentionShape;
import dev.sdpa4j.CausalMode;
import dev.sdpa4j.DType;
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
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * The provider's state on one device (its primary context and the loaded kernels) and the forward pass there.
 * Thread-safe: calls share the module and run on the caller's stream or the calling thread's per-thread stream.
 */
final class FlashDevice {
  static final String SOURCE_FILE = "flash_fwd.cu";
  static final KernelSource KERNELS = new KernelSource("flash", "/dev/sdpa4j/cuda/flash", SOURCE_FILE,
      List.of("-std=c++17"), CudaFlashProvider.class::getResourceAsStream);
  private static final double LOG2E = 1.4426950408889634;
  private static final int COPY_THREADS = 256;

  private final CudaContext context;
  private final LazyKernelModule module;

  FlashDevice(CudaContext context) {
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

  /** A device view of one tensor: element 0's address and the element strides of its first three dimensions. */
  private record Operand(long address, long s0, long s1, long s2) {
    static Operand contiguous(long address, Tensor t) {
      long[] s = Tensor.contiguousStrides(t.shape());
      return new Operand(address, s[0], s[1], s[2]);
    }
  }

  /** Whether the kernels may use {@code t} in place: rows at {@code alignmentBytes} (16 for the 16-bit tensors). */
  static boolean direct(Tensor t, int alignmentBytes) {
    Storage.DeviceBuffer b = (Storage.DeviceBuffer) t.storage();
    if (((b.handle() + b.byteOffset()) % alignmentBytes) != 0) {
      return false;
    }
    int elements = alignmentBytes / t.dtype().byteSize();
    for (int d = 0; d < t.rank() - 1; d++) {
      if (t.size(d) > 1 && t.stride(d) % elements != 0) {
        return false;
      }
    }
    return true;
  }

  void forward(AttentionRequest r) {
    if (r.device().platform() == dev.sdpa4j.Platform.HOST) {
      forwardHost(r);
    } else {
      forwardDevice(r);
    }
  }

  /** Host tensors: copy in (row-major), run, copy out, wait. */
  private void forwardHost(AttentionRequest r) {
    CudaStream stream = CudaStream.perThread(context);
    DeviceScratch temps = new DeviceScratch(context, stream);
    try (Arena arena = Arena.ofConfined()) {
      Operand q = upload(r.query(), stream, temps, arena);
      Operand k = upload(r.key(), stream, temps, arena);
      Operand v = upload(r.value(), stream, temps, arena);
      DeviceMemory o = temps.allocate(HostStaging.packedBytes(r.output()));
      DeviceMemory lse = r.lse().isPresent() ? temps.allocate(HostStaging.packedBytes(r.lse().get())) : null;
      run(r, q, k, v, Operand.contiguous(o.address(), r.output()),
          lse == null ? null : Operand.contiguous(lse.address(), r.lse().get()), stream, temps);
      MemorySegment oHost = arena.allocate(o.byteSize(), 16);
      o.copyToHost(0, oHost, stream);
      MemorySegment lseHost = lse == null ? null : arena.allocate(lse.byteSize(), 16);
      if (lse != null) {
        lse.copyToHost(0, lseHost, stream);
      }
      stream.synchronize();
      HostStaging.unpack(oHost, r.output());
      if (lse != null) {
        HostStaging.unpack(lseHost, r.lse().get());
      }
    } finally {
      temps.close();
    }
  }

  /** Device tensors: in place on the caller's stream (or the per-thread stream, then waited for). */
  private void forwardDevice(AttentionRequest r) {
    long handle = r.options().stream();
    CudaStream stream = handle != 0 ? CudaStream.wrap(context, handle) : CudaStream.perThread(context);
    DeviceScratch temps = new DeviceScratch(context, stream);
    try {
      Operand q = input(r.query(), stream, temps);
      Operand k = input(r.key(), stream, temps);
      Operand v = input(r.value(), stream, temps);
      boolean oDirect = direct(r.output(), 16);
      Operand o = oDirect ? view(r.output()) : Operand.contiguous(
          temps.allocate(HostStaging.packedBytes(r.output())).address(), r.output());
      Tensor lseT = r.lse().orElse(null);
      boolean lseDirect = lseT == null || direct(lseT, 4);
      Operand lse = lseT == null ? null : lseDirect ? view(lseT) : Operand.contiguous(
          temps.allocate(HostStaging.packedBytes(lseT)).address(), lseT);
      run(r, q, k, v, o, lse, stream, temps);
      if (!oDirect) {
        copy(o.address(), Tensor.contiguousStrides(r.output().shape()), r.output(), false, stream);
      }
      if (!lseDirect) {
        copy(lse.address(), Tensor.contiguousStrides(lseT.shape()), lseT, false, stream);
      }
    } finally {
      temps.close();
    }
    if (handle == 0) {
      stream.synchronize();
    }
  }

  private static Operand view(Tensor t) {
    Storage.DeviceBuffer b = (Storage.DeviceBuffer) t.storage();
    return new Operand(b.handle() + b.byteOffset(), t.stride(0), t.stride(1), t.stride(2));
  }

  private Operand input(Tensor t, CudaStream stream, DeviceScratch temps) {
    if (direct(t, 16)) {
      return view(t);
    }
    DeviceMemory m = temps.allocate(HostStaging.packedBytes(t));
    copy(m.address(), Tensor.contiguousStrides(t.shape()), t, true, stream);
    return Operand.contiguous(m.address(), t);
  }

  private Operand upload(Tensor t, CudaStream stream, DeviceScratch temps, Arena arena) {
    MemorySegment packed = HostStaging.pack(t, arena);
    DeviceMemory m = temps.allocate(packed.byteSize());
    m.copyFromHost(packed, 0, stream);
    return Operand.contiguous(m.address(), t);
  }



  /** Strided copy between the view {@code t} and a buffer at {@code other} with element strides {@code otherStrides}. */
  private void copy(long other, long[] otherStrides, Tensor t, boolean toOther, CudaStream stream) {
    Storage.DeviceBuffer b = (Storage.DeviceBuffer) t.storage();
    long addr = b.handle() + b.byteOffset();
    long[] n = new long[4];
    long[] ts = new long[4];
    long[] os = new long[4];
    int pad = 4 - t.rank();
    for (int i = 0; i < 4; i++) {
      n[i] = i < pad ? 1 : t.size(i - pad);
      ts[i] = i < pad ? 0 : t.stride(i - pad);
      os[i] = i < pad ? 0 : otherStrides[i - pad];
    }
    ByteBuffer p = ByteBuffer.allocate(14 * 8).order(ByteOrder.nativeOrder());
    p.putLong(toOther ? addr : other).putLong(toOther ? other : addr);
    for (long x : n) {
      p.putLong(x);
    }
    for (long x : toOther ? ts : os) {
      p.putLong(x);
    }
    for (long x : toOther ? os : ts) {
      p.putLong(x);
    }
    long total = t.elementCount();
    int blocks = (int) Math.min(FlashPlan.ceilDiv(total, COPY_THREADS), 1 << 20);
    module().function(t.dtype().byteSize() == 2 ? "strided_copy_b16" : "strided_copy_b32")
        .launch(Dim3.of(blocks), Dim3.of(COPY_THREADS), 0, stream, KernelArgs.builder().struct(p.array()).build());
  }

  /** Launches the attention kernels (and the split-KV combine) on operands in device memory. */
  private void run(AttentionRequest r, Operand q, Operand k, Operand v, Operand o, Operand lse, CudaStream stream,
      DeviceScratch temps) {
    AttentionShape s = r.shape();
    long group = s.groupSize();
    long heads = s.queryHeads();
    long lq = s.queryLength();
    CausalMode causal = r.causal();
    long[] qs = {q.s0(), q.s1(), q.s2()};
    long[] os = {o.s0(), o.s1(), o.s2()};
    long[] ls = lse == null ? new long[3] : new long[] {lse.s0(), lse.s1(), lse.s2()};
    if (lq == 1 && group > 1 && causal != CausalMode.TOP_LEFT) {
      // decode with grouped-query attention: the group's query heads become the rows of one kv head
      qs = new long[] {qs[0], qs[1] * group, qs[1]};
      os = new long[] {os[0], os[1] * group, os[1]};
      ls = new long[] {ls[0], ls[1] * group, ls[1]};
      heads = s.kvHeads();
      lq = group;
      group = 1;
      causal = CausalMode.NONE;
    } else if (lq == 1 && causal == CausalMode.BOTTOM_RIGHT) {
      causal = CausalMode.NONE;  // the single query sees every key
    }
    long lk = s.keyLength();
    long e = s.headDim();
    FlashPlan plan = FlashPlan.of(s.batch() * heads, lq, lk, e, context.device().multiprocessorCount());
    long oAccum = 0;
    long lseAccum = 0;
    if (plan.split()) {
      long rows = (long) plan.splits() * s.batch() * heads * lq;
      oAccum = temps.allocate(rows * e * 4).address();
      lseAccum = temps.allocate(rows * 4).address();
    }
    ByteBuffer p = ByteBuffer.allocate(256).order(ByteOrder.nativeOrder());
    p.putLong(q.address()).putLong(k.address()).putLong(v.address()).putLong(o.address())
        .putLong(lse == null ? 0 : lse.address()).putLong(oAccum).putLong(lseAccum);
    p.putLong(qs[0]).putLong(qs[1]).putLong(qs[2]);
    p.putLong(k.s0()).putLong(k.s1()).putLong(k.s2());
    p.putLong(v.s0()).putLong(v.s1()).putLong(v.s2());
    p.putLong(os[0]).putLong(os[1]).putLong(os[2]);
    p.putLong(ls[0]).putLong(ls[1]).putLong(ls[2]);
    p.putLong(s.batch()).putLong(heads).putLong(group).putLong(lq).putLong(lk).putLong(e);
    p.putLong(causal == CausalMode.NONE ? 0 : 1).putLong(causal == CausalMode.BOTTOM_RIGHT ? lk - lq : 0);
    p.putLong(plan.splits());
    p.putFloat((float) r.scale()).putFloat((float) (r.scale() * LOG2E));
    KernelArgs args = KernelArgs.builder().struct(p.array()).build();
    String dt = r.dtype() == DType.BFLOAT16 ? "bf16" : "f16";
    FlashPlan.Traits t = plan.traits();
    // the _pad kernels serve head dims below the specialisation's (predicated loads); see flash_fwd.cu
    String name = "flash_fwd_" + (plan.split() ? "split_" : "") + dt + "_d" + t.headDim()
        + (e == t.headDim() ? "" : "_pad");
    module().function(name).launch(Dim3.of(plan.gridX(), plan.gridY(), plan.splits()), Dim3.of(t.threads()),
        t.sharedBytes(), stream, args);
    if (plan.split()) {
      long rows = s.batch() * heads * lq;
      module().function("flash_combine_" + dt).launch(Dim3.of(Math.toIntExact(FlashPlan.ceilDiv(rows, 4))),
          Dim3.of(128), 0, stream, args);
    }
  }
}
