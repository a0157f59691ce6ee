package dev.sdpa4j.provider.cuda.flash;

import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.AttentionShape;
import dev.sdpa4j.CausalMode;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.DType;
import dev.sdpa4j.Dropout;
import dev.sdpa4j.DropoutResolution;
import dev.sdpa4j.DropoutSeed;
import dev.sdpa4j.Storage;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.cuda.CudaContext;
import dev.sdpa4j.cuda.CudaDevice;
import dev.sdpa4j.cuda.CudaMemoryPool;
import dev.sdpa4j.cuda.CudaStream;
import dev.sdpa4j.cuda.DeviceMemory;
import dev.sdpa4j.cuda.DeviceScratch;
import dev.sdpa4j.cuda.Dim3;
import dev.sdpa4j.cuda.HostStaging;
import dev.sdpa4j.cuda.KernelArgs;
import dev.sdpa4j.cuda.KernelModule;
import dev.sdpa4j.cuda.LazyKernelModule;
import dev.sdpa4j.cuda.KernelSource;
import dev.sdpa4j.spi.ComputeCapability;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Optional;

/**
 * The provider's state on one device (its primary context and the loaded kernels: {@code flash_fwd.cu} and, on the
 * first backward call, {@code flash_bwd.cu}) and the forward and backward passes there. Thread-safe: calls share the
 * modules and run on the caller's stream or the calling thread's per-thread stream.
 */
final class FlashDevice {
  static final String SOURCE_FILE = "flash_fwd.cu";
  static final KernelSource KERNELS = new KernelSource("flash", "/dev/sdpa4j/cuda/flash", SOURCE_FILE,
      List.of("-std=c++17"), CudaFlashProvider.class::getResourceAsStream);
  static final String BWD_SOURCE_FILE = "flash_bwd.cu";
  static final KernelSource BWD_KERNELS = new KernelSource("flash_bwd", "/dev/sdpa4j/cuda/flash_bwd", BWD_SOURCE_FILE,
      List.of("-std=c++17"), CudaFlashProvider.class::getResourceAsStream);
  /** The Hopper backward main kernels (wgmma); the module is empty for every architecture but sm_90a. */
  static final String BWD_SM90_SOURCE_FILE = "flash_bwd_sm90.cu";
  static final KernelSource BWD_SM90_KERNELS = new KernelSource("flash_bwd_sm90", "/dev/sdpa4j/cuda/flash_bwd_sm90",
      BWD_SM90_SOURCE_FILE, List.of("-std=c++17"), CudaFlashProvider.class::getResourceAsStream);
  /** The Hopper forward main kernels (wgmma); the module is empty for every architecture but sm_90a. */
  static final String FWD_SM90_SOURCE_FILE = "flash_fwd_sm90.cu";
  static final KernelSource FWD_SM90_KERNELS = new KernelSource("flash_sm90", "/dev/sdpa4j/cuda/flash_sm90",
      FWD_SM90_SOURCE_FILE, List.of("-std=c++17"), CudaFlashProvider.class::getResourceAsStream);
  private static final double LOG2E = 1.4426950408889634;
  private static final int COPY_THREADS = 256;
  /** sizeof(FlashParams) in flash_common.cuh, which asserts it. */
  static final int FWD_PARAMS_BYTES = 304;
  /** sizeof(BwdParams) in flash_bwd.cu. */
  static final int BWD_PARAMS_BYTES = 408;
  /** Bytes of scratch memory the provider's pool keeps reserved between calls. */
  static final long POOL_RELEASE_THRESHOLD = 64L << 20;
  /**
   * Bytes of one decode merge slab ({@link MergeSlabs}): merge counters up to this size (16384 query blocks; B=1, H=16:
   * 16, B=64, H=16: 1024) need no memset; more take scratch and a memset.
   */
  static final long SLAB_BYTES = 64L << 10;

