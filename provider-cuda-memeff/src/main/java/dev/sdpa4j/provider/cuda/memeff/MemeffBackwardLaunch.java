package dev.sdpa4j.provider.cuda.memeff;

import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.AttentionShape;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.CausalMode;
import dev.sdpa4j.DType;
import dev.sdpa4j.Dropout;
import dev.sdpa4j.DropoutSeed;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * The three launches of one backward pass, in order: preprocess (D and the LSE in log2 units into the statistics
 * scratch), then either dK/dV and dQ (deterministic) or, when {@link #atomic}, dK/dV with dQ added atomically to a
 * zeroed fp32 accumulator and its conversion. Each carries the bytes of its {@code Params} struct (72 fields of 8
 * bytes, in the order of {@code memeff_bwd::Params} in {@code memeff_bwd.cu}); they differ only in the tile and chunk
 * counts.
 *
 * @param kernel the kernel instantiation
 * @param steps  the launches in order
 * @param flags  the {@code FLAG_*} bits passed to the kernels
 * @param atomic whether dQ goes through the fp32 accumulator (which the caller zeroes before the launches)
 */
record MemeffBackwardLaunch(MemeffBackwardKernel kernel, List<Step> steps, int flags, boolean atomic) {
  static final int FLAG_VEC_Q = 1;
  static final int FLAG_VEC_K = 2;
  static final int FLAG_VEC_V = 4;
  static final int FLAG_VEC_DO = 8;
  static final int FLAG_VEC_DQ = 16;
  static final int FLAG_VEC_DK = 32;
  static final int FLAG_VEC_DV = 64;
  static final int PARAM_BYTES = 72 * 8;
  private static final double LOG2E = 1.4426950408889634;

  /**
   * One kernel launch.
   *
   * @param name        the kernel's {@code extern "C"} name
   * @param blocks      blocks in the one-dimensional grid
   * @param threads     threads per block
   * @param sharedBytes dynamic shared memory
   * @param params      the parameter struct
   */
  record Step(String name, long blocks, int threads, int sharedBytes, byte[] params) {}

  /** Bytes of the fp32 statistics scratch: D and the log2 LSE for every query row. */
  static long statBytes(AttentionShape s) {
    return 2L * s.batch() * s.queryHeads() * s.queryLength() * Float.BYTES;
  }

  /** Bytes of the fp32 dQ accumulator of the atomic path: {@code [B, Hq, Lq, E]}. */
  static long accumulatorBytes(AttentionShape s) {
    return s.batch() * s.queryHeads() * s.queryLength() * s.headDim() * Float.BYTES;
  }

  /**
   * Whether the backward of {@code r} takes the atomic path: its kernel has one and the forward's options did not
   * ask for deterministic results.
   */
  static boolean atomic(AttentionRequest r) {
    AttentionShape s = r.shape();
    return !r.options().deterministic()
        && MemeffBackwardKernel.select(r.dtype(), s.headDim(), s.valueHeadDim()).atomicDq();
  }

  /**
   * Plans the backward pass of {@code r} on operands in device memory.
   *
   * @param mask        the mask as {@code [B, Hq, Lq, Lk]} with broadcast strides, or null without a tensor mask
   * @param maskType    the mask's element type (ignored without a mask)
   * @param stat        device address of {@link #statBytes} bytes of scratch
   * @param accumulator device address of {@link #accumulatorBytes} zeroed bytes when {@link #atomic}, else ignored
   */
  static MemeffBackwardLaunch plan(BackwardRequest r, MemeffLaunch.Operand q, MemeffLaunch.Operand k,
      MemeffLaunch.Operand v, MemeffLaunch.Operand o, MemeffLaunch.Operand dout, MemeffLaunch.Operand lse,
      MemeffLaunch.Operand mask, DType maskType, MemeffLaunch.Operand dq, MemeffLaunch.Operand dk,
      MemeffLaunch.Operand dv, long stat, long accumulator) {
    AttentionRequest f = r.forward();
    AttentionShape s = f.shape();
    DType dt = f.dtype();
    MemeffBackwardKernel kernel = MemeffBackwardKernel.select(dt, s.headDim(), s.valueHeadDim());
    boolean atomic = atomic(f);
    long acc = atomic ? accumulator : 0;
    long[] qSizes = {s.batch(), s.queryHeads(), s.queryLength()};
    long[] kvSizes = {s.batch(), s.kvHeads(), s.keyLength()};
    long vec = 16 / dt.byteSize();
    boolean rowsE = s.headDim() % vec == 0;
    boolean rowsEv = s.valueHeadDim() % vec == 0;
    int flags = 0;
    if (rowsE && rows16(q, qSizes, vec)) {
      flags |= FLAG_VEC_Q;
    }
    if (rowsE && rows16(k, kvSizes, vec)) {
      flags |= FLAG_VEC_K;
    }
    if (rowsEv && rows16(v, kvSizes, vec)) {
      flags |= FLAG_VEC_V;
    }
    if (rowsEv && rows16(dout, qSizes, vec)) {
      flags |= FLAG_VEC_DO;
    }
    if (pairs(dq, qSizes, dt)) {
      flags |= FLAG_VEC_DQ;
    }
    if (pairs(dk, kvSizes, dt)) {
      flags |= FLAG_VEC_DK;
    }
    if (pairs(dv, kvSizes, dt)) {
      flags |= FLAG_VEC_DV;
    }
    int maskCode = mask == null ? 0 : MemeffLaunch.maskCode(f.maskKind(), maskType);
    long rows = s.batch() * s.queryHeads() * s.queryLength();
    long keyTiles = kernel.keyTiles(s.keyLength());
    long dkdvChunks = kernel.dkdvChunks(s.headDim(), s.valueHeadDim());
    long queryTiles = kernel.queryTiles(s.queryLength());
    long dqChunks = kernel.dqChunks(s.headDim());
    MemeffLaunch.Operand[] ops = {q, k, v, o, dout, lse, maskCode == 0 ? null : mask, dq, dk, dv};
    long rowBlocks = (rows + 7) / 8;
    Step pre = new Step(kernel.preName(), rowBlocks, MemeffBackwardKernel.PRE_THREADS, 0,
        params(r, ops, maskCode, flags, stat, acc, 0, 0));
    long dkdvBlocks = keyTiles * s.batch() * s.kvHeads() * dkdvChunks;
    byte[] dkdvParams = params(r, ops, maskCode, flags, stat, acc, keyTiles, dkdvChunks);
    if (atomic) {
      Step dkdvq = new Step(kernel.dkdvqName(s.headDim(), s.valueHeadDim()), dkdvBlocks, kernel.dkdvThreads(), kernel.dkdvqSharedBytes(),
          dkdvParams);
      Step convert = new Step(kernel.convertName(), rowBlocks, MemeffBackwardKernel.PRE_THREADS, 0, pre.params());
      return new MemeffBackwardLaunch(kernel, List.of(pre, dkdvq, convert), flags, true);
    }
    Step dkdv = new Step(kernel.dkdvName(), dkdvBlocks, kernel.dkdvThreads(), kernel.dkdvSharedBytes(), dkdvParams);
    Step dqStep = new Step(kernel.dqName(), queryTiles * s.batch() * s.queryHeads() * dqChunks, kernel.dqThreads(),
        kernel.dqSharedBytes(), params(r, ops, maskCode, flags, stat, acc, queryTiles, dqChunks));
    return new MemeffBackwardLaunch(kernel, List.of(pre, dkdv, dqStep), flags, false);
  }

  /** The blocks of the largest launch, for the grid-size limit. */
  static long maxBlocks(AttentionShape s, MemeffBackwardKernel kernel) {
    long rows = s.batch() * s.queryHeads() * s.queryLength();
    long dkdv = kernel.keyTiles(s.keyLength()) * s.batch() * s.kvHeads()
        * kernel.dkdvChunks(s.headDim(), s.valueHeadDim());
    long dq = kernel.queryTiles(s.queryLength()) * s.batch() * s.queryHeads() * kernel.dqChunks(s.headDim());
    return Math.max((rows + 7) / 8, Math.max(dkdv, dq));
  }

  private static boolean rows16(MemeffLaunch.Operand t, long[] sizes, long vec) {
    return t.strides()[3] == 1 && t.outerStridesMultipleOf(sizes, vec) && t.address() % 16 == 0;
  }

  private static boolean pairs(MemeffLaunch.Operand t, long[] sizes, DType dt) {
    return t.strides()[3] == 1 && t.outerStridesMultipleOf(sizes, 2) && t.address() % (2L * dt.byteSize()) == 0;
  }

  private static byte[] params(BackwardRequest r, MemeffLaunch.Operand[] ops, int maskCode, int flags, long stat,
      long accumulator, long tiles, long chunks) {
    AttentionRequest f = r.forward();
    AttentionShape s = f.shape();
    ByteBuffer p = ByteBuffer.allocate(PARAM_BYTES).order(ByteOrder.nativeOrder());
    for (MemeffLaunch.Operand t : ops) {
      p.putLong(t == null ? 0 : t.address());
    }
    p.putLong(stat);
    for (MemeffLaunch.Operand t : ops) {
      for (int d = 0; d < 4; d++) {
        p.putLong(t == null ? 0 : t.strides()[d]);
      }
    }
    CausalMode causal = f.causal();
    long causalOffset = causal == CausalMode.BOTTOM_RIGHT ? s.keyLength() - s.queryLength() : 0;
    p.putLong(s.batch()).putLong(s.queryHeads()).putLong(s.groupSize()).putLong(s.queryLength())
        .putLong(s.keyLength()).putLong(s.headDim()).putLong(s.valueHeadDim()).putLong(maskCode)
        .putLong(causal == CausalMode.NONE ? 0 : 1).putLong(causalOffset).putLong(flags).putLong(tiles)
        .putLong(chunks);
    double dropoutP = f.dropoutP();
    DropoutSeed seed = f.dropoutSeed().orElse(new DropoutSeed(0, 0));
    p.putDouble(f.scale() * LOG2E);
    p.putDouble(f.scale());
    Dropout.Mask dropout = f.dropoutMask();
    p.putDouble(dropout.keepScale());
    p.putLong(dropoutP > 0 ? 1 : 0);
    p.putLong(Integer.toUnsignedLong(dropout.threshold()));
    p.putLong(seed.seed()).putLong(seed.offset());
    p.putLong(accumulator);
    return p.array();
  }
}
