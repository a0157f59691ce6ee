package dev.sdpa4j.provider.cuda.flash;

import static dev.sdpa4j.cuda.testing.HostTensors.gaussian;
import static dev.sdpa4j.cuda.testing.HostTensors.maxAbsError;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sdpa4j.AttentionOptions;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.CausalMode;
import dev.sdpa4j.DType;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.cuda.CudaContext;
import dev.sdpa4j.cuda.CudaStream;
import dev.sdpa4j.cuda.DeviceTensor;
import dev.sdpa4j.cuda.KernelModule;
import dev.sdpa4j.provider.math.ReferenceAttention;
import dev.sdpa4j.spi.ComputeCapability;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Kernel loading paths, zero-copy device tensors on a caller's stream, and leaks; skipped without a GPU. */
class FlashGpuTest {
  private final CudaFlashProvider provider = new CudaFlashProvider();

  @BeforeEach
  void needsGpu() {
    assumeTrue(provider.availability().available(), () -> "no GPU: " + provider.availability().reason());
  }

  @Test
  void packagedCubinAndNvrtcGiveTheSameBits(@TempDir Path cache) {
    assumeTrue(System.getProperty(KernelModule.FORCE_NVRTC_PROPERTY) == null,
        "compares the packaged cubin with NVRTC: not with NVRTC forced for the whole run");
    long seed = System.nanoTime();
    System.out.println("packagedCubinAndNvrtcGiveTheSameBits seed " + seed);
    Random rnd = new Random(seed);
    try (Arena arena = Arena.ofConfined()) {
      Tensor q = gaussian(arena, DType.BFLOAT16, rnd, 2, 4, 97, 80);
      Tensor k = gaussian(arena, DType.BFLOAT16, rnd, 2, 2, 131, 80);
      Tensor v = gaussian(arena, DType.BFLOAT16, rnd, 2, 2, 131, 80);
      Tensor o1 = Tensor.allocate(arena, DType.BFLOAT16, 2, 4, 97, 80);
      Tensor o2 = Tensor.allocate(arena, DType.BFLOAT16, 2, 4, 97, 80);
      AttentionOptions opts = AttentionOptions.builder().causal(CausalMode.BOTTOM_RIGHT).enableGqa(true).build();
      AttentionRequest r1 = AttentionRequest.create(q, k, v, o1, null, opts);
      FlashDevice packaged = provider.device(0);
      packaged.forward(r1);
      System.out.println("default kernels: " + packaged.module());
      if (packaged.context().device().computeCapability().major() == 9) {
        assertThat(packaged.module().origin()).isEqualTo(KernelModule.Origin.PACKAGED_CUBIN);
      }
      System.setProperty(KernelModule.FORCE_NVRTC_PROPERTY, "true");
      System.setProperty(KernelModule.CACHE_DIR_PROPERTY, cache.toString());
      try (CudaContext ctx = CudaContext.retainPrimary(0)) {
        FlashDevice compiled = new FlashDevice(ctx);
        compiled.forward(AttentionRequest.create(q, k, v, o2, null, opts));
        System.out.println("forced kernels: " + compiled.module());
        assertThat(compiled.module().origin()).isEqualTo(KernelModule.Origin.NVRTC_COMPILED);
        assertThat(new FlashDevice(ctx).module().origin()).isEqualTo(KernelModule.Origin.NVRTC_CACHED);
      } finally {
        System.clearProperty(KernelModule.FORCE_NVRTC_PROPERTY);
        System.clearProperty(KernelModule.CACHE_DIR_PROPERTY);
      }
      assertThat(o2.hostSegment().mismatch(o1.hostSegment())).isEqualTo(-1L);
      double err = maxAbsError(o1, ReferenceAttention.forward(r1, DType.FLOAT64).output());
      assertThat(err).isLessThan(3e-2);
    }
  }

  @Test
  void hopperBackwardRunsTheWgmmaModuleAndNvrtcCompilesIt(@TempDir Path cache) {
    FlashDevice device = provider.device(0);
    ComputeCapability cc = device.context().device().computeCapability();
    assumeTrue(cc.major() == 9 && cc.minor() == 0, "the wgmma backward exists for compute capability 9.0 only");
    assumeTrue(System.getProperty(KernelModule.FORCE_NVRTC_PROPERTY) == null,
        "compiles flash_bwd_sm90.cu with NVRTC once: not with NVRTC forced for the whole run");
    assertThat(device.hopperBackward()).isTrue();
    System.setProperty(KernelModule.FORCE_NVRTC_PROPERTY, "true");
    System.setProperty(KernelModule.CACHE_DIR_PROPERTY, cache.toString());
    try (KernelModule m = KernelModule.load(device.context(), FlashDevice.BWD_SM90_KERNELS)) {
      System.out.println("forced flash_bwd_sm90: " + m);
      assertThat(m.origin()).isEqualTo(KernelModule.Origin.NVRTC_COMPILED);
      assertThat(m.arch()).isEqualTo("sm_90a");
      for (String dt : new String[] {"f16", "bf16"}) {
        for (int e : new int[] {64, 128}) {
          for (String drop : new String[] {"", "_drop"}) {
            assertThat(m.function("flash_bwd_sm90_" + dt + "_d" + e + drop)).isNotNull();
          }
        }
      }
    } finally {
      System.clearProperty(KernelModule.FORCE_NVRTC_PROPERTY);
      System.clearProperty(KernelModule.CACHE_DIR_PROPERTY);
    }
  }