  private final CudaContext context;
  private final LazyKernelModule module;
  private final LazyKernelModule bwdModule;
  private final LazyKernelModule bwdSm90Module;
  private final LazyKernelModule fwdSm90Module;
  /** The calls' scratch memory (decode workspaces, staging copies), created on first use; see {@link #pool()}. */
  private volatile CudaMemoryPool pool;
  /** Whether the loaded forward module has the {@code _cl} decode kernels; null until the module is loaded. */
  private volatile Boolean clusters;
  /** Zero-at-rest buffers for the decode workspace's merge counters, per caller stream or borrowed by waiting calls. */
  private final MergeSlabs<DeviceMemory> slabs = new MergeSlabs<>(this::newSlab);

  FlashDevice(CudaContext context) {
    this.context = context;
    this.module = new LazyKernelModule(context, KERNELS);
    this.bwdModule = new LazyKernelModule(context, BWD_KERNELS);
    this.bwdSm90Module = new LazyKernelModule(context, BWD_SM90_KERNELS);
    this.fwdSm90Module = new LazyKernelModule(context, FWD_SM90_KERNELS);
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
    return bwdModule.get();
  }

  /**
   * Whether the Hopper backward kernels run here: compute capability 9.0 and {@code flash_bwd_sm90.cu} loaded as
   * sm_90a code. Loads that module on first use on such a device.
   */
  boolean hopperBackward() {
    return loadedAsSm90a(bwdSm90Module);
  }

  /**
   * Whether the Hopper forward main kernels may run here: compute capability 9.0 and {@code flash_fwd_sm90.cu} loaded
   * as sm_90a code. Loads that module on first use on such a device. Which calls they take is
   * {@link FlashPlan#hopper}'s rule.
   */
  boolean hopperForward() {
    return loadedAsSm90a(fwdSm90Module);
  }

  /**
   * Whether {@code m}, one of the Hopper-only modules, holds machine code here: the device has compute capability 9.0
   * and the module loaded as sm_90a (packaged cubin or NVRTC; its compute_80 PTX fallback is an empty module).
   */
  private boolean loadedAsSm90a(LazyKernelModule m) {
    ComputeCapability cc = context.device().computeCapability();
    return cc.major() == 9 && cc.minor() == 0 && "sm_90a".equals(m.get().arch());
  }

  /**
   * The memory pool of every call's scratch on this device: a provider-owned stream-ordered pool that keeps up to
   * {@link #POOL_RELEASE_THRESHOLD} bytes reserved across synchronisations (the default pool returns everything at
   * each one, and the next call's allocation maps memory again). Allocations are still per call and stream-ordered,
   * so concurrent calls on different streams never share a buffer.
   */
  private CudaMemoryPool pool() {
    CudaMemoryPool p = pool;
    if (p == null) {
      synchronized (this) {
        p = pool;
        if (p == null) {
          p = CudaMemoryPool.create(context, POOL_RELEASE_THRESHOLD);
          pool = p;
        }
      }
    }
    return p;
  }

  /**
   * Whether the decode splits may merge in thread-block clusters here: compute capability 9.0 or later and the
   * forward module loaded as machine code for this device (its compute_80 PTX fallback has no {@code _cl} kernels).
   */
  boolean clusters() {
    Boolean c = clusters;
    if (c == null) {
      c = context.device().computeCapability().major() >= 9 && module().origin() != KernelModule.Origin.PTX_JIT;
      clusters = c;
    }
    return c;
  }

