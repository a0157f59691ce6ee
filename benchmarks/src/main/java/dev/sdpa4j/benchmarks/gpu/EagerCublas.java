package dev.sdpa4j.benchmarks.gpu;

import static org.bytedeco.cuda.global.cublas.CUBLAS_COMPUTE_32F;
import static org.bytedeco.cuda.global.cublas.CUBLAS_GEMM_DEFAULT;
import static org.bytedeco.cuda.global.cublas.CUBLAS_OP_N;
import static org.bytedeco.cuda.global.cublas.CUBLAS_OP_T;
import static org.bytedeco.cuda.global.cublas.cublasCreate_v2;
import static org.bytedeco.cuda.global.cublas.cublasDestroy_v2;
import static org.bytedeco.cuda.global.cublas.cublasGemmStridedBatchedEx;
import static org.bytedeco.cuda.global.cublas.cublasGetStatusString;
import static org.bytedeco.cuda.global.cublas.cublasSetStream_v2;
import static org.bytedeco.cuda.global.cudart.CUDA_R_16BF;
import static org.bytedeco.cuda.global.cudart.CUDA_R_16F;

import dev.sdpa4j.benchmarks.BenchCase;
import dev.sdpa4j.cuda.CudaContext;
import dev.sdpa4j.cuda.CudaStream;
import dev.sdpa4j.cuda.Dim3;
import dev.sdpa4j.cuda.KernelArgs;
import org.bytedeco.cuda.cublas.cublasContext;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;

/**
 * Attention the eager way, as PyTorch's eager code computes it on CUDA: cuBLAS strided-batched GEMMs
 * ({@code cublasGemmStridedBatchedEx}, fp16/bf16 inputs and outputs, fp32 accumulation) with the scores
 * materialised in device memory, and a softmax kernel between them. Self-attention or not, one head per batch entry
 * ({@code Hq = Hkv}), {@code E = Ev}, row-major contiguous {@code [B, H, L, E]} tensors.
 *
 * <p>Forward: {@code S = scale·Q·Kᵀ} ({@code [B·H, Lq, Lk]}, the input dtype), {@code P = softmax(S)} with top-left
 * causal masking in the kernel (a second {@code [B·H, Lq, Lk]} buffer), with dropout {@code Pd = P·keep/(1−p)} (a
 * third), then {@code O = P·V} (or {@code Pd·V}). Backward: {@code dV = Pdᵀ·dO}, {@code dPd = dO·Vᵀ}, {@code dS =
 * P∘(dP − rowsum(dP∘P))} with {@code dP = dPd·keep/(1−p)} (the keep mask is regenerated from the seed, not stored),
 * written over {@code S}, {@code dQ = scale·dS·K}, {@code dK = scale·dSᵀ·Q}. So a forward holds two score-sized
 * buffers, a training step three (four with dropout): see {@link #scoreBuffers}.
 *
 * <p>cuBLAS is column-major: a row-major {@code [r, c]} matrix is read as its transpose, so {@code S = Q·Kᵀ} is the
 * column-major {@code Sᵀ = K·Qᵀ} = {@code gemm(T, N, m=Lk, n=Lq, k=E, A=K, B=Q)}, and so on for each product.
 * Not thread-safe: one instance per thread.
 */
final class EagerCublas implements AutoCloseable {
  private final GpuDevice device;
  private final CudaStream stream;
  private final cublasContext handle = new cublasContext();
  private final FloatPointer one = new FloatPointer(1f);
  private final FloatPointer zero = new FloatPointer(0f);
  private final FloatPointer scaleHolder = new FloatPointer(1);

  /** A cuBLAS handle working on {@code stream}. */
  EagerCublas(GpuDevice device, CudaStream stream) {
    this.device = device;
    this.stream = stream;
    try (CudaContext.Scope s = device.context().enter()) {
      check(cublasCreate_v2(handle), "cublasCreate");
      check(cublasSetStream_v2(handle, new CUstream_st(GpuDevice.at(stream.handle()))), "cublasSetStream");
    }
  }

  /** Score-sized ({@code [B·H, Lq, Lk]}) buffers a call of case {@code c} holds at once. */
  static int scoreBuffers(BenchCase c, boolean training) {
    return (training ? 3 : 2) + (c.dropout() > 0 ? 1 : 0);
  }

  /**
   * Device addresses of one call's tensors and buffers; {@code pd} is used only with dropout, the gradients only by
   * {@link #backward}.
   */
  record Buffers(long q, long k, long v, long out, long s, long p, long pd, long dOut, long dq, long dk, long dv,
                 long dp) {}