  @Test
  void hopperForwardRunsTheWgmmaModuleAndNvrtcCompilesIt(@TempDir Path cache) {
    FlashDevice device = provider.device(0);
    ComputeCapability cc = device.context().device().computeCapability();
    assumeTrue(cc.major() == 9 && cc.minor() == 0, "the wgmma forward exists for compute capability 9.0 only");
    assumeTrue(System.getProperty(KernelModule.FORCE_NVRTC_PROPERTY) == null,
        "compiles flash_fwd_sm90.cu with NVRTC once: not with NVRTC forced for the whole run");
    assertThat(device.hopperForward()).isTrue();
    // a grid large enough for the main kernel, GQA, bottom-right causal with Lq < Lk, ragged lengths: FlashPlan
    // takes the Hopper kernel for it, at head dims of 128-byte swizzled tiles (128, 192), of 64-byte ones (96), and
    // below a class (80 and 160: the _pad kernels)
    long b = 2, h = 108, hk = 54, lq = 130, lk = 200;
    long seed = System.nanoTime();
    System.out.println("hopperForwardRunsTheWgmmaModuleAndNvrtcCompilesIt seed " + seed);
    Random rnd = new Random(seed);
    for (long e : new long[] {128, 96, 192, 80, 160}) {
      FlashPlan plan = FlashPlan.of(b * h, lq, lk, e, device.context().device().multiprocessorCount(),
          device.context().device().maxSharedMemoryPerBlockOptin(), false);
      assertThat(plan.hopper(true, e, lq, lk, false)).as("head dim %d", e).isPresent();
      gqaBottomRightMatchesTheReference(rnd, DType.BFLOAT16, b, h, hk, lq, lk, e, 3e-2);
    }
    System.setProperty(KernelModule.FORCE_NVRTC_PROPERTY, "true");
    System.setProperty(KernelModule.CACHE_DIR_PROPERTY, cache.toString());
    try (KernelModule m = KernelModule.load(device.context(), FlashDevice.FWD_SM90_KERNELS)) {
      System.out.println("forced flash_fwd_sm90: " + m);
      assertThat(m.origin()).isEqualTo(KernelModule.Origin.NVRTC_COMPILED);
      assertThat(m.arch()).isEqualTo("sm_90a");
      for (FlashPlan.HopperTraits t : FlashPlan.HOPPER) {
        for (DType dt : new DType[] {DType.FLOAT16, DType.BFLOAT16}) {
          for (long e : new long[] {t.headDim(), t.headDim() - 8}) {
            assertThat(m.function(t.kernel(dt, e, false))).isNotNull();
            assertThat(m.function(t.kernel(dt, e, true))).isNotNull();
          }
        }
      }
    } finally {
      System.clearProperty(KernelModule.FORCE_NVRTC_PROPERTY);
      System.clearProperty(KernelModule.CACHE_DIR_PROPERTY);
    }
  }

  @Test
  void deviceTensorsRunInPlaceOnTheCallersStream() {
    long seed = System.nanoTime();
    System.out.println("deviceTensorsRunInPlaceOnTheCallersStream seed " + seed);
    Random rnd = new Random(seed);
    CudaContext ctx = provider.device(0).context();
    try (Arena arena = Arena.ofConfined(); CudaStream stream = CudaStream.create(ctx)) {
      // [B, L, H, E] memory (FlashAttention's layout) viewed as [B, H, L, E]; decode-sized and long queries
      for (long lq : new long[] {1, 300}) {
        Tensor q = gaussian(arena, DType.FLOAT16, rnd, 2, lq, 8, 128).view(new long[] {2, 8, lq, 128},
            new long[] {lq * 8 * 128, 128, 8 * 128, 1});
        Tensor k = gaussian(arena, DType.FLOAT16, rnd, 2, 2, 3000, 128);
        Tensor v = gaussian(arena, DType.FLOAT16, rnd, 2, 2, 3000, 128);
        Tensor o = Tensor.allocate(arena, DType.FLOAT16, 2, 8, lq, 128);
        Tensor lse = Tensor.allocate(arena, DType.FLOAT32, 2, 8, lq);
        try (DeviceTensor dq = DeviceTensor.allocate(ctx, DType.FLOAT16, 2, lq, 8, 128);
             DeviceTensor dk = DeviceTensor.upload(ctx, k); DeviceTensor dv = DeviceTensor.upload(ctx, v);
             DeviceTensor dout = DeviceTensor.allocate(ctx, DType.FLOAT16, 2, 8, lq, 128);
             DeviceTensor dlse = DeviceTensor.allocate(ctx, DType.FLOAT32, 2, 8, lq)) {
          Tensor qHostBlhe = q.view(new long[] {2, lq, 8, 128}, new long[] {lq * 8 * 128, 8 * 128, 128, 1});
          dq.upload(qHostBlhe);
          Tensor dqView = dq.tensor().view(q.shape(), q.strides());
          AttentionOptions opts = AttentionOptions.builder().enableGqa(true).causal(CausalMode.BOTTOM_RIGHT)
              .stream(stream.handle()).returnLse(true).build();
          AttentionRequest r = AttentionRequest.create(dqView, dk.tensor(), dv.tensor(), dout.tensor(), dlse.tensor(),
              opts);
          assertThat(provider.notSupportedReasons(r)).isEmpty();
          provider.forward(r);
          stream.synchronize();
          dout.download(o);
          dlse.download(lse);
        }
        var ref = ReferenceAttention.forward(AttentionRequest.create(q, k, v, o, lse,
            AttentionOptions.builder().enableGqa(true).causal(CausalMode.BOTTOM_RIGHT).returnLse(true).build()),
            DType.FLOAT64);
        assertThat(maxAbsError(o, ref.output())).isLessThan(4e-3);
        assertThat(maxAbsError(lse, ref.lse())).isLessThan(2e-3);
      }
    }
  }