  /** A zeroed merge slab of {@link #SLAB_BYTES} (zeroed on this thread's stream, waited for: rare, never per call). */
  private DeviceMemory newSlab() {
    DeviceMemory m = DeviceMemory.allocate(context, SLAB_BYTES);
    CudaStream s = CudaStream.perThread(context);
    m.fill(0, SLAB_BYTES, (byte) 0, s);
    s.synchronize();
    return m;
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
    DeviceScratch temps = new DeviceScratch(pool(), stream);
    try (Arena arena = Arena.ofConfined()) {
      Operand q = upload(r.query(), stream, temps, arena);
      Operand k = upload(r.key(), stream, temps, arena);
      Operand v = upload(r.value(), stream, temps, arena);
      DeviceMemory o = temps.allocate(HostStaging.packedBytes(r.output()));
      DeviceMemory lse = r.lse().isPresent() ? temps.allocate(HostStaging.packedBytes(r.lse().get())) : null;
      DeviceMemory slab = run(r, q, k, v, Operand.contiguous(o.address(), r.output()),
          lse == null ? null : Operand.contiguous(lse.address(), r.lse().get()), stream, 0, temps);
      MemorySegment oHost = arena.allocate(o.byteSize(), 16);
      o.copyToHost(0, oHost, stream);
      MemorySegment lseHost = lse == null ? null : arena.allocate(lse.byteSize(), 16);
      if (lse != null) {
        lse.copyToHost(0, lseHost, stream);
      }
      stream.synchronize();
      if (slab != null) {
        slabs.giveBack(slab);
      }
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
    CudaStream stream = CudaStream.forCall(context, handle);
    DeviceScratch temps = new DeviceScratch(pool(), stream);
    DeviceMemory slab;
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
      slab = run(r, q, k, v, o, lse, stream, handle, temps);
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
      if (slab != null) {
        slabs.giveBack(slab);
      }
    }
  }

  private static Operand view(Tensor t) {
    Storage.DeviceBuffer b = (Storage.DeviceBuffer) t.storage();
    return new Operand(b.handle() + b.byteOffset(), t.stride(0), t.stride(1), t.stride(2));
  }

