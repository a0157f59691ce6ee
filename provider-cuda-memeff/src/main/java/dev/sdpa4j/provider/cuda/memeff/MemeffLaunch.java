package dev.sdpa4j.provider.cuda.memeff;

import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.AttentionShape;
import dev.sdpa4j.CausalMode;
import dev.sdpa4j.DType;
import dev.sdpa4j.Dropout;
import dev.sdpa4j.DropoutSeed;
import dev.sdpa4j.MaskKind;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * One launch of the forward kernel: the kernel, its grid and shared memory, and the bytes of its {@code Params}
 * struct (49 fields of 8 bytes, in the order of {@code memeff::Params} in {@code memeff_fwd.cu}).
 *
 * @param kernel      the kernel instantiation
 * @param blocks      blocks in the (one-dimensional) grid
 * @param sharedBytes dynamic shared memory
 * @param flags       the {@code FLAG_*} bits passed to the kernel
 * @param params      the parameter struct
 */
record MemeffLaunch(MemeffKernel kernel, long blocks, int sharedBytes, int flags, byte[] params) {
  static final int FLAG_VEC_Q = 1;
  static final int FLAG_VEC_K = 2;
  static final int FLAG_VEC_V = 4;
  static final int FLAG_VEC_O = 8;
  static final int FLAG_VEC_MASK = 16;
  static final int FLAG_MASK_ROW = 32;
  static final int FLAG_MASK_TILE = 64;
  static final int FLAG_BATCH_FIRST = 128;
  static final int PARAM_BYTES = 49 * 8;
  private static final double LOG2E = 1.4426950408889634;

  /**
   * A tensor as the kernel sees it: the device address of element 0 and four element strides (rank-3 tensors have
   * a zero fourth stride; broadcast dimensions have stride 0).
   */
  record Operand(long address, long[] strides) {
    Operand {
      strides = strides.clone();
      if (strides.length != 4) {
        throw new IllegalArgumentException("expected 4 strides, got " + strides.length);
      }
    }

    /** Whether every stride of {@code sizes} with more than one index, except the last, is a multiple of {@code n}. */
    boolean outerStridesMultipleOf(long[] sizes, long n) {
      for (int d = 0; d < 3; d++) {
        if (sizes[d] > 1 && strides[d] % n != 0) {
          return false;
        }
      }
      return true;
    }
  }

  /** The kernel's mask kind code: 0 none, 1 bool, 2 fp32, 3 fp16, 4 bf16. */
  static int maskCode(MaskKind kind, DType maskType) {
    if (kind != MaskKind.BOOLEAN && kind != MaskKind.ADDITIVE) {
      return 0;
    }
    return switch (maskType) {
      case BOOL -> 1;
      case FLOAT32 -> 2;
      case FLOAT16 -> 3;
      case BFLOAT16 -> 4;
      default -> throw new IllegalArgumentException("mask dtype " + maskType);
    };
  }