  /**
   * The decode workspace's merge slabs (MergeSlabs: zero at rest, no memset): B = 1, H = 16, E = 128, Lk = 4096 runs
   * 8 splits merged through the workspace. Calls on two caller streams queued back to back without waiting, and
   * waiting calls from two threads at once, each on its own inputs, must all match the reference in every round.
   */
  @Test
  void decodeMergeSlabsServeTwoStreamsAndTwoThreadsApart() throws Exception {
    long seed = System.nanoTime();
    System.out.println("decodeMergeSlabsServeTwoStreamsAndTwoThreadsApart seed " + seed);
    Random rnd = new Random(seed);
    CudaContext ctx = provider.device(0).context();
    assertThat(devicePlan(ctx, 16, 4096, 128, true).workspace()).isTrue();
    int sets = 4;
    try (Arena arena = Arena.ofShared(); CudaStream s1 = CudaStream.create(ctx); CudaStream s2 = CudaStream.create(ctx)) {
      Tensor[] q = new Tensor[sets];
      Tensor[] kv = new Tensor[sets];
      Tensor[] o = new Tensor[sets];
      Tensor[] lse = new Tensor[sets];
      ReferenceAttention.Forward[] ref = new ReferenceAttention.Forward[sets];
      Tensor nan = Tensor.allocate(arena, DType.FLOAT16, 1, 16, 1, 128);
      for (long i = 0; i < 16 * 128; i++) {
        nan.set(Double.NaN, 0, i / 128, 0, i % 128);
      }
      DeviceTensor[] dq = new DeviceTensor[sets];
      DeviceTensor[] dkv = new DeviceTensor[sets];
      DeviceTensor[] dout = new DeviceTensor[sets];
      DeviceTensor[] dlse = new DeviceTensor[sets];
      AttentionRequest[] onStream = new AttentionRequest[sets];
      AttentionRequest[] waiting = new AttentionRequest[sets];
      try {
        for (int i = 0; i < sets; i++) {
          q[i] = gaussian(arena, DType.FLOAT16, rnd, 1, 16, 1, 128);
          kv[i] = gaussian(arena, DType.FLOAT16, rnd, 1, 16, 4096, 128);
          o[i] = Tensor.allocate(arena, DType.FLOAT16, 1, 16, 1, 128);
          lse[i] = Tensor.allocate(arena, DType.FLOAT32, 1, 16, 1);
          ref[i] = ReferenceAttention.forward(AttentionRequest.create(q[i], kv[i], kv[i], o[i], lse[i],
              AttentionOptions.builder().returnLse(true).build()), DType.FLOAT64);
          dq[i] = DeviceTensor.upload(ctx, q[i]);
          dkv[i] = DeviceTensor.upload(ctx, kv[i]);
          dout[i] = DeviceTensor.allocate(ctx, DType.FLOAT16, 1, 16, 1, 128);
          dlse[i] = DeviceTensor.allocate(ctx, DType.FLOAT32, 1, 16, 1);
          long handle = (i % 2 == 0 ? s1 : s2).handle();
          onStream[i] = AttentionRequest.create(dq[i].tensor(), dkv[i].tensor(), dkv[i].tensor(), dout[i].tensor(),
              dlse[i].tensor(), AttentionOptions.builder().stream(handle).returnLse(true).build());
          waiting[i] = AttentionRequest.create(dq[i].tensor(), dkv[i].tensor(), dkv[i].tensor(), dout[i].tensor(),
              dlse[i].tensor(), AttentionOptions.builder().returnLse(true).build());
        }
        for (int round = 0; round < 30; round++) {
          for (int i = 0; i < sets; i++) {
            dout[i].upload(nan);
          }
          // sets 0 and 2 on stream 1, 1 and 3 on stream 2, queued without waiting: each stream's two calls share its
          // slab in stream order, the streams run concurrently
          for (int i = 0; i < sets; i++) {
            provider.forward(onStream[i]);
          }
          s1.synchronize();
          s2.synchronize();
          for (int i = 0; i < sets; i++) {
            dout[i].download(o[i]);
            dlse[i].download(lse[i]);
            assertThat(maxAbsError(o[i], ref[i].output())).as("stream call, round %d, set %d", round, i)
                .isLessThan(4e-3);
            assertThat(maxAbsError(lse[i], ref[i].lse())).isLessThan(2e-3);
          }
        }
        // waiting calls (per-thread streams) from two threads at once: each borrows a slab of its own
        try (var pool = java.util.concurrent.Executors.newFixedThreadPool(2)) {
          java.util.List<java.util.concurrent.Future<?>> done = new java.util.ArrayList<>();
          for (int t = 0; t < 2; t++) {
            int first = t;
            done.add(pool.submit(() -> {
              Tensor mine = Tensor.allocate(arena, DType.FLOAT16, 1, 16, 1, 128);
              Tensor mineLse = Tensor.allocate(arena, DType.FLOAT32, 1, 16, 1);
              for (int round = 0; round < 30; round++) {
                for (int i = first; i < sets; i += 2) {
                  dout[i].upload(nan);
                  provider.forward(waiting[i]);
                  dout[i].download(mine);
                  dlse[i].download(mineLse);
                  assertThat(maxAbsError(mine, ref[i].output())).as("waiting call, round %d, set %d", round, i)
                      .isLessThan(4e-3);
                  assertThat(maxAbsError(mineLse, ref[i].lse())).isLessThan(2e-3);
                }
              }
              return null;
            }));
          }
          for (var f : done) {
            f.get();
          }
        }
      } finally {
        for (DeviceTensor[] ts : new DeviceTensor[][] {dq, dkv, dout, dlse}) {
          for (DeviceTensor t : ts) {
            if (t != null) {
              t.close();
            }
          }
        }
      }
    }
  }

