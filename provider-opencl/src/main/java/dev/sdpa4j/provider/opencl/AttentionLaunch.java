package dev.sdpa4j.provider.opencl;

import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.AttentionShape;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.CausalMode;
import dev.sdpa4j.DType;
import dev.sdpa4j.Dropout;
import dev.sdpa4j.DropoutSeed;
import dev.sdpa4j.Tensor;
import org.jocl.cl_command_queue;
import org.jocl.cl_mem;

/**
 * Runs the kernels of one forward or backward call on a queue of a context: binds the tensors, sets the arguments
 * (sizes, strides, mask, causal offset, scale, dropout) and enqueues. The grids are those documented in
 * {@code flash_attention.cl}.
 */
final class AttentionLaunch {
  private static final double LOG2E = 1.4426950408889634;

  private AttentionLaunch() {}

  static void forward(AttentionRequest r, ContextRuntime rt, cl_command_queue queue, boolean ownQueue) {
    AttentionShape s = r.shape();
    KernelProgram program = rt.program(r.dtype(),
        KernelProgram.headDimBucket(rt.device(), Math.max(s.headDim(), s.valueHeadDim())));
    TileTraits t = program.traits();
    KernelProgram.Kernels kernels = program.borrow();
    try (Buffers buffers = new Buffers(rt, queue, ownQueue)) {
      KernelArgs a = new KernelArgs(kernels.forward(), "attn_fwd")
          .tensor(buffers.input(r.query()))
          .tensor(buffers.input(r.key()))
          .tensor(buffers.input(r.value()))
          .tensor(buffers.output(r.output()));
      if (r.lse().isPresent()) {
        a.tensor(buffers.output(r.lse().get())).i32(1);
      } else {
        a.absent().i32(0);
      }
      mask(a, r, buffers);
      sizes(a, r);
      dropout(a, r);
      a.enqueue(queue, new long[] {groups(s.queryLength(), t.tileM()) * t.workGroupSize(), s.queryHeads(), s.batch()},
          new long[] {t.workGroupSize(), 1, 1});
      buffers.finish();
    } finally {
      program.release(kernels);
    }
  }

  static void backward(BackwardRequest br, ContextRuntime rt, cl_command_queue queue, boolean ownQueue) {
    AttentionRequest r = br.forward();
    AttentionShape s = r.shape();
    KernelProgram program = rt.program(r.dtype(),
        KernelProgram.headDimBucket(rt.device(), Math.max(s.headDim(), s.valueHeadDim())));
    TileTraits t = program.traits();
    KernelProgram.Kernels kernels = program.borrow();
    try (Buffers buffers = new Buffers(rt, queue, ownQueue)) {
      Buffers.Bound q = buffers.input(r.query());
      Buffers.Bound k = buffers.input(r.key());
      Buffers.Bound v = buffers.input(r.value());
      Buffers.Bound o = buffers.input(r.output());
      Buffers.Bound dout = buffers.input(br.gradOutput());
      Buffers.Bound lse = buffers.input(r.lse().orElseThrow());
      Buffers.Bound dq = buffers.output(br.gradQuery());
      Buffers.Bound dk = buffers.output(br.gradKey());
      Buffers.Bound dv = buffers.output(br.gradValue());
      cl_mem dsum = buffers.scratch(4L * s.batch() * s.queryHeads() * s.queryLength(), "dsum");

      new KernelArgs(kernels.preprocess(), "attn_bwd_pre")
          .tensor(o).tensor(dout).mem(dsum)
          .i32((int) s.queryLength()).i32((int) s.valueHeadDim()).i32((int) s.queryHeads())
          .enqueue(queue, new long[] {groups(s.queryLength(), 64) * 64, s.queryHeads(), s.batch()}, null);

      KernelArgs kv = new KernelArgs(kernels.keyValueGrad(), "attn_bwd_dkdv")
          .tensor(q).tensor(k).tensor(v).tensor(dout).tensor(lse).mem(dsum).tensor(dk).tensor(dv);
      mask(kv, r, buffers);
      sizes(kv, r).f32((float) r.scale());
      dropout(kv, r);
      kv.enqueue(queue, new long[] {groups(s.keyLength(), t.tileM()) * t.workGroupSize(), s.kvHeads(), s.batch()},
          new long[] {t.workGroupSize(), 1, 1});

      KernelArgs qa = new KernelArgs(kernels.queryGrad(), "attn_bwd_dq")
          .tensor(q).tensor(k).tensor(v).tensor(dout).tensor(lse).mem(dsum).tensor(dq);
      mask(qa, r, buffers);
      sizes(qa, r).f32((float) r.scale());
      dropout(qa, r);
      qa.enqueue(queue, new long[] {groups(s.queryLength(), t.tileM()) * t.workGroupSize(), s.queryHeads(), s.batch()},
          new long[] {t.workGroupSize(), 1, 1});
      buffers.finish();
    } finally {
      program.release(kernels);
    }
  }

  /** The mask arguments: buffer, element offset, broadcast strides, kind (0 none, 1 bool, 2 fp32, 3 storage type). */
  private static void mask(KernelArgs a, AttentionRequest r, Buffers buffers) {
    if (r.mask().isEmpty()) {
      a.absent().i32(0);
      return;
    }
    Tensor m = r.mask().get();
    int kind = m.dtype() == DType.BOOL ? 1 : m.dtype() == DType.FLOAT32 ? 2 : 3;
    a.tensor(buffers.input(m)).i32(kind);
  }

  /** Lq, Lk, E, Ev, Hq, group size, causal flag, causal offset, scale in base-2 units. */
  private static KernelArgs sizes(KernelArgs a, AttentionRequest r) {
    AttentionShape s = r.shape();
    long causalOffset = r.causal() == CausalMode.BOTTOM_RIGHT ? s.keyLength() - s.queryLength() : 0;
    return a.i32((int) s.queryLength()).i32((int) s.keyLength()).i32((int) s.headDim()).i32((int) s.valueHeadDim())
        .i32((int) s.queryHeads()).i32((int) s.groupSize())
        .i32(r.causal() == CausalMode.NONE ? 0 : 1).i64(causalOffset)
        .f32((float) (r.scale() * LOG2E));
  }

  /** Dropout flag, threshold, keep scale, Philox key (seed low, seed high) and counter word c3 (offset). */
  private static void dropout(KernelArgs a, AttentionRequest r) {
    if (r.dropoutP() <= 0) {
      a.i32(0).i32(0).f32(1f).i32(0).i32(0).i32(0);
      return;
    }
    DropoutSeed seed = r.dropoutSeed().orElseThrow();
    Dropout.Mask mask = r.dropoutMask();
    a.i32(1).i32(mask.threshold()).f32((float) mask.keepScale())
        .i32((int) seed.seed()).i32((int) (seed.seed() >>> 32)).i32((int) seed.offset());
  }

  private static long groups(long n, int tile) {
    return (n + tile - 1) / tile;
  }
}
