package dev.sdpa4j.provider.cuda.flash;

import com.google.auto.service.AutoService;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.DType;
import dev.sdpa4j.DropoutResolution;
import dev.sdpa4j.MaskKind;
import dev.sdpa4j.Platform;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.cuda.CudaContext;
import dev.sdpa4j.cuda.CudaDriver;
import dev.sdpa4j.cuda.DevicePointers;
import dev.sdpa4j.spi.AttentionProvider;
import dev.sdpa4j.spi.Availability;
import dev.sdpa4j.spi.Capabilities;
import dev.sdpa4j.spi.ComputeCapability;
import dev.sdpa4j.spi.DeviceInfo;
import dev.sdpa4j.spi.Determinism;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;

/**
 * {@code cuda-flash}: FlashAttention-2-class attention on NVIDIA tensor cores (compute capability 8.0 and up), forward
 * and backward: fp16 and bf16, head dims 8..256 in multiples of 8, causal masking in both alignments, grouped-query
 * attention, custom scale, LSE, dropout ({@link dev.sdpa4j.Dropout}'s mask at both {@link DropoutResolution}s,
 * regenerated in the backward pass). No arbitrary masks (use {@code cuda-memeff} or {@code math}).
 *
 * <p>Backward: dQ is accumulated in fp32 with atomic adds, so its last bits may vary from run to run; with
 * {@link dev.sdpa4j.AttentionOptions#deterministic()} a separate dQ kernel sums the key tiles in a fixed order
 * (the same bits every run, slower). Forward results are bit-reproducible, except decode calls whose blocks share the
 * keys by work stealing (compute capability 9.0: grids of 0.8 to 4 waves of blocks, one per 16 query rows, from 8192
 * keys, larger grids from 32768 keys and smaller ones from 65536 keys, where they are not paced; see
 * {@code FlashPlan}), whose last bits may vary
 * from call to call; with deterministic() they run a fixed split. Paced decode calls (compute capability 9.0, head dim
 * 128, a grid of at most one wave: each warp loads its key tiles at a set rate, so that every block reads its share of
 * the DRAM bandwidth and none runs ahead) are bit-reproducible. Workspace: fp32 rowsum(dO o O) (4 bytes per query row) and, outside deterministic mode, the fp32 dQ
 * accumulator (4 bytes per element of dQ).
 *
 * <p>Memory: tensors in the device's memory are used in place on the caller's stream
 * ({@link dev.sdpa4j.AttentionOptions#stream()}); the call returns once the work is queued, except with stream 0
 * (the provider's own per-thread stream), where it waits for the result. Inputs whose address or strides do not
 * allow 16-byte loads (or outputs not 4-byte aligned) are first copied to aligned scratch memory on the device, in
 * stream order (in the backward pass also gradients whose head dim is strided). Host tensors are copied to the device
 * and back (the convenience path; it waits). Apart from that scratch, fp32 partial results of the split-KV path for
 * short query blocks and the backward workspace above, no device memory is used. Training (backward) with head dims
 * above 64 needs more than 99 KiB of shared memory per block and is refused on devices that allow less (sm_86,
 * sm_89).
 */
@AutoService(AttentionProvider.class)
public final class CudaFlashProvider implements AttentionProvider {
  /** The provider's name. */
  public static final String NAME = "cuda-flash";
  /** The lowest compute capability (Ampere: mma.sync bf16, cp.async). */
  public static final ComputeCapability MIN_COMPUTE_CAPABILITY = new ComputeCapability(8, 0);
  /** Grid limit on batch x query heads. */
  static final long MAX_BATCH_HEADS = 65_535;

  private final ConcurrentHashMap<Integer, FlashDevice> state = new ConcurrentHashMap<>();

  /** Cheap; touches the driver only when asked for availability or devices. */
  public CudaFlashProvider() {}

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public int priority() {
    return 300;
  }

  @Override
  public Availability availability() {
    return CudaDriver.availability(MIN_COMPUTE_CAPABILITY);
  }

  @Override
  public List<DeviceInfo> devices() {
    return CudaDriver.deviceInfos(MIN_COMPUTE_CAPABILITY, capabilities());
  }

  /** What the kernels support, the same on every device of compute capability 8.0 and up. */
  static Capabilities capabilities() {
    return Capabilities.builder()
        .dtypes(DType.FLOAT16, DType.BFLOAT16)
        .headDims(8, 256, 8)
        .maskKinds(MaskKind.CAUSAL_TOP_LEFT, MaskKind.CAUSAL_BOTTOM_RIGHT)
        .dropoutResolutions(DropoutResolution.WORD, DropoutResolution.BYTE)
        .backward(true)
        .groupedQuery(true)
        .customScale(true)
        .logSumExp(true)
        .unitHeadDimStride(true)
        .memory(Platform.CUDA, Platform.HOST)
        .determinism(Determinism.ON_REQUEST)
        .minComputeCapability(MIN_COMPUTE_CAPABILITY)
        .build();
  }

  @Override
  public List<String> notSupportedReasons(AttentionRequest request) {
    List<String> reasons = new ArrayList<>(AttentionProvider.super.notSupportedReasons(request));
    if (!reasons.isEmpty()) {
      return reasons;
    }
    var s = request.shape();
    if (s.batch() * s.queryHeads() > MAX_BATCH_HEADS) {
      reasons.add("batch x query heads = " + s.batch() * s.queryHeads() + " > " + MAX_BATCH_HEADS);
    }
    if (s.queryLength() > Integer.MAX_VALUE / 2 || s.keyLength() > Integer.MAX_VALUE / 2) {
      reasons.add("sequence length above " + Integer.MAX_VALUE / 2);
    }
    if (request.options().training()) {
      if (s.batch() * s.queryHeads() * s.queryLength() > Integer.MAX_VALUE) {
        reasons.add("backward: batch x query heads x query length above " + Integer.MAX_VALUE);
      }
      int ordinal = request.device().platform() == Platform.CUDA ? request.device().index()
          : deviceFor(request).map(d -> d.device().index()).orElse(0);
      int need = FlashBackwardPlan.sharedBytes(s.headDim());
      int have = device(ordinal).context().device().maxSharedMemoryPerBlockOptin();
      if (need > have) {
        reasons.add("backward with head dim " + s.headDim() + " needs " + need / 1024
            + " KiB of shared memory per block; this device allows " + have / 1024 + " KiB");
      }
    }
    if (request.device().platform() == Platform.CUDA) {
      CudaContext ctx = device(request.device().index()).context();
      reasons.addAll(DevicePointers.problems(ctx,
          new String[] {"query", "key", "value", "output", "lse"},
          new Tensor[] {request.query(), request.key(), request.value(), request.output(),
              request.lse().orElse(null)}));
    }
    return reasons;
  }

  @Override
  public void forward(AttentionRequest request) {
    int ordinal = request.device().platform() == Platform.HOST
        ? deviceFor(request).orElseThrow(() -> new IllegalStateException("no CUDA device")).device().index()
        : request.device().index();
    device(ordinal).forward(request);
  }

  @Override
  public void backward(BackwardRequest request) {
    AttentionRequest r = request.forward();
    int ordinal = r.device().platform() == Platform.HOST
        ? deviceFor(r).orElseThrow(() -> new IllegalStateException("no CUDA device")).device().index()
        : r.device().index();
    device(ordinal).backward(request);
  }

  FlashDevice device(int ordinal) {
    return state.computeIfAbsent(ordinal, i -> new FlashDevice(CudaContext.retainPrimary(i)));
  }
}