  /**
   * The work-stealing decode kernels (FlashPlan#stealBlocks): B = 17, H = 16, E = 32 (a head dim that is not paced),
   * 8192 keys are 272 units on the resident blocks (two per SM of head dim 32's 96 KB), which take unstarted units and
   * then help each other through counters the kernel leaves at zero. On a caller stream with poisoned outputs, every
   * round must match the reference; a deterministic call runs one fixed split instead and gives the same bits every
   * time.
   */
  @Test
  void workStealingDecodeMatchesTheReferenceAndDeterministicCallsKeepTheirBits() {
    CudaContext ctx = clusterContext("the work-stealing rule is for devices with thread-block clusters");
    long b = 17, h = 16, lk = 8192, e = 32;
    FlashPlan plan = devicePlan(ctx, b * h, lk, e, false);
    assumeTrue(plan.steal() && plan.stealBlocks() < b * h, () -> "272 units do not steal on fewer blocks on "
        + ctx.device().multiprocessorCount() + " SMs: " + plan);
    decodeRoundsMatchTheReference(ctx, seeded("workStealingDecodeMatchesTheReferenceAndDeterministicCallsKeepTheirBits"),
        DType.BFLOAT16, b, h, lk, e, 5, false, true);
  }

  /**
   * The decode plans of KERNEL_NOTES.md v11 through the provider, each against the float64 reference with poisoned
   * outputs on a caller's stream: a one-split grid just over a wave on the narrow blocks (B = 9) and one just under it
   * on the short-tile blocks (B = 7), both of 1024 keys (K and V too small to pace), the same bits every round,
   * and a grid below a wave that steals on every resident block, the blocks beyond its 32 units helping from the
   * start (B = 2, head dim 32, which is not paced, 65536 keys, not deterministic).
   */
  @Test
  void narrowAndShortTileDecodeBlocksAndStealingWithHelpersMatchTheReference() {
    CudaContext ctx = clusterContext("these decode rules are for devices with thread-block clusters");
    Random rnd = seeded("narrowAndShortTileDecodeBlocksAndStealingWithHelpersMatchTheReference");
    long h = 16;
    // {B, Lk, E, deterministic (1 / 0)}
    for (long[] c : new long[][] {{9, 1024, 128, 1}, {7, 1024, 128, 1}, {2, 65_536, 32, 0}}) {
      long b = c[0], lk = c[1], e = c[2];
      boolean deterministic = c[3] == 1;
      DType dtype = deterministic ? DType.FLOAT16 : DType.BFLOAT16;
      FlashPlan plan = devicePlan(ctx, b * h, lk, e, deterministic);
      if (deterministic) {
        String traits = b == 9 ? FlashPlan.NARROW.name() : FlashPlan.SHORT_TILES.name();
        assumeTrue(plan.traitsName().equals(traits), () -> "B = " + b + " does not take " + traits + " here");
      } else {
        assumeTrue(plan.stealBlocks() > b * h, () -> "B = 2 does not steal with helpers here");
      }
      decodeRoundsMatchTheReference(ctx, rnd, dtype, b, h, lk, e, 4, deterministic);
    }
  }