  /**
   * Plans the launch of {@code r} on operands in device memory.
   *
   * @param mask            the mask as {@code [B, Hq, Lq, Lk]} with broadcast strides, or null without a tensor mask
   * @param maskType        the mask's element type (ignored without a mask)
   * @param lse             the LSE ({@code [B, Hq, Lq]} strides, fourth 0), or null when not wanted
   * @param maxSharedBytes  the device's opt-in shared-memory limit per block
   */
  static MemeffLaunch plan(AttentionRequest r, Operand q, Operand k, Operand v, Operand o, Operand lse, Operand mask,
      DType maskType, int maxSharedBytes) {
    AttentionShape s = r.shape();
    DType dt = r.dtype();
    MemeffKernel kernel = MemeffKernel.select(dt, s.headDim(), s.valueHeadDim());
    long[] qSizes = {s.batch(), s.queryHeads(), s.queryLength()};
    long[] kvSizes = {s.batch(), s.kvHeads(), s.keyLength()};
    long[] maskSizes = {s.batch(), s.queryHeads(), s.queryLength()};
    int esz = dt.byteSize();
    long vec = 16 / esz;
    int flags = 0;
    // 16-byte copies need whole 16-byte rows (head dims that are multiples of 16 bytes) at 16-byte addresses
    boolean rowsE = s.headDim() % vec == 0;
    boolean rowsEv = s.valueHeadDim() % vec == 0;
    if (rowsE && q.strides()[3] == 1 && q.outerStridesMultipleOf(qSizes, vec) && q.address() % 16 == 0) {
      flags |= FLAG_VEC_Q;
    }
    if (rowsE && k.strides()[3] == 1 && k.outerStridesMultipleOf(kvSizes, vec) && k.address() % 16 == 0) {
      flags |= FLAG_VEC_K;
    }
    if (rowsEv && v.strides()[3] == 1 && v.outerStridesMultipleOf(kvSizes, vec) && v.address() % 16 == 0) {
      flags |= FLAG_VEC_V;
    }
    if (o.strides()[3] == 1 && o.outerStridesMultipleOf(qSizes, 2) && o.address() % (2L * esz) == 0) {
      flags |= FLAG_VEC_O;
    }
    int shared = kernel.tileBytes();
    int maskCode = mask == null ? 0 : maskCode(r.maskKind(), maskType);
    if (maskCode != 0) {
      int msz = maskType.byteSize();
      long[] ms = mask.strides();
      if (ms[3] == 1 && mask.outerStridesMultipleOf(maskSizes, 2) && mask.address() % (2L * msz) == 0) {
        flags |= FLAG_VEC_MASK;
      }
      boolean rowsAligned = ms[3] == 1 && mask.address() % 16 == 0 && (ms[0] * msz) % 16 == 0
          && (ms[1] * msz) % 16 == 0 && (ms[2] * msz) % 16 == 0;
      if (rowsAligned) {
        boolean rowBroadcast = ms[2] == 0;
        int extra = kernel.maskBytes(rowBroadcast ? 1 : kernel.blockM(), msz);
        if (shared + extra <= maxSharedBytes) {
          shared += extra;
          flags |= rowBroadcast ? FLAG_MASK_ROW : FLAG_MASK_TILE;
          if (!rowBroadcast && ms[0] == 0 && s.batch() > 1) {
            flags |= FLAG_BATCH_FIRST;
          }
        }
      }
    }
    long qTiles = kernel.queryTiles(s.queryLength());
    long chunks = kernel.valueChunks(s.valueHeadDim());
    long blocks = qTiles * s.batch() * s.queryHeads() * chunks;

    ByteBuffer p = ByteBuffer.allocate(PARAM_BYTES).order(ByteOrder.nativeOrder());
    p.putLong(q.address()).putLong(k.address()).putLong(v.address()).putLong(o.address())
        .putLong(lse == null ? 0 : lse.address()).putLong(maskCode == 0 ? 0 : mask.address());
    for (Operand t : new Operand[] {q, k, v, o, lse, maskCode == 0 ? null : mask}) {
      for (int d = 0; d < 4; d++) {
        p.putLong(t == null ? 0 : t.strides()[d]);
      }
    }
    CausalMode causal = r.causal();
    long causalOffset = causal == CausalMode.BOTTOM_RIGHT ? s.keyLength() - s.queryLength() : 0;
    p.putLong(s.batch()).putLong(s.queryHeads()).putLong(s.groupSize()).putLong(s.queryLength())
        .putLong(s.keyLength()).putLong(s.headDim()).putLong(s.valueHeadDim()).putLong(maskCode)
        .putLong(causal == CausalMode.NONE ? 0 : 1).putLong(causalOffset).putLong(flags).putLong(qTiles)
        .putLong(chunks);
    double dropoutP = r.dropoutP();
    DropoutSeed seed = r.dropoutSeed().orElse(new DropoutSeed(0, 0));
    p.putDouble(r.scale() * LOG2E);
    Dropout.Mask dropout = r.dropoutMask();
    p.putDouble(dropout.keepScale());
    p.putLong(dropoutP > 0 ? 1 : 0);
    p.putLong(Integer.toUnsignedLong(dropout.threshold()));
    p.putLong(seed.seed()).putLong(seed.offset());
    return new MemeffLaunch(kernel, blocks, shared, flags, p.array());
  }
}
