// Development and benchmark harness for flash_fwd_sm90.cu (the Hopper wgmma main kernels): the provider's kernels
// (same source) and experimental traits behind a C ABI for ctypes (flashlib.py), and a standalone main for
// compute-sanitizer (-DHARNESS_MAIN). sm_90a only. Not part of the provider; see bench/README.md.
#include "../src/main/cuda/flash_fwd_sm90.cu"
#include <cuda_runtime.h>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <vector>

typedef void (*Kernel)(const FlashParams);

// experimental traits (bench only): Sm90Traits<D, kBlockN, kStages>
typedef Sm90Traits<64, 128, 3> X64_n128s3;
typedef Sm90Traits<128, 128, 3> X128_n128s3;
typedef Sm90Traits<128, 64, 3> X128_n64s3;
typedef Sm90Traits<96, 128, 3> X96_n128s3;
typedef Sm90Traits<96, 64, 2> X96_n64s2;
typedef Sm90Traits<192, 64, 3> X192_n64s3;
typedef Sm90Traits<192, 96, 2> X192_n96s2;
#define X_ENTRY(NAME, T) FLASH_SM90_ENTRY(x_f16_##NAME, T, false, true) FLASH_SM90_ENTRY(x_bf16_##NAME, T, true, true)
X_ENTRY(d64_n128s3, X64_n128s3)
X_ENTRY(d128_n128s3, X128_n128s3)
X_ENTRY(d128_n64s3, X128_n64s3)
X_ENTRY(d96_n128s3, X96_n128s3)
X_ENTRY(d96_n64s2, X96_n64s2)
X_ENTRY(d192_n64s3, X192_n64s3)
X_ENTRY(d192_n96s2, X192_n96s2)

// row: {f16, bf16}; 0..4 the shipped kernels (FlashPlan.HOPPER: D = 64, 96, 128, 192, 256), 5..9 their _pad kernels,
// then flashlib.SM90_VARIANTS
static Kernel kTable[][2] = {
    {flash_fwd_sm90_f16_d64, flash_fwd_sm90_bf16_d64},
    {flash_fwd_sm90_f16_d96, flash_fwd_sm90_bf16_d96},
    {flash_fwd_sm90_f16_d128, flash_fwd_sm90_bf16_d128},
    {flash_fwd_sm90_f16_d192, flash_fwd_sm90_bf16_d192},
    {flash_fwd_sm90_f16_d256, flash_fwd_sm90_bf16_d256},
    {flash_fwd_sm90_f16_d64_pad, flash_fwd_sm90_bf16_d64_pad},
    {flash_fwd_sm90_f16_d96_pad, flash_fwd_sm90_bf16_d96_pad},
    {flash_fwd_sm90_f16_d128_pad, flash_fwd_sm90_bf16_d128_pad},
    {flash_fwd_sm90_f16_d192_pad, flash_fwd_sm90_bf16_d192_pad},
    {flash_fwd_sm90_f16_d256_pad, flash_fwd_sm90_bf16_d256_pad},
    {x_f16_d64_n128s3, x_bf16_d64_n128s3},
    {x_f16_d128_n128s3, x_bf16_d128_n128s3},
    {x_f16_d128_n64s3, x_bf16_d128_n64s3},
    {x_f16_d96_n128s3, x_bf16_d96_n128s3},
    {x_f16_d96_n64s2, x_bf16_d96_n64s2},
    {x_f16_d192_n64s3, x_bf16_d192_n64s3},
    {x_f16_d192_n96s2, x_bf16_d192_n96s2},
};

extern "C" int harness_sm90_launch(const FlashParams* p, int index, int bf16, int gx, int gy, int threads, int smem,
                                   void* stream) {
  Kernel k = kTable[index][bf16 ? 1 : 0];
  cudaError_t e = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return (int)e;
  k<<<dim3(gx, gy, 1), threads, smem, (cudaStream_t)stream>>>(*p);
  return (int)cudaGetLastError();
}