  /**
   * Paced decode plans (KERNEL_NOTES.md v12, v13) through the provider against the float64 reference with poisoned
   * outputs on a caller's stream, deterministic calls keeping their bits: one split per (batch, head) (B = 6, 16384
   * keys), four splits merged through the workspace (B = 2), two splits of a length that ends inside a tile (B = 3,
   * 8200 keys), and grids of more than a wave, resident at once, on the narrow blocks (B = 9, 4096 keys) and the slim
   * ones (B = 18, 2050 keys).
   */
  @Test
  void pacedDecodePlansMatchTheReference() {
    CudaContext ctx = clusterContext("decode grids are paced on devices with thread-block clusters");
    Random rnd = seeded("pacedDecodePlansMatchTheReference");
    long h = 16, e = 128;
    // {B, Lk, splits}
    for (long[] c : new long[][] {{6, 16_384, 1}, {2, 16_384, 4}, {3, 8200, 2}, {9, 4096, 1}, {18, 2050, 1}}) {
      long b = c[0], lk = c[1];
      FlashPlan plan = devicePlan(ctx, b * h, lk, e, true);
      String traits = b == 9 ? FlashPlan.NARROW.name() : b == 18 ? FlashPlan.SLIM.name() : FlashPlan.DECODE[3].name();
      assumeTrue(plan.paced() && plan.splits() == c[2] && plan.traitsName().equals(traits), () -> "B = " + b
          + " is not paced in " + c[2] + " splits on " + traits + " here: " + plan);
      boolean bf16 = b == 6 || b == 18;
      decodeRoundsMatchTheReference(ctx, rnd, bf16 ? DType.BFLOAT16 : DType.FLOAT16, b, h, lk, e, 3, true, false);
    }
  }

  /**
   * The 128 KB decode traits of head dims 64 and 256 (KERNEL_NOTES.md v14: 8 KB warp tiles of K, four warps) and their
   * paced plans (v15) through the provider against the float64 reference with poisoned outputs on a caller's stream,
   * deterministic calls keeping their bits: head dim 256 with one split per head below half a wave (B = 8, H = 8,
   * 4096 keys, not paced) and four paced splits merged through the workspace (B = 4, 16384 keys), head dim 64 with two
   * paced splits (B = 2, H = 32, 16384 keys), paced grids of more than a wave, resident at once, on head dim 256's
   * compact blocks (B = 17, 1000 keys) and head dim 64's narrow ones (B = 5, 3000 keys), both at v17's slower pace, and
   * a grid of more than four waves that keeps one split at 4096 keys (v17; B = 17, H = 32, head dim 64), and a grid of
   * 3.4 waves whose last wave is 0.39 full, split in two and merged in a cluster (v18; B = 14, H = 32, 6001 keys).
   */
  @Test
  void headDim64And256DecodeBlocksMatchTheReference() {
    CudaContext ctx = clusterContext("these decode plans are for devices with thread-block clusters");
    Random rnd = seeded("headDim64And256DecodeBlocksMatchTheReference");
    FlashPlan.DecodeTraits compact256 = FlashPlan.DECODE_COMPACT[FlashPlan.headDimClass(256)];
    // {B, H, Lk, E, splits, paced (1 / 0), cluster (1 / 0)} and the traits each runs on
    long[][] cases = {{8, 8, 4096, 256, 1, 0, 0}, {4, 8, 16_384, 256, 4, 1, 0}, {2, 32, 16_384, 64, 2, 1, 0},
        {17, 8, 1000, 256, 1, 1, 0}, {5, 32, 3000, 64, 1, 1, 0}, {17, 32, 4096, 64, 1, 0, 0},
        {14, 32, 6001, 64, 2, 0, 1}};
    FlashPlan.DecodeTraits[] traits = {FlashPlan.DECODE[5], FlashPlan.DECODE[5], FlashPlan.DECODE[1], compact256,
        FlashPlan.NARROW_64, FlashPlan.DECODE[1], FlashPlan.DECODE[1]};
    for (int i = 0; i < cases.length; i++) {
      long[] c = cases[i];
      long b = c[0], h = c[1], lk = c[2], e = c[3];
      String name = traits[i].name();
      FlashPlan plan = devicePlan(ctx, b * h, lk, e, true);
      assumeTrue(plan.splits() == c[4] && plan.paced() == (c[5] == 1) && plan.cluster() == (c[6] == 1)
          && plan.traitsName().equals(name) && plan.headDim() == e, () -> "E = " + e + ", B = " + b + " does not run "
          + c[4] + (c[5] == 1 ? " paced" : "") + (c[6] == 1 ? " cluster" : "") + " splits on " + name + " here: "
          + plan);
      boolean bf16 = i % 2 == 1;
      decodeRoundsMatchTheReference(ctx, rnd, bf16 ? DType.BFLOAT16 : DType.FLOAT16, b, h, lk, e, 3, true, false);
    }
  }

