// Development and benchmark harness: the provider's kernels (same source) behind a C ABI for ctypes (bench.py),
// and a standalone main for compute-sanitizer. Not part of the provider; see bench/README.md.
#include "../src/main/cuda/flash_fwd.cu"
#include <cuda_runtime.h>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <vector>

typedef void (*Kernel)(const FlashParams);
#define ROW(D) {flash_fwd_f16_d##D, flash_fwd_bf16_d##D, flash_fwd_split_f16_d##D, flash_fwd_split_bf16_d##D, \
                flash_fwd_f16_d##D##_pad, flash_fwd_bf16_d##D##_pad, flash_fwd_split_f16_d##D##_pad,           \
                flash_fwd_split_bf16_d##D##_pad}
static Kernel kTable[6][8] = {ROW(32), ROW(64), ROW(96), ROW(128), ROW(192), ROW(256)};
static const int kDims[6] = {32, 64, 96, 128, 192, 256};

extern "C" int harness_launch(const FlashParams* p, int dclass, int bf16, int split, int gx, int gy, int gz,
                              int threads, int smem, void* stream) {
  // same rule as FlashDevice.java: the _pad entry when the head dim is below the specialisation's
  Kernel k = kTable[dclass][(p->head_dim == kDims[dclass] ? 0 : 4) + (split ? 2 : 0) + (bf16 ? 1 : 0)];
  cudaError_t e = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return (int)e;
  k<<<dim3(gx, gy, gz), threads, smem, (cudaStream_t)stream>>>(*p);
  return (int)cudaGetLastError();
}

#ifndef HARNESS_MAIN
// experimental tilings, fp16 only, for bench.py's variant table
typedef Traits<64, 128, 64, 4> V64a;
typedef Traits<64, 128, 128, 8> V64b;
typedef Traits<128, 128, 64, 8> V128a;
typedef Traits<128, 128, 32, 4> V128b;
typedef Traits<256, 128, 64, 8> V256a;
typedef Traits<256, 64, 32, 4> V256b;
FLASH_ENTRY(var_d64a, V64a, false, false)
FLASH_ENTRY(var_d64b, V64b, false, false)
FLASH_ENTRY(var_d128a, V128a, false, false)
FLASH_ENTRY(var_d128b, V128b, false, false)
FLASH_ENTRY(var_d256a, V256a, false, false)
FLASH_ENTRY(var_d256b, V256b, false, false)

extern "C" int harness_variant(const FlashParams* p, int dclass, int variant, int gx, int gy, int threads, int smem,
                               void* stream) {
  Kernel k = dclass == 1 ? (variant == 1 ? var_d64a : var_d64b)
           : dclass == 3 ? (variant == 1 ? var_d128a : var_d128b) : (variant == 1 ? var_d256a : var_d256b);
  cudaError_t e = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return (int)e;
  k<<<dim3(gx, gy, 1), threads, smem, (cudaStream_t)stream>>>(*p);
  return (int)cudaGetLastError();
}
#endif

extern "C" int harness_combine(const FlashParams* p, int bf16, long long rows, void* stream) {
  int blocks = (int)((rows + 3) / 4);
  if (bf16) flash_combine_bf16<<<blocks, 128, 0, (cudaStream_t)stream>>>(*p);
  else flash_combine_f16<<<blocks, 128, 0, (cudaStream_t)stream>>>(*p);
  return (int)cudaGetLastError();
}

#ifdef HARNESS_MAIN
// compute-sanitizer driver: runs representative shapes (same launch rules as FlashKernels.java) on random data.
struct Cfg { int D, BM, BN, W, SBM, SBN, SW; };
static const Cfg kCfg[6] = {{32, 128, 128, 4, 16, 128, 1}, {64, 128, 128, 4, 16, 128, 1}, {96, 128, 64, 4, 16, 64, 1},
                            {128, 128, 64, 4, 16, 64, 1}, {192, 128, 64, 8, 16, 64, 1}, {256, 64, 64, 4, 16, 64, 1}};
#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("%s: %s\n", #x, cudaGetErrorName(e_)); exit(1); } } while (0)
static void run(int B, int H, int G, int Lq, int Lk, int E, int causal, int br, int bf16, int splits) {
  int dc = E <= 32 ? 0 : E <= 64 ? 1 : E <= 96 ? 2 : E <= 128 ? 3 : E <= 192 ? 4 : 5;
  const Cfg& c = kCfg[dc];
  int Hk = H / G;
  size_t nq = (size_t)B * H * Lq * E, nk = (size_t)B * Hk * Lk * E;
  std::vector<unsigned short> hq(nq), hk(nk);
  for (auto& x : hq) x = bf16 ? 0x3f00 + (rand() & 0xff) : 0x3800 + (rand() & 0x3ff);
  for (auto& x : hk) x = bf16 ? 0x3f00 + (rand() & 0xff) : 0x3800 + (rand() & 0x3ff);
  unsigned short *q, *k, *v, *o; float *lse, *oacc = nullptr, *lacc = nullptr;
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
  p.causal = causal; p.causal_offset = br ? Lk - Lq : 0; p.num_splits = splits;
  p.scale = 1.f / sqrtf((float)E); p.scale_log2 = p.scale * 1.4426950408889634f;
  int split = splits > 1 || Lq <= 16;
  int BM = split ? c.SBM : c.BM, BN = split ? c.SBN : c.BN, W = split ? c.SW : c.W;
  int smem = (BM + 2 * BN) * c.D * 2;
  if (split) {
    CK(cudaMalloc(&oacc, (size_t)splits * B * H * Lq * E * 4)); CK(cudaMalloc(&lacc, (size_t)splits * B * H * Lq * 4));
    p.o_accum = (i64)oacc; p.lse_accum = (i64)lacc;
  }
  CK((cudaError_t)harness_launch(&p, dc, bf16, split, (Lq + BM - 1) / BM, B * H, split ? splits : 1, W * 32, smem, 0));
  if (split) CK((cudaError_t)harness_combine(&p, bf16, (long long)B * H * Lq, 0));
  CK(cudaDeviceSynchronize());
  printf("ok B=%d H=%d G=%d Lq=%d Lk=%d E=%d causal=%d br=%d bf16=%d splits=%d\n", B, H, G, Lq, Lk, E, causal, br, bf16, splits);
  cudaFree(q); cudaFree(k); cudaFree(v); cudaFree(o); cudaFree(lse); cudaFree(oacc); cudaFree(lacc);
}
int main() {
  run(1, 2, 1, 200, 333, 64, 1, 0, 0, 1);
  run(1, 2, 2, 130, 70, 128, 1, 1, 1, 1);
  run(1, 2, 1, 65, 129, 80, 0, 0, 0, 1);
  run(1, 2, 1, 100, 150, 120, 1, 0, 1, 1);
  run(1, 1, 1, 70, 100, 256, 1, 1, 1, 1);
  run(1, 2, 1, 129, 64, 192, 0, 0, 0, 1);
  run(1, 2, 1, 33, 47, 96, 1, 0, 1, 1);
  run(1, 2, 1, 1, 1, 32, 0, 0, 0, 1);
  run(1, 2, 1, 1, 1000, 128, 0, 0, 0, 4);
  run(1, 2, 2, 5, 700, 64, 1, 1, 1, 3);
  run(1, 1, 1, 3, 300, 256, 0, 0, 0, 2);
  printf("sanitize harness done\n");
  return 0;
}
#endif