  private Operand input(Tensor t, CudaStream stream, DeviceScratch temps) {
    if (direct(t, 16) && t.stride(t.rank() - 1) == 1) {
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

  /**
   * Whether call {@code r} runs each kv head's group of query heads as the query rows of one (batch, kv head): decode
   * with grouped-query attention (one query, a group of more than one head, no top-left causal mask), without dropout,
   * whose mask counter names the query row and head.
   */
  static boolean packsGroup(AttentionRequest r) {
    AttentionShape s = r.shape();
    return r.dropoutP() == 0 && s.queryLength() == 1 && s.groupSize() > 1 && r.causal() != CausalMode.TOP_LEFT;
  }

  /**
   * The plan of call {@code r} on {@code device} ({@code clusters}: its cluster kernels are loaded) with K and V at
   * the element strides {@code k} and {@code v} (batch, head, key) of the operands the kernel reads: the rows of
   * {@link #packsGroup}, the device's memory ({@link FlashPlan.Dram#of}) and the byte layout of K and V
   * ({@link FlashPlan.KvLayout}), whose stack-aligned streams plan differently.
   */
  static FlashPlan plan(AttentionRequest r, long[] k, long[] v, CudaDevice device, boolean clusters) {
    AttentionShape s = r.shape();
    boolean packed = packsGroup(r);
    long es = r.dtype().byteSize();
    return FlashPlan.of(s.batch() * (packed ? s.kvHeads() : s.queryHeads()), packed ? s.groupSize() : s.queryLength(),
        s.keyLength(), s.headDim(), device.multiprocessorCount(), device.maxSharedMemoryPerBlockOptin(),
        r.dropoutP() > 0, clusters, r.options().deterministic(), FlashPlan.Dram.of(device),
        new FlashPlan.KvLayout(k[1] * es, k[2] * es, v[1] * es, v[2] * es));
  }

  /**
   * Launches the attention kernel (main or decode) on operands in device memory, on {@code stream}: the caller's
   * stream {@code handle}, or for 0 the per-thread stream of a call that waits for it before returning. Returns the
   * merge slab the call borrowed (give it back once the stream is idle), or null.
   */
  private DeviceMemory run(AttentionRequest r, Operand q, Operand k, Operand v, Operand o, Operand lse,
      CudaStream stream, long handle, DeviceScratch temps) {
    AttentionShape s = r.shape();
    long group = s.groupSize();
    long heads = s.queryHeads();
    long lq = s.queryLength();
    CausalMode causal = r.causal();
    long[] qs = {q.s0(), q.s1(), q.s2()};
    long[] os = {o.s0(), o.s1(), o.s2()};
    long[] ls = lse == null ? new long[3] : new long[] {lse.s0(), lse.s1(), lse.s2()};
    boolean dropout = r.dropoutP() > 0;
    if (packsGroup(r)) {
      qs = new long[] {qs[0], qs[1] * group, qs[1]};
      os = new long[] {os[0], os[1] * group, os[1]};
      ls = new long[] {ls[0], ls[1] * group, ls[1]};
      heads = s.kvHeads();
      lq = group;
      group = 1;
      causal = CausalMode.NONE;
    } else if (!dropout && lq == 1 && causal == CausalMode.BOTTOM_RIGHT) {
      causal = CausalMode.NONE;  // the single query sees every key
    }
    long lk = s.keyLength();
    long e = s.headDim();
    FlashPlan plan = plan(r, new long[] {k.s0(), k.s1(), k.s2()}, new long[] {v.s0(), v.s1(), v.s2()},
        context.device(), clusters());
    long oAccum = 0;
    long lseAccum = 0;
    DeviceMemory borrowed = null;
    if (plan.workspace()) {
      // fp32 partial outputs and LSEs of every split (scratch), and the merge counters, which must be zero at the
      // launch: a merge slab (zero at rest, see MergeSlabs) where this call may use one - a call that waits for its
      // stream borrows one, a call on a caller's stream that is not being captured uses that stream's (not the
      // per-thread handle, which names another stream on each thread) - else scratch and a memset
      oAccum = temps.allocate(plan.partialBytes(lq, e)).address();
      long counterBytes = plan.counters() * 4;
      DeviceMemory slab = null;
      if (counterBytes <= SLAB_BYTES) {
        if (handle == 0) {
          slab = borrowed = slabs.borrow();
        } else if (handle != CudaStream.PER_THREAD_HANDLE && !stream.capturing()) {
          slab = slabs.forStream(handle).orElse(null);
        }
      }
      if (slab == null) {
        slab = temps.allocate(counterBytes);
        slab.fill(0, counterBytes, (byte) 0, stream);
      }
      lseAccum = slab.address();
    }
    ByteBuffer p = ByteBuffer.allocate(FWD_PARAMS_BYTES).order(ByteOrder.nativeOrder());
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
    putDropout(p, r);
    p.putLong(plan.pacePicos()).putLong(plan.stagger() ? 1 : 0);
    KernelArgs args = KernelArgs.builder().struct(p.array()).build();
    Optional<FlashPlan.HopperTraits> hopper = plan.hopper(hopperForward(), e, lq, lk, dropout);
    if (hopper.isPresent()) {
      launchHopper(hopper.get(), r.dtype(), e, dropout, lq, plan.gridY(), stream, args);
      return borrowed;
    }
    Dim3 grid = plan.steal() ? Dim3.of(plan.stealBlocks()) : Dim3.of(plan.gridX(), plan.gridY(), plan.splits());
    if (plan.cluster()) {
      // the splits of one (query block, batch, head) form a cluster and merge through distributed shared memory
      module().function(plan.kernel(r.dtype(), e, dropout)).launchCluster(grid, Dim3.of(1, 1, plan.splits()),
          Dim3.of(plan.threads()), plan.sharedBytes(), stream, args);
    } else {
      module().function(plan.kernel(r.dtype(), e, dropout)).launch(grid, Dim3.of(plan.threads()), plan.sharedBytes(),
          stream, args);
    }
    return borrowed;
  }

  /**
   * Launches the Hopper main kernel of {@code t} ({@code flash_fwd_sm90.cu}, the same parameter block as the mma.sync
   * kernels) for head dim {@code e}, {@code lq} queries and {@code gridY} (batch, head) pairs.
   */
  private void launchHopper(FlashPlan.HopperTraits t, DType dtype, long e, boolean dropout, long lq, int gridY,
      CudaStream stream, KernelArgs args) {
    fwdSm90Module.get().function(t.kernel(dtype, e, dropout)).launch(Dim3.of(t.gridX(lq), gridY),
        Dim3.of(FlashPlan.HopperTraits.THREADS), t.sharedBytes(), stream, args);
  }

  /**
   * The dropout fields of the forward's parameter block: seed, offset, the mask's threshold and keep scale, and
   * {@code dropout_bytes} (1 for the {@link DropoutResolution#BYTE} mask).
   */
  private static void putDropout(ByteBuffer p, AttentionRequest r) {
    Dropout.Mask mask = r.dropoutMask();
    DropoutSeed seed = r.dropoutSeed().orElse(null);
    p.putLong(seed == null ? 0 : seed.seed()).putLong(seed == null ? 0 : seed.offset())
        .putLong(Integer.toUnsignedLong(mask.threshold())).putFloat((float) mask.keepScale())
        .putInt(mask.resolution() == DropoutResolution.BYTE ? 1 : 0);
  }

  void backward(BackwardRequest b) {
    if (b.forward().device().platform() == dev.sdpa4j.Platform.HOST) {
      backwardHost(b);
    } else {
      backwardDevice(b);
    }
  }

  /** Host tensors: copy the inputs in (row-major), run, copy the gradients out, wait. */
  private void backwardHost(BackwardRequest b) {
    AttentionRequest r = b.forward();
    CudaStream stream = CudaStream.perThread(context);
    DeviceScratch temps = new DeviceScratch(pool(), stream);
    try (Arena arena = Arena.ofConfined()) {
      Operand q = upload(r.query(), stream, temps, arena);
      Operand k = upload(r.key(), stream, temps, arena);
      Operand v = upload(r.value(), stream, temps, arena);
      Operand o = upload(r.output(), stream, temps, arena);
      Operand lse = upload(r.lse().orElseThrow(), stream, temps, arena);
      Operand dout = upload(b.gradOutput(), stream, temps, arena);
      Tensor[] grads = {b.gradQuery(), b.gradKey(), b.gradValue()};
      DeviceMemory[] mem = new DeviceMemory[3];
      Operand[] ops = new Operand[3];
      for (int i = 0; i < 3; i++) {
        mem[i] = temps.allocate(HostStaging.packedBytes(grads[i]));
        ops[i] = Operand.contiguous(mem[i].address(), grads[i]);
      }
      runBackward(r, q, k, v, o, lse, dout, ops[0], ops[1], ops[2], stream, temps);
      MemorySegment[] host = new MemorySegment[3];
      for (int i = 0; i < 3; i++) {
        host[i] = arena.allocate(mem[i].byteSize(), 16);
        mem[i].copyToHost(0, host[i], stream);
      }
      stream.synchronize();
      for (int i = 0; i < 3; i++) {
        HostStaging.unpack(host[i], grads[i]);
      }
    } finally {
      temps.close();
    }
  }

  /**
   * Device tensors: in place on the caller's stream (or the per-thread stream, then waited for); tensors whose rows
   * are not 16-byte aligned or whose head dim is strided go through aligned scratch copies, in stream order.
   */
  private void backwardDevice(BackwardRequest b) {
    AttentionRequest r = b.forward();
    long handle = r.options().stream();
    CudaStream stream = CudaStream.forCall(context, handle);
    DeviceScratch temps = new DeviceScratch(pool(), stream);
    try {
      Operand q = input(r.query(), stream, temps);
      Operand k = input(r.key(), stream, temps);
      Operand v = input(r.value(), stream, temps);
      Operand o = input(r.output(), stream, temps);
      Operand dout = input(b.gradOutput(), stream, temps);
      Tensor lseT = r.lse().orElseThrow();
      Operand lse;
      if (direct(lseT, 4)) {
        lse = view(lseT);
      } else {
        DeviceMemory m = temps.allocate(HostStaging.packedBytes(lseT));
        copy(m.address(), Tensor.contiguousStrides(lseT.shape()), lseT, true, stream);
        lse = Operand.contiguous(m.address(), lseT);
      }
      Tensor[] grads = {b.gradQuery(), b.gradKey(), b.gradValue()};
      Operand[] ops = new Operand[3];
      boolean[] inPlace = new boolean[3];
      for (int i = 0; i < 3; i++) {
        inPlace[i] = direct(grads[i], 16) && grads[i].stride(3) == 1;
        ops[i] = inPlace[i] ? view(grads[i]) : Operand.contiguous(
            temps.allocate(HostStaging.packedBytes(grads[i])).address(), grads[i]);
      }
      runBackward(r, q, k, v, o, lse, dout, ops[0], ops[1], ops[2], stream, temps);
      for (int i = 0; i < 3; i++) {
        if (!inPlace[i]) {
          copy(ops[i].address(), Tensor.contiguousStrides(grads[i].shape()), grads[i], false, stream);
        }
      }
    } finally {
      temps.close();
    }
    if (handle == 0) {
      stream.synchronize();
    }
  }

  /** Launches preprocess, the dK/dV kernel, and the dQ kernel (deterministic) or the dQ conversion. */
  private void runBackward(AttentionRequest r, Operand q, Operand k, Operand v, Operand o, Operand lse, Operand dout,
      Operand dq, Operand dk, Operand dv, CudaStream stream, DeviceScratch temps) {
    AttentionShape s = r.shape();
    boolean dropout = r.dropoutP() > 0;
    boolean det = r.options().deterministic();
    FlashBackwardPlan plan = FlashBackwardPlan.of(r.dtype(), s.batch(), s.queryHeads(), s.kvHeads(),
        s.queryLength(), s.keyLength(), s.headDim(), dropout, det, hopperBackward());
    long dsum = temps.allocate(plan.dsumBytes()).address();
    long dqAccum = det ? 0 : temps.allocate(plan.dqAccumBytes()).address();
    CausalMode causal = r.causal();
    ByteBuffer p = ByteBuffer.allocate(BWD_PARAMS_BYTES).order(ByteOrder.nativeOrder());
    for (Operand x : new Operand[] {q, k, v, o, dout, lse, dq, dk, dv}) {
      p.putLong(x.address());
    }
    p.putLong(dqAccum).putLong(dsum);
    for (Operand x : new Operand[] {q, k, v, o, dout, lse, dq, dk, dv}) {
      p.putLong(x.s0()).putLong(x.s1()).putLong(x.s2());
    }
    p.putLong(s.batch()).putLong(s.queryHeads()).putLong(s.groupSize());
    p.putLong(s.queryLength()).putLong(s.keyLength()).putLong(s.headDim());
    p.putLong(causal == CausalMode.NONE ? 0 : 1)
        .putLong(causal == CausalMode.BOTTOM_RIGHT ? s.keyLength() - s.queryLength() : 0);
    Dropout.Mask mask = r.dropoutMask();
    DropoutSeed seed = r.dropoutSeed().orElse(null);
    p.putLong(seed == null ? 0 : seed.seed()).putLong(seed == null ? 0 : seed.offset())
        .putLong(Integer.toUnsignedLong(mask.threshold()));
    p.putFloat((float) r.scale()).putFloat((float) (r.scale() * LOG2E))
        .putFloat((float) mask.keepScale()).putInt(mask.resolution() == DropoutResolution.BYTE ? 1 : 0);
    KernelArgs args = KernelArgs.builder().struct(p.array()).build();
    String dt = r.dtype() == DType.BFLOAT16 ? "bf16" : "f16";
    KernelModule m = backwardModule();
    int rowBlocks = FlashBackwardPlan.rowBlocks(s.batch() * s.queryHeads() * s.queryLength());
    Dim3 rowThreads = Dim3.of(FlashBackwardPlan.ROW_THREADS);
    m.function("flash_bwd_preprocess_" + dt).launch(Dim3.of(rowBlocks), rowThreads, 0, stream, args);
    KernelModule main = plan.wgmma() ? bwdSm90Module.get() : m;
    main.function(plan.main()).launch(Dim3.of(plan.mainGridX(), plan.mainGridY()), Dim3.of(plan.mainThreads()),
        plan.mainSharedBytes(), stream, args);
    if (det) {
      FlashBackwardPlan.DqTraits qt = plan.dqTraits();
      m.function(plan.dq()).launch(Dim3.of(plan.dqGridX(), plan.dqGridY()), Dim3.of(qt.threads()), qt.sharedBytes(),
          stream, args);
    } else {
      m.function("flash_bwd_convert_" + dt).launch(Dim3.of(rowBlocks), rowThreads, 0, stream, args);
    }
  }
}