  /**
   * Head dims 96 and 192's workspace splits where they stole before (v20, {@link FlashPlan#pairedSplits} beyond 4096
   * keys, {@link FlashPlan#PAIRED_LONG}): head dim 96 at 192 units in four splits (B = 6, H = 32, 8200 keys), head dim
   * 192 at 80 units in eight (B = 5, H = 16, 8200 keys), and a grid whose FA2 split count would put more blocks than
   * SMs filling the resident blocks instead (head dim 192, 96 units in eight splits, 4096 keys), against the float64
   * reference with poisoned outputs, each plan the same whether deterministic or not.
   */
  @Test
  void pairedHeadDimDecodeSplitsMatchTheReference() {
    CudaContext ctx = clusterContext("these decode plans are for devices with thread-block clusters");
    Random rnd = seeded("pairedHeadDimDecodeSplitsMatchTheReference");
    // {B, H, Lk, E, splits}
    long[][] cases = {{6, 32, 8200, 96, 4}, {5, 16, 8200, 192, 8}, {6, 16, 4096, 192, 8}};
    for (int i = 0; i < cases.length; i++) {
      long[] c = cases[i];
      long b = c[0], h = c[1], lk = c[2], e = c[3];
      FlashPlan plan = devicePlan(ctx, b * h, lk, e, false);
      assumeTrue(plan.splits() == c[4] && plan.workspace() && !plan.steal() && !plan.cluster()
          && plan.equals(devicePlan(ctx, b * h, lk, e, true)), () -> "E = " + e + ", B = " + b + " does not run "
          + c[4] + " workspace splits here: " + plan);
      boolean bf16 = i % 2 == 1;
      decodeRoundsMatchTheReference(ctx, rnd, bf16 ? DType.BFLOAT16 : DType.FLOAT16, b, h, lk, e, 2, true);
    }
  }

  /**
   * Decode calls whose heads are stack-aligned on an H100 (its five memory stacks: heads a multiple of 5 x 64 KB apart)
   * start each block at a hashed key tile (v19, {@link FlashPlan#stagger}) on every plan that takes it, against the
   * float64 reference with poisoned outputs, deterministic calls keeping their bits: paced one split on head dim 128's
   * narrow blocks (B = 9, 5120 keys), head dim 64's (B = 5) and head dim 256's compact ones (B = 20), two paced splits
   * through the workspace (head dim 64, B = 2, 10240 keys), a padded head dim (120, 4096 keys: 3 x 327,680 bytes),
   * head dim 128's short-tile blocks (B = 6, 1280 keys, not paced), and the two cluster splits that replace stealing
   * (B = 20, 10240 keys; deterministic calls run one split, also staggered).
   */
  @Test
  void stackAlignedDecodeCallsStartStaggeredAndMatchTheReference() {
    CudaContext ctx = clusterContext("these decode plans are for devices with thread-block clusters");
    assumeTrue(FlashPlan.Dram.of(ctx.device()).stackAlignment() == 5 * FlashPlan.STACK_GRANULE,
        () -> "the cases are stack-aligned on five HBM stacks; this memory: " + FlashPlan.Dram.of(ctx.device()));
    Random rnd = seeded("stackAlignedDecodeCallsStartStaggeredAndMatchTheReference");
    // {B, H, Lk, E, splits, paced (1 / 0), cluster (1 / 0)} and the traits each runs on
    long[][] cases = {{9, 16, 5120, 128, 1, 1, 0}, {5, 32, 5120, 64, 1, 1, 0}, {20, 8, 5120, 256, 1, 1, 0},
        {2, 32, 10_240, 64, 2, 1, 0}, {7, 16, 4096, 120, 1, 1, 0}, {6, 16, 1280, 128, 1, 0, 0},
        {20, 16, 10_240, 128, 2, 0, 1}};
    FlashPlan.DecodeTraits[] traits = {FlashPlan.NARROW, FlashPlan.NARROW_64,
        FlashPlan.DECODE_COMPACT[FlashPlan.headDimClass(256)], FlashPlan.DECODE[1], FlashPlan.DECODE[3],
        FlashPlan.SHORT_TILES, FlashPlan.DECODE[3]};
    for (int i = 0; i < cases.length; i++) {
      long[] c = cases[i];
      long b = c[0], h = c[1], lk = c[2], e = c[3];
      String name = traits[i].name();
      boolean cluster = c[6] == 1;
      FlashPlan plan = devicePlan(ctx, b * h, lk, e, !cluster);
      assumeTrue(plan.stagger() && plan.splits() == c[4] && plan.paced() == (c[5] == 1) && plan.cluster() == cluster
          && plan.traitsName().equals(name), () -> "E = " + e + ", B = " + b + " does not run " + c[4]
          + (c[5] == 1 ? " paced" : "") + (cluster ? " cluster" : "") + " staggered splits on " + name + " here: "
          + plan);
      boolean bf16 = i % 2 == 1;
      boolean[] modes = cluster ? new boolean[] {false, true} : new boolean[] {true, false};
      decodeRoundsMatchTheReference(ctx, rnd, bf16 ? DType.BFLOAT16 : DType.FLOAT16, b, h, lk, e, 2, modes);
    }
  }