#ifdef HARNESS_MAIN
#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("%s: %s\n", #x, cudaGetErrorName(e_)); exit(1); } } while (0)
// index: kTable row; D, BN, stages: its traits; E: the head dim (below D for a _pad row)
static void run(int index, int D, int BN, int S, int E, int B, int H, int G, int Lq, int Lk, int causal, int br,
                int bf16) {
  int Hk = H / G;
  size_t nq = (size_t)B * H * Lq * E, nk = (size_t)B * Hk * Lk * E;
  std::vector<unsigned short> hq(nq), hk(nk);
  for (auto& x : hq) x = bf16 ? 0x3f00 + (rand() & 0xff) : 0x3800 + (rand() & 0x3ff);
  for (auto& x : hk) x = bf16 ? 0x3f00 + (rand() & 0xff) : 0x3800 + (rand() & 0x3ff);
  unsigned short *q, *k, *v, *o; float* lse;
  CK(cudaMalloc(&q, nq * 2)); CK(cudaMalloc(&k, nk * 2)); CK(cudaMalloc(&v, nk * 2)); CK(cudaMalloc(&o, nq * 2));
  CK(cudaMalloc(&lse, (size_t)B * H * Lq * 4));
  CK(cudaMemcpy(q, hq.data(), nq * 2, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(k, hk.data(), nk * 2, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(v, hk.data(), nk * 2, cudaMemcpyHostToDevice));
  FlashParams p = {};
  p.q = (i64)q; p.k = (i64)k; p.v = (i64)v; p.o = (i64)o; p.lse = (i64)lse;
  p.q_batch_stride = (i64)H * Lq * E; p.q_head_stride = (i64)Lq * E; p.q_row_stride = E;
  p.k_batch_stride = (i64)Hk * Lk * E; p.k_head_stride = (i64)Lk * E; p.k_row_stride = E;
  p.v_batch_stride = p.k_batch_stride; p.v_head_stride = p.k_head_stride; p.v_row_stride = E;
  p.o_batch_stride = p.q_batch_stride; p.o_head_stride = p.q_head_stride; p.o_row_stride = E;
  p.lse_batch_stride = (i64)H * Lq; p.lse_head_stride = Lq; p.lse_row_stride = 1;
  p.batch = B; p.heads = H; p.kv_group = G; p.seqlen_q = Lq; p.seqlen_k = Lk; p.head_dim = E;
  p.causal = causal; p.causal_offset = br ? Lk - Lq : 0; p.num_splits = 1;
  p.scale = 1.f / sqrtf((float)E); p.scale_log2 = p.scale * 1.4426950408889634f;
  int smem = 128 * D * 2 + 2 * S * BN * D * 2;
  CK((cudaError_t)harness_sm90_launch(&p, index, bf16, (Lq + 127) / 128, B * H, 256, smem, 0));
  CK(cudaDeviceSynchronize());
  printf("ok index=%d D=%d E=%d B=%d H=%d G=%d Lq=%d Lk=%d causal=%d br=%d bf16=%d\n", index, D, E, B, H, G, Lq, Lk,
         causal, br, bf16);
  cudaFree(q); cudaFree(k); cudaFree(v); cudaFree(o); cudaFree(lse);
}
int main() {
  run(0, 64, 128, 2, 64, 1, 2, 1, 200, 333, 1, 0, 0);
  run(0, 64, 128, 2, 64, 2, 2, 2, 300, 1000, 0, 0, 1);
  run(2, 128, 128, 2, 128, 1, 2, 2, 130, 70, 1, 1, 1);
  run(2, 128, 128, 2, 128, 1, 2, 1, 257, 700, 0, 0, 0);
  run(2, 128, 128, 2, 128, 1, 2, 1, 100, 513, 1, 1, 0);
  run(4, 256, 64, 2, 256, 1, 1, 1, 70, 100, 1, 1, 1);
  run(4, 256, 64, 2, 256, 1, 2, 1, 300, 450, 0, 0, 0);
  run(4, 256, 64, 2, 256, 1, 2, 1, 1, 9, 1, 0, 0);
  // v22: head dims 96 (64-byte swizzle) and 192, and the _pad kernels
  run(1, 96, 128, 2, 96, 1, 2, 1, 200, 333, 1, 0, 0);
  run(1, 96, 128, 2, 96, 2, 4, 2, 130, 700, 1, 1, 1);
  run(3, 192, 64, 2, 192, 1, 2, 1, 257, 450, 0, 0, 0);
  run(3, 192, 64, 2, 192, 1, 2, 2, 100, 513, 1, 1, 1);
  run(5, 64, 128, 2, 40, 1, 2, 1, 200, 333, 1, 0, 1);
  run(6, 96, 128, 2, 80, 1, 2, 1, 300, 1000, 0, 0, 0);
  run(7, 128, 128, 2, 112, 1, 2, 2, 130, 70, 1, 1, 0);
  run(8, 192, 64, 2, 160, 1, 2, 1, 257, 300, 1, 0, 1);
  run(9, 256, 64, 2, 248, 1, 1, 1, 70, 100, 1, 1, 0);
  printf("sanitize harness done\n");
  return 0;
}
#endif