  /**
   * The forward, queued on the stream: {@code out = dropout(softmax(scale·Q·Kᵀ [causal]))·V}; {@code s}, {@code p}
   * (and {@code pd}) receive the scores and weights.
   */
  void forward(BenchCase c, double scale, int seed, Buffers b) {
    int bh = c.batch() * c.heads();
    int lq = c.seqLen();
    int lk = c.kvLen();
    int e = c.headDim();
    int type = type(c);
    try (CudaContext.Scope s = device.context().enter()) {
      gemm(CUBLAS_OP_T, CUBLAS_OP_N, lk, lq, e, (float) scale, b.k(), e, (long) lk * e, b.q(), e, (long) lq * e,
          b.s(), lk, (long) lq * lk, bh, type);
      device.function(c.dtype().equals("bf16") ? "softmax_fwd_bf16" : "softmax_fwd_f16").launch(
          Dim3.of(bh * lq), Dim3.of(threads(lk)), 0, stream, KernelArgs.builder().pointer(b.s()).pointer(b.p())
              .pointer(c.dropout() > 0 ? b.pd() : 0).i32(lq).i32(lk).i32(c.causal() ? 1 : 0)
              .f32((float) c.dropout()).i32(seed).build());
      long weights = c.dropout() > 0 ? b.pd() : b.p();
      gemm(CUBLAS_OP_N, CUBLAS_OP_N, e, lq, lk, 1f, b.v(), e, (long) lk * e, weights, lk, (long) lq * lk, b.out(), e,
          (long) lq * e, bh, type);
    }
  }

  /**
   * The backward of the last {@link #forward} on the same buffers, queued on the stream: {@code dq}, {@code dk} and
   * {@code dv} from {@code dOut}; overwrites {@code s} (with dS) and {@code dp}.
   */
  void backward(BenchCase c, double scale, int seed, Buffers b) {
    int bh = c.batch() * c.heads();
    int lq = c.seqLen();
    int lk = c.kvLen();
    int e = c.headDim();
    int type = type(c);
    long qe = (long) lq * e;
    long ke = (long) lk * e;
    long ss = (long) lq * lk;
    try (CudaContext.Scope s = device.context().enter()) {
      long weights = c.dropout() > 0 ? b.pd() : b.p();
      // dV = Pdᵀ·dO: column-major dVᵀ = dOᵀ·Pd
      gemm(CUBLAS_OP_N, CUBLAS_OP_T, e, lk, lq, 1f, b.dOut(), e, qe, weights, lk, ss, b.dv(), e, ke, bh, type);
      // dPd = dO·Vᵀ: column-major dPdᵀ = V·dOᵀ
      gemm(CUBLAS_OP_T, CUBLAS_OP_N, lk, lq, e, 1f, b.v(), e, ke, b.dOut(), e, qe, b.dp(), lk, ss, bh, type);
      // dS over S
      device.function(c.dtype().equals("bf16") ? "softmax_bwd_bf16" : "softmax_bwd_f16").launch(
          Dim3.of(bh * lq), Dim3.of(threads(lk)), 0, stream, KernelArgs.builder().pointer(b.p()).pointer(b.dp())
              .pointer(b.s()).i32(lk).f32((float) c.dropout()).i32(seed).build());
      // dQ = scale·dS·K: column-major dQᵀ = Kᵀ·dSᵀ
      gemm(CUBLAS_OP_N, CUBLAS_OP_N, e, lq, lk, (float) scale, b.k(), e, ke, b.s(), lk, ss, b.dq(), e, qe, bh, type);
      // dK = scale·dSᵀ·Q: column-major dKᵀ = Qᵀ·dS
      gemm(CUBLAS_OP_N, CUBLAS_OP_T, e, lk, lq, (float) scale, b.q(), e, qe, b.s(), lk, ss, b.dk(), e, ke, bh, type);
    }
  }

  private static int threads(int lk) {
    return lk >= 4096 ? 512 : lk >= 512 ? 256 : 128;
  }

  private static int type(BenchCase c) {
    return switch (c.dtype()) {
      case "fp16" -> CUDA_R_16F;
      case "bf16" -> CUDA_R_16BF;
      default -> throw new IllegalArgumentException("the cuBLAS eager baseline takes fp16 or bf16, not " + c.dtype());
    };
  }

  private void gemm(int opA, int opB, int m, int n, int k, float alpha, long a, int lda, long strideA, long b, int ldb,
      long strideB, long c, int ldc, long strideC, int batch, int type) {
    FloatPointer al = alpha == 1f ? one : scaleHolder.put(0, alpha);
    check(cublasGemmStridedBatchedEx(handle, opA, opB, m, n, k, al, GpuDevice.at(a), type, lda, strideA,
        GpuDevice.at(b), type, ldb, strideB, zero, GpuDevice.at(c), type, ldc, strideC, batch, CUBLAS_COMPUTE_32F,
        CUBLAS_GEMM_DEFAULT), "cublasGemmStridedBatchedEx(m=" + m + ", n=" + n + ", k=" + k + ", batch=" + batch + ")");
  }

  private static void check(int status, String call) {
    if (status != 0) {
      BytePointer text = cublasGetStatusString(status);
      String msg = call + " failed: cuBLAS status " + status + (text == null || text.isNull() ? "" : " ("
          + text.getString() + ")");
      if (status == org.bytedeco.cuda.global.cublas.CUBLAS_STATUS_ALLOC_FAILED) {
        throw new OutOfMemoryError(msg);
      }
      throw new IllegalStateException(msg);
    }
  }

  @Override
  public void close() {
    try (CudaContext.Scope s = device.context().enter()) {
      cublasDestroy_v2(handle);
    }
    one.close();
    zero.close();
    scaleHolder.close();
  }
}