  /**
   * Head dim 256's decode grids that FlashPlan runs on the main kernel (two blocks per SM, no split, no workspace):
   * head dim 256 and a padded 232, then GQA's packed rows under a bottom-right mask, against the float64 reference.
   */
  @Test
  void headDim256DecodeGridsOnTheMainKernelMatchTheReference() {
    CudaContext ctx = clusterContext("these decode plans are for devices with thread-block clusters");
    Random rnd = seeded("headDim256DecodeGridsOnTheMainKernelMatchTheReference");
    // {B, H, Lk, E}
    long[][] cases = {{28, 8, 1000, 256}, {56, 8, 300, 232}};
    for (int i = 0; i < cases.length; i++) {
      long[] c = cases[i];
      long b = c[0], h = c[1], lk = c[2], e = c[3];
      FlashPlan plan = devicePlan(ctx, b * h, lk, e, true);
      assumeTrue(!plan.split(), () -> "E = " + e + ", B = " + b + " does not run on the main kernel here: " + plan);
      boolean bf16 = i % 2 == 1;
      decodeRoundsMatchTheReference(ctx, rnd, bf16 ? DType.BFLOAT16 : DType.FLOAT16, b, h, lk, e, 2, true, false);
    }
    long b = 28, h = 16, hk = 8, lk = 777, e = 256;
    var d = ctx.device();
    FlashPlan plan = FlashPlan.of(b * hk, h / hk, lk, e, d.multiprocessorCount(), d.maxSharedMemoryPerBlockOptin(),
        false, true, false, FlashPlan.Dram.of(d));
    assumeTrue(!plan.split(), () -> "GQA, B = " + b + " does not run on the main kernel here: " + plan);
    gqaBottomRightMatchesTheReference(rnd, DType.FLOAT16, b, h, hk, 1, lk, e, 4e-3);
  }

  /**
   * One call on host tensors: {@code h} query heads on {@code hk} kv heads (GQA), a bottom-right causal mask, random
   * inputs of {@code dtype}; the output within {@code tolerance} of the float64 reference, the LSE within 2e-3.
   */
  private void gqaBottomRightMatchesTheReference(Random rnd, DType dtype, long b, long h, long hk, long lq, long lk,
      long e, double tolerance) {
    try (Arena arena = Arena.ofConfined()) {
      Tensor q = gaussian(arena, dtype, rnd, b, h, lq, e);
      Tensor k = gaussian(arena, dtype, rnd, b, hk, lk, e);
      Tensor v = gaussian(arena, dtype, rnd, b, hk, lk, e);
      Tensor o = Tensor.allocate(arena, dtype, b, h, lq, e);
      Tensor lse = Tensor.allocate(arena, DType.FLOAT32, b, h, lq);
      AttentionRequest r = AttentionRequest.create(q, k, v, o, lse, AttentionOptions.builder().enableGqa(true)
          .causal(CausalMode.BOTTOM_RIGHT).returnLse(true).build());
      provider.forward(r);
      var ref = ReferenceAttention.forward(r, DType.FLOAT64);
      assertThat(maxAbsError(o, ref.output())).isLessThan(tolerance);
      assertThat(maxAbsError(lse, ref.lse())).isLessThan(2e-3);
    }
  }

  /** Device 0's context; the test is skipped ({@code why}) where the device has no thread-block clusters. */
  private CudaContext clusterContext(String why) {
    FlashDevice device = provider.device(0);
    assumeTrue(device.clusters(), why);
    return device.context();
  }

  /** A generator seeded from the clock, its seed printed under {@code test}'s name for a rerun. */
  private static Random seeded(String test) {
    long seed = System.nanoTime();
    System.out.println(test + " seed " + seed);
    return new Random(seed);
  }

  /** The provider's plan on this device for a decode call of {@code batchHeads} units. */
  private static FlashPlan devicePlan(CudaContext ctx, long batchHeads, long lk, long e, boolean deterministic) {
    var d = ctx.device();
    return FlashPlan.of(batchHeads, 1, lk, e, d.multiprocessorCount(), d.maxSharedMemoryPerBlockOptin(), false, true,
        deterministic, FlashPlan.Dram.of(d));
  }

