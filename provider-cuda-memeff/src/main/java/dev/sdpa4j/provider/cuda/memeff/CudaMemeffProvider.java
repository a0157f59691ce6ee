package dev.sdpa4j.provider.cuda.memeff;

import com.google.auto.service.AutoService;
import dev.sdpa4j.AttentionArgumentException;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.AttentionShape;
import dev.sdpa4j.DType;
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
 * {@code cuda-memeff}: memory-efficient attention (xFormers' structure: query tiles streaming over the keys with an
 * online softmax, the output accumulated in registers) on NVIDIA GPUs of compute capability 8.0 and up. It takes what
 * {@code cuda-flash} does not: boolean and additive masks (fp32 or the query's dtype) of any shape broadcastable to
 * {@code [B, Hq, Lq, Lk]}, read through their strides and never materialised; fp32 (on tensor cores in the 3xTF32
 * split, fp32-level accuracy), fp16 and bf16; query/key and value head dims independent, each 4..512 in multiples of
 * 4; grouped-query attention; custom scale; LSE; causal masking in both alignments;
 * dropout with {@link dev.sdpa4j.Dropout}'s Philox mask, bit for bit. Backward (FlashAttention-2 structure, from
 * the forward's LSE, the dropout mask regenerated from seed and offset) for everything the forward takes; the mask gets
 * no gradient. The forward is always bit-reproducible; the backward is on request
 * ({@link dev.sdpa4j.AttentionOptions#deterministic()}): then it sums dK/dV of a grouped-query group inside one block
 * and computes dQ in a separate pass, with no atomics. Otherwise fp16/bf16 with head dims up to 128 add dQ atomically
 * in fp32 from the dK/dV kernel, which is faster but leaves dQ's last bits to the order in which blocks finish.
 *
 * <p>Memory: tensors in the device's memory are used in place through their strides (any strides) on the caller's
 * stream ({@link dev.sdpa4j.AttentionOptions#stream()}); the call returns once the kernels are queued, except with
 * stream 0 (the calling thread's per-thread stream), where it waits. The forward allocates no device memory; the
 * backward allocates {@code 8 * B * Hq * Lq} bytes of row statistics (and {@code 4 * B * Hq * Lq * E} bytes for the
 * atomic dQ), stream-ordered. Host tensors are copied to the device and back (the convenience path; it waits).
 */
@AutoService(AttentionProvider.class)
public final class CudaMemeffProvider implements AttentionProvider {
  /** The provider's name. */
  public static final String NAME = "cuda-memeff";
  /** The lowest compute capability: cp.async, ldmatrix and bf16/tf32 mma.sync are sm_80 instructions. */
  public static final ComputeCapability MIN_COMPUTE_CAPABILITY = new ComputeCapability(8, 0);

  private final ConcurrentHashMap<Integer, MemeffDevice> state = new ConcurrentHashMap<>();

  /** Cheap; touches the driver only when asked for availability or devices. */
  public CudaMemeffProvider() {}

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public int priority() {
    return 200;
  }

  @Override
  public Availability availability() {
    return CudaDriver.availability(MIN_COMPUTE_CAPABILITY);
  }

  @Override
  public List<DeviceInfo> devices() {
    return CudaDriver.deviceInfos(MIN_COMPUTE_CAPABILITY, capabilities());
  }

  /**
   * What the kernels support, the same on every device of compute capability 8.0 and up. Head dims are multiples of 4
   * (16-bit head dims that are not multiples of 8 are read element by element instead of in 16-byte copies).
   */
  static Capabilities capabilities() {
    return Capabilities.builder()
        .dtypes(DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16)
        .headDims(4, MemeffKernel.MAX_HEAD_DIM, 4)
        .valueDimMayDiffer(MemeffKernel.MAX_HEAD_DIM)
        .maskKinds(MaskKind.CAUSAL_TOP_LEFT, MaskKind.CAUSAL_BOTTOM_RIGHT, MaskKind.BOOLEAN, MaskKind.ADDITIVE)
        .dropout(true)
        .backward(true)
        .groupedQuery(true)
        .customScale(true)
        .logSumExp(true)
        .unitHeadDimStride(false)
        .memory(Platform.CUDA, Platform.HOST)
        .determinism(Determinism.ON_REQUEST)
        .minComputeCapability(MIN_COMPUTE_CAPABILITY)
        .build();
  }

  /**
   * The reasons beyond {@link Capabilities}, for a request the capabilities accept: the kernels' index limits (the
   * backward's too when the request is for training). Pure; does not touch the device.
   */
  static List<String> shapeReasons(AttentionRequest request) {
    List<String> reasons = new ArrayList<>();
    AttentionShape s = request.shape();
    if (s.queryLength() > Integer.MAX_VALUE || s.keyLength() > Integer.MAX_VALUE) {
      reasons.add("sequence length above " + Integer.MAX_VALUE);
    }
    MemeffKernel k = MemeffKernel.select(request.dtype(), s.headDim(), s.valueHeadDim());
    double blocks = (double) k.queryTiles(s.queryLength()) * s.batch() * s.queryHeads()
        * k.valueChunks(s.valueHeadDim());
    if (blocks > Integer.MAX_VALUE) {
      reasons.add("batch x heads x query tiles x value chunks = " + (long) blocks + " blocks > " + Integer.MAX_VALUE);
    }
    if (request.options().training()) {
      long backwardBlocks = MemeffBackwardLaunch.maxBlocks(s,
          MemeffBackwardKernel.select(request.dtype(), s.headDim(), s.valueHeadDim()));
      if (backwardBlocks > Integer.MAX_VALUE) {
        reasons.add("backward needs " + backwardBlocks + " blocks in one grid > " + Integer.MAX_VALUE);
      }
    }
    return reasons;
  }

  @Override
  public List<String> notSupportedReasons(AttentionRequest request) {
    List<String> reasons = new ArrayList<>(AttentionProvider.super.notSupportedReasons(request));
    if (!reasons.isEmpty()) {
      return reasons;
    }
    reasons.addAll(shapeReasons(request));
    if (request.device().platform() == Platform.CUDA) {
      CudaContext ctx = device(request.device().index()).context();
      reasons.addAll(DevicePointers.problems(ctx,
          new String[] {"query", "key", "value", "output", "lse", "options.attnMask"},
          new Tensor[] {request.query(), request.key(), request.value(), request.output(),
              request.lse().orElse(null), request.mask().orElse(null)}));
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

  /**
   * Runs the backward pass where the forward ran (its device memory and stream, or host tensors staged through the
   * device). Device tensors of the backward call are checked like the forward's before anything is queued.
   *
   * @throws AttentionArgumentException when a gradient or dOut handle is not memory of the forward's device
   */
  @Override
  public void backward(BackwardRequest request) {
    AttentionRequest f = request.forward();
    if (f.device().platform() == Platform.HOST) {
      int ordinal = deviceFor(f).orElseThrow(() -> new IllegalStateException("no CUDA device")).device().index();
      device(ordinal).backward(request);
      return;
    }
    MemeffDevice d = device(f.device().index());
    String[] names = {"gradOutput", "gradQuery", "gradKey", "gradValue"};
    Tensor[] tensors = {request.gradOutput(), request.gradQuery(), request.gradKey(), request.gradValue()};
    for (int i = 0; i < names.length; i++) {
      String problem = DevicePointers.problem(d.context(), tensors[i], names[i]).orElse(null);
      if (problem != null) {
        throw new AttentionArgumentException(names[i], problem);
      }
    }
    d.backward(request);
  }

  MemeffDevice device(int ordinal) {
    return state.computeIfAbsent(ordinal, i -> new MemeffDevice(CudaContext.retainPrimary(i)));
  }
}