  /**
   * Runs a decode call ({@code b} x {@code h} heads, one query, {@code lk} keys of head dim {@code e}, random inputs of
   * {@code dtype}) on a caller's stream once per entry of {@code modes} (deterministic or not), {@code rounds} times
   * each with poisoned outputs, against the float64 reference (output within 4e-3 in fp16, 3e-2 in bf16; LSE within
   * 2e-3); deterministic calls must give the same bits every round.
   */
  private void decodeRoundsMatchTheReference(CudaContext ctx, Random rnd, DType dtype, long b, long h, long lk, long e,
      int rounds, boolean... modes) {
    double tolerance = dtype == DType.BFLOAT16 ? 3e-2 : 4e-3;
    try (Arena arena = Arena.ofConfined(); CudaStream stream = CudaStream.create(ctx)) {
      Tensor q = gaussian(arena, dtype, rnd, b, h, 1, e);
      Tensor kv = gaussian(arena, dtype, rnd, b, h, lk, e);
      Tensor o = Tensor.allocate(arena, dtype, b, h, 1, e);
      Tensor lse = Tensor.allocate(arena, DType.FLOAT32, b, h, 1);
      Tensor first = Tensor.allocate(arena, dtype, b, h, 1, e);
      Tensor nan = Tensor.allocate(arena, dtype, b, h, 1, e);
      for (long i = 0; i < b * h * e; i++) {
        nan.set(Double.NaN, i / (h * e), i / e % h, 0, i % e);
      }
      var ref = ReferenceAttention.forward(AttentionRequest.create(q, kv, kv, o, lse,
          AttentionOptions.builder().returnLse(true).build()), DType.FLOAT64);
      try (DeviceTensor dq = DeviceTensor.upload(ctx, q); DeviceTensor dkv = DeviceTensor.upload(ctx, kv);
          DeviceTensor dout = DeviceTensor.allocate(ctx, dtype, b, h, 1, e);
          DeviceTensor dlse = DeviceTensor.allocate(ctx, DType.FLOAT32, b, h, 1)) {
        for (boolean deterministic : modes) {
          AttentionRequest r = AttentionRequest.create(dq.tensor(), dkv.tensor(), dkv.tensor(), dout.tensor(),
              dlse.tensor(), AttentionOptions.builder().stream(stream.handle()).returnLse(true)
                  .deterministic(deterministic).build());
          for (int round = 0; round < rounds; round++) {
            dout.upload(nan);
            provider.forward(r);
            stream.synchronize();
            dout.download(o);
            dlse.download(lse);
            assertThat(maxAbsError(o, ref.output())).as("B = %d, deterministic %s, round %d", b, deterministic, round)
                .isLessThan(tolerance);
            assertThat(maxAbsError(lse, ref.lse())).isLessThan(2e-3);
            if (deterministic && round == 0) {
              dout.download(first);
            } else if (deterministic) {
              assertThat(o.hostSegment().mismatch(first.hostSegment())).as("round %d", round).isEqualTo(-1L);
            }
          }
        }
      }
    }
  }

  @Test
  void tenThousandCallsLeakNoDeviceMemory() {
    long seed = System.nanoTime();
    System.out.println("tenThousandCallsLeakNoDeviceMemory seed " + seed);
    Random rnd = new Random(seed);
    CudaContext ctx = provider.device(0).context();
    try (Arena arena = Arena.ofConfined()) {
      Tensor q = gaussian(arena, DType.FLOAT16, rnd, 1, 4, 33, 64);
      Tensor kv = gaussian(arena, DType.FLOAT16, rnd, 1, 4, 700, 64);
      Tensor o = Tensor.allocate(arena, DType.FLOAT16, 1, 4, 33, 64);
      Tensor dec = gaussian(arena, DType.FLOAT16, rnd, 1, 4, 1, 64);
      Tensor decOut = Tensor.allocate(arena, DType.FLOAT16, 1, 4, 1, 64);
      try (DeviceTensor dq = DeviceTensor.upload(ctx, q); DeviceTensor dkv = DeviceTensor.upload(ctx, kv);
           DeviceTensor dd = DeviceTensor.upload(ctx, dec); DeviceTensor ddo = DeviceTensor.upload(ctx, decOut);
           DeviceTensor dout = DeviceTensor.upload(ctx, o)) {
        AttentionRequest dev = AttentionRequest.create(dq.tensor(), dkv.tensor(), dkv.tensor(), dout.tensor(), null,
            AttentionOptions.builder().build());
        AttentionRequest decode = AttentionRequest.create(dd.tensor(), dkv.tensor(), dkv.tensor(), ddo.tensor(), null,
            AttentionOptions.builder().build());
        AttentionRequest host = AttentionRequest.create(q, kv, kv, o, null, AttentionOptions.builder().build());
        for (int i = 0; i < 20; i++) {
          provider.forward(dev);
          provider.forward(decode);
          provider.forward(host);
        }
        long before = ctx.memoryInfo()[0];
        for (int i = 0; i < 10_000; i++) {
          provider.forward(i % 3 == 0 ? dev : i % 3 == 1 ? decode : host);
        }
        long after = ctx.memoryInfo()[0];
        System.out.println("free device memory before " + before + ", after 10,000 calls " + after);
        assertThat(before - after).isLessThan(4L << 20);
      }
    }
  }
}
