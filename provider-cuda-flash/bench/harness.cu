// Development and benchmark harness: the provider's kernels (same source) behind a C ABI for ctypes (bench.py),
// and a standalone main for compute-sanitizer. Not part of the provider; see bench/README.md.
#include "../src/main/cuda/flash_fwd.cu"
#include <cuda_runtime.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <vector>

typedef void (*Kernel)(const FlashParams);
// main kernels, then the decode kernels of FlashPlan.DECODE ([1]) and FlashPlan.DECODE_COMPACT ([2]) per head-dim class;
// within a row: f16, bf16, f16 _pad, bf16 _pad
#define ROW(D) {flash_fwd_f16_d##D, flash_fwd_bf16_d##D, flash_fwd_f16_d##D##_pad, flash_fwd_bf16_d##D##_pad}
#define DEC(D, TR) {flash_decode_f16_d##D##_##TR, flash_decode_bf16_d##D##_##TR, flash_decode_f16_d##D##_##TR##_pad, \
                    flash_decode_bf16_d##D##_##TR##_pad}
static Kernel kTable[3][6][4] = {
    {ROW(32), ROW(64), ROW(96), ROW(128), ROW(192), ROW(256)},
    {DEC(32, n64w4s3), DEC(64, n64w4s2), DEC(96, n16w4s4), DEC(128, n32w4s2), DEC(192, n16w4s2), DEC(256, n16w4s2)},
    {DEC(32, n64w4s3), DEC(64, n32w4s3), DEC(96, n16w4s4), DEC(128, n16w4s3), DEC(192, n16w4s2), DEC(256, n16w2s3)}};
static const int kDims[6] = {32, 64, 96, 128, 192, 256};
// the _cl decode kernels (cluster launch) of FlashPlan.DECODE ([0]) and FlashPlan.DECODE_COMPACT ([1])
#define DECC(D, TR) {flash_decode_f16_d##D##_##TR##_cl, flash_decode_bf16_d##D##_##TR##_cl, \
                     flash_decode_f16_d##D##_##TR##_cl_pad, flash_decode_bf16_d##D##_##TR##_cl_pad}
static Kernel kClusterTable[2][6][4] = {
    {DECC(32, n64w4s3), DECC(64, n64w4s2), DECC(96, n16w4s4), DECC(128, n32w4s2), DECC(192, n16w4s2), DECC(256, n16w4s2)},
    {DECC(32, n64w4s3), DECC(64, n32w4s3), DECC(96, n16w4s4), DECC(128, n16w4s3), DECC(192, n16w4s2), DECC(256, n16w2s3)}};

// the _ws decode kernels (work stealing, one block per (m-block, batch, head)) of FlashPlan.DECODE ([0]) and
// FlashPlan.DECODE_COMPACT ([1])
#define DECW(D, TR) {flash_decode_f16_d##D##_##TR##_ws, flash_decode_bf16_d##D##_##TR##_ws, \
                     flash_decode_f16_d##D##_##TR##_ws_pad, flash_decode_bf16_d##D##_##TR##_ws_pad}
static Kernel kStealTable[2][6][4] = {
    {DECW(32, n64w4s3), DECW(64, n64w4s2), DECW(96, n16w4s4), DECW(128, n32w4s2), DECW(192, n16w4s2), DECW(256, n16w4s2)},
    {DECW(32, n64w4s3), DECW(64, n32w4s3), DECW(96, n16w4s4), DECW(128, n16w4s3), DECW(192, n16w4s2), DECW(256, n16w2s3)}};

// a cluster launch of 1 x 1 x gz blocks (all splits of one (m-block, batch, head)), as FlashDevice's cuLaunchKernelEx
static cudaError_t cluster_config(Kernel k, int gx, int gy, int gz, int threads, int smem, void* stream,
                                  cudaLaunchConfig_t* cfg, cudaLaunchAttribute* attr) {
  cudaError_t e = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e == cudaSuccess && gz > 8) e = cudaFuncSetAttribute(k, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
  if (e != cudaSuccess) return e;
  *cfg = cudaLaunchConfig_t{};
  cfg->gridDim = dim3(gx, gy, gz);
  cfg->blockDim = dim3(threads);
  cfg->dynamicSmemBytes = smem;
  cfg->stream = (cudaStream_t)stream;
  attr->id = cudaLaunchAttributeClusterDimension;
  attr->val.clusterDim.x = 1;
  attr->val.clusterDim.y = 1;
  attr->val.clusterDim.z = gz;
  cfg->attrs = attr;
  cfg->numAttrs = 1;
  return cudaSuccess;
}

extern "C" int harness_launch_cluster(const FlashParams* p, int dclass, int bf16, int compact, int gx, int gy, int gz,
                                      int threads, int smem, void* stream) {
  Kernel k = kClusterTable[compact ? 1 : 0][dclass][(p->head_dim == kDims[dclass] ? 0 : 2) + (bf16 ? 1 : 0)];
  cudaLaunchConfig_t cfg;
  cudaLaunchAttribute attr;
  cudaError_t e = cluster_config(k, gx, gy, gz, threads, smem, stream, &cfg, &attr);
  if (e != cudaSuccess) return (int)e;
  e = cudaLaunchKernelEx(&cfg, k, *p);
  return e != cudaSuccess ? (int)e : (int)cudaGetLastError();
}

// how many clusters of gz blocks of that kernel the device runs at once (cudaOccupancyMaxActiveClusters); < 0: error
extern "C" int harness_max_clusters(int dclass, int compact, int gz, int threads, int smem) {
  Kernel k = kClusterTable[compact ? 1 : 0][dclass][0];
  cudaLaunchConfig_t cfg;
  cudaLaunchAttribute attr;
  cudaError_t e = cluster_config(k, 1, 1, gz, threads, smem, nullptr, &cfg, &attr);
  int n = 0;
  if (e == cudaSuccess) e = cudaOccupancyMaxActiveClusters(&n, k, &cfg);
  return e != cudaSuccess ? -(int)e : n;
}

static int launch(Kernel k, const FlashParams* p, int gx, int gy, int gz, int threads, int smem, void* stream) {
  cudaError_t e = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return (int)e;
  k<<<dim3(gx, gy, gz), threads, smem, (cudaStream_t)stream>>>(*p);
  return (int)cudaGetLastError();
}

// split: the decode kernel (FlashPlan.split()) of FlashPlan.DECODE; same kernel choice as FlashPlan.kernel
extern "C" int harness_launch(const FlashParams* p, int dclass, int bf16, int split, int gx, int gy, int gz,
                              int threads, int smem, void* stream) {
  Kernel k = kTable[split ? 1 : 0][dclass][(p->head_dim == kDims[dclass] ? 0 : 2) + (bf16 ? 1 : 0)];
  return launch(k, p, gx, gy, gz, threads, smem, stream);
}

// a _ws decode kernel: grid gx (m-blocks) x gy (batch x heads); the slots and counters as flashlib.prepare(steal=True)
extern "C" int harness_launch_steal(const FlashParams* p, int dclass, int bf16, int compact, int gx, int gy, int threads,
                                    int smem, void* stream) {
  Kernel k = kStealTable[compact ? 1 : 0][dclass][(p->head_dim == kDims[dclass] ? 0 : 2) + (bf16 ? 1 : 0)];
  return launch(k, p, gx, gy, 1, threads, smem, stream);
}

// the decode kernel of FlashPlan.DECODE_COMPACT (devices with less than 128 KB of shared memory per block)
extern "C" int harness_launch_compact(const FlashParams* p, int dclass, int bf16, int gx, int gy, int gz, int threads,
                                      int smem, void* stream) {
  Kernel k = kTable[2][dclass][(p->head_dim == kDims[dclass] ? 0 : 2) + (bf16 ? 1 : 0)];
  return launch(k, p, gx, gy, gz, threads, smem, stream);
}

// the one-split decode kernels of head dim 128 chosen by grid size: traits 0 = FlashPlan.NARROW (n32w2s2),
// 1 = FlashPlan.SHORT_TILES (n16w4s2), 2 = FlashPlan.SLIM (n16w2s2)
extern "C" int harness_launch_d128(const FlashParams* p, int traits, int bf16, int gx, int gy, int gz, int threads,
                                   int smem, void* stream) {
  static const Kernel kD128[3][4] = {
      {flash_decode_f16_d128_n32w2s2, flash_decode_bf16_d128_n32w2s2, flash_decode_f16_d128_n32w2s2_pad,
       flash_decode_bf16_d128_n32w2s2_pad},
      {flash_decode_f16_d128_n16w4s2, flash_decode_bf16_d128_n16w4s2, flash_decode_f16_d128_n16w4s2_pad,
       flash_decode_bf16_d128_n16w4s2_pad},
      {flash_decode_f16_d128_n16w2s2, flash_decode_bf16_d128_n16w2s2, flash_decode_f16_d128_n16w2s2_pad,
       flash_decode_bf16_d128_n16w2s2_pad}};
  return launch(kD128[traits][(p->head_dim == 128 ? 0 : 2) + (bf16 ? 1 : 0)], p, gx, gy, gz, threads, smem, stream);
}

// head dim 64's paced one-split kernel of one to two waves (FlashPlan.NARROW_64, n64w2s2, three blocks per SM)
extern "C" int harness_launch_d64_narrow(const FlashParams* p, int bf16, int gx, int gy, int gz, int threads, int smem,
                                         void* stream) {
  static const Kernel kD64[4] = {flash_decode_f16_d64_n64w2s2, flash_decode_bf16_d64_n64w2s2,
                                 flash_decode_f16_d64_n64w2s2_pad, flash_decode_bf16_d64_n64w2s2_pad};
  return launch(kD64[(p->head_dim == 64 ? 0 : 2) + (bf16 ? 1 : 0)], p, gx, gy, gz, threads, smem, stream);
}

// the split workspace's layout (flashlib.prepare): 2 = v8, partial outputs then partial LSEs in o_accum, lse_accum the
// merge counters alone; a harness without this export (v6, v7) keeps the partial LSEs in lse_accum, counters behind
extern "C" int harness_workspace_layout() { return 2; }

// the decode counters' reset, as FlashDevice (cuMemsetD8Async)
extern "C" int harness_memset(void* ptr, size_t bytes, void* stream) {
  return (int)cudaMemsetAsync(ptr, 0, bytes, (cudaStream_t)stream);
}

// The floor of a decode call: reads K and V once (no attention), 16-byte loads, each block taking every gridDim.x-th
// chunk of `chunk16` 16-byte words of the two buffers in turn, so that the blocks sweep memory together
__global__ void __launch_bounds__(512) stream_read(const uint4* __restrict__ a, u64 na16, const uint4* __restrict__ b,
                                                   u64 nb16, u64 chunk16, u32* sink) {
  const u64 n16 = na16 + nb16;
  u32 acc = 0;
  for (u64 beg = blockIdx.x * chunk16; beg < n16; beg += (u64)gridDim.x * chunk16) {
    const u64 end = min(n16, beg + chunk16);
    for (u64 i = beg + threadIdx.x; i < end; i += (u64)blockDim.x * 8) {
      uint4 v[8];
#pragma unroll
      for (int u = 0; u < 8; ++u) {
        const u64 j = i + (u64)u * blockDim.x;
        v[u] = j < end ? __ldcs(j < na16 ? a + j : b + (j - na16)) : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
      for (int u = 0; u < 8; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
    }
  }
  if (acc == 0x9e3779b9u) *sink = acc;
}

extern "C" int harness_stream_read(const void* a, u64 abytes, const void* b, u64 bbytes, int blocks, int threads,
                                   u64 chunk_bytes, void* sink, void* stream) {
  stream_read<<<blocks, threads, 0, (cudaStream_t)stream>>>((const uint4*)a, abytes / 16, (const uint4*)b, bbytes / 16,
                                                            chunk_bytes / 16, (u32*)sink);
  return (int)cudaGetLastError();
}

#ifdef FLASH_DECODE_TRACE
// bench/trace.py: the decode blocks' timelines of the last traced launch (flash_fwd.cu's g_decode_trace), `words` of them
extern "C" int harness_trace(u64* host, int words) {
  return (int)cudaMemcpyFromSymbol(host, g_decode_trace, sizeof(u64) * words);
}
#endif

#ifndef HARNESS_MAIN
// experimental tilings, fp16 only, for bench.py's variant table
typedef Traits<64, 128, 64, 4> V64a;
typedef Traits<64, 128, 128, 8> V64b;
typedef Traits<128, 128, 64, 8> V128a;
typedef Traits<128, 128, 32, 4> V128b;
typedef Traits<256, 128, 64, 8> V256a;
typedef Traits<256, 64, 32, 4> V256b;
FLASH_ENTRY(var_d64a, V64a, false)
FLASH_ENTRY(var_d64b, V64b, false)
FLASH_ENTRY(var_d128a, V128a, false)
FLASH_ENTRY(var_d128b, V128b, false)
FLASH_ENTRY(var_d256a, V256a, false)
FLASH_ENTRY(var_d256b, V256b, false)

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

#ifdef HARNESS_MAIN
// compute-sanitizer driver: runs representative shapes (same launch rules as FlashKernels.java) on random data.
// main traits (D, BM, BN, warps) and decode traits (keys per warp tile, warps, stages), as flashlib / FlashPlan
struct Cfg { int D, BM, BN, W, DBN, DW, DS; };
static const Cfg kCfg[6] = {{32, 128, 128, 4, 64, 4, 3}, {64, 128, 128, 4, 64, 4, 2}, {96, 128, 64, 4, 16, 4, 4},
                            {128, 128, 64, 4, 32, 4, 2}, {192, 128, 64, 8, 16, 4, 2}, {256, 64, 64, 4, 16, 4, 2}};
static const Cfg kCompactCfg[6] = {{32, 128, 128, 4, 64, 4, 3}, {64, 128, 128, 4, 32, 4, 3},
                                   {96, 128, 64, 4, 16, 4, 4}, {128, 128, 64, 4, 16, 4, 3},
                                   {192, 128, 64, 8, 16, 4, 2}, {256, 64, 64, 4, 16, 2, 3}};
static const Cfg kNarrow128 = {128, 128, 64, 4, 32, 2, 2};
static const Cfg kShortTiles128 = {128, 128, 64, 4, 16, 4, 2};
static const Cfg kSlim128 = {128, 128, 64, 4, 16, 2, 2};
static const Cfg kNarrow64 = {64, 128, 128, 4, 64, 2, 2};
#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("%s: %s\n", #x, cudaGetErrorName(e_)); exit(1); } } while (0)
// splits: 0 = the main kernel, >= 1 the decode kernel with that many splits (compact 1: FlashPlan.DECODE_COMPACT's
// traits; 2: FlashPlan.NARROW, 3: FlashPlan.SHORT_TILES, 4: FlashPlan.SLIM, head dim 128; 5: FlashPlan.NARROW_64);
// steal > 0: the
// work-stealing decode kernel on that many blocks (those beyond the units start as helpers), its 8 slots and counters
static void run(int B, int H, int G, int Lq, int Lk, int E, int causal, int br, int bf16, int splits, int compact = 0,
                int cluster = 0, int steal = 0, long long pace_ps = 0, int stagger = 0) {
  int dc = E <= 32 ? 0 : E <= 64 ? 1 : E <= 96 ? 2 : E <= 128 ? 3 : E <= 192 ? 4 : 5;
  const Cfg& c = compact == 2 ? kNarrow128 : compact == 3 ? kShortTiles128 : compact == 4 ? kSlim128
                 : compact == 5 ? kNarrow64 : compact ? kCompactCfg[dc] : kCfg[dc];
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
  p.causal = causal; p.causal_offset = br ? Lk - Lq : 0; p.num_splits = splits > 0 ? splits : 1;
  p.scale = 1.f / sqrtf((float)E); p.scale_log2 = p.scale * 1.4426950408889634f;
  p.decode_pace_ps = pace_ps;
  p.decode_stagger = stagger;
  int split = splits > 0;
  int BM = split ? 16 : c.BM;
  int threads = (split ? c.DW : c.W) * 32;
  int smem = split ? c.DW * c.DS * 2 * c.DBN * c.D * 2 : (c.BM + 2 * c.BN) * c.D * 2;
  int gx = (Lq + BM - 1) / BM;
  if (steal) {
    size_t rows = (size_t)8 * B * H * Lq, counters = (size_t)4 * B * H * gx + 2;
    CK(cudaMalloc(&oacc, rows * (E + 1) * 4)); CK(cudaMalloc(&lacc, counters * 4));
    CK(cudaMemset(lacc, 0, counters * 4));
    p.o_accum = (i64)oacc; p.lse_accum = (i64)lacc; p.num_splits = 8;
  } else if (splits > 1 && !cluster) {
    size_t rows = (size_t)splits * B * H * Lq, counters = (size_t)B * H * gx;
    CK(cudaMalloc(&oacc, rows * (E + 1) * 4)); CK(cudaMalloc(&lacc, counters * 4));   // partials + LSEs; counters
    CK(cudaMemset(lacc, 0, counters * 4));
    p.o_accum = (i64)oacc; p.lse_accum = (i64)lacc;
  }
  if (steal) CK((cudaError_t)harness_launch_steal(&p, dc, bf16, compact, steal, 1, threads, smem, 0));
  else if (cluster) CK((cudaError_t)harness_launch_cluster(&p, dc, bf16, compact, gx, B * H, splits, threads, smem, 0));
  else if (compact == 5) CK((cudaError_t)harness_launch_d64_narrow(&p, bf16, gx, B * H, splits, threads, smem, 0));
  else if (compact >= 2) CK((cudaError_t)harness_launch_d128(&p, compact - 2, bf16, gx, B * H, splits, threads, smem, 0));
  else if (compact) CK((cudaError_t)harness_launch_compact(&p, dc, bf16, gx, B * H, splits, threads, smem, 0));
  else CK((cudaError_t)harness_launch(&p, dc, bf16, split, gx, B * H, split ? splits : 1, threads, smem, 0));
  CK(cudaDeviceSynchronize());
  printf("ok B=%d H=%d G=%d Lq=%d Lk=%d E=%d causal=%d br=%d bf16=%d splits=%d compact=%d cluster=%d steal=%d "
         "pace=%lld stagger=%d\n", B, H, G, Lq, Lk, E, causal, br, bf16, splits, compact, cluster, steal, pace_ps,
         stagger);
  cudaFree(q); cudaFree(k); cudaFree(v); cudaFree(o); cudaFree(lse); cudaFree(oacc); cudaFree(lacc);
}
// argument "decode": the decode shapes only (the decode kernels' own sanitizer pass); "stagger": v19's staggered
// decode launches only; "periodic": the head-dim classes whose loads take load_tile's periodic path (v21)
int main(int argc, char** argv) {
  const bool decode_only = argc > 1 && strcmp(argv[1], "decode") == 0;
  const bool stagger_only = argc > 1 && strcmp(argv[1], "stagger") == 0;
  if (argc > 1 && strcmp(argv[1], "periodic") == 0) {
    // v21: the kernels whose tile loads take load_tile's periodic path (head-dim classes 96 and 192): the main kernel
    // with ragged rows, both causal alignments, GQA and padded head dims (80, 176); the decode kernel in one split,
    // workspace splits, a cluster, work stealing (helpers from the start), paced and staggered
    run(1, 2, 1, 129, 200, 96, 1, 0, 0, 0);
    run(2, 4, 2, 77, 130, 80, 1, 1, 1, 0);
    run(1, 2, 1, 130, 67, 192, 0, 0, 1, 0);
    run(1, 4, 2, 65, 300, 176, 1, 1, 0, 0);
    run(1, 2, 1, 1, 777, 96, 0, 0, 0, 1);
    run(2, 4, 2, 5, 1500, 88, 1, 1, 1, 3);
    run(1, 2, 1, 20, 333, 192, 0, 0, 0, 4, 0, 1);
    run(2, 4, 1, 1, 5000, 96, 0, 0, 1, 1, 0, 0, 12);
    run(2, 4, 1, 1, 5000, 184, 0, 0, 0, 1, 0, 0, 12);
    run(2, 8, 1, 1, 3000, 96, 0, 0, 0, 2, 0, 0, 0, 1000000, 1);
    run(1, 4, 1, 1, 2100, 160, 0, 0, 1, 4, 0, 0, 0, 0, 1);
    printf("sanitize harness done\n");
    return 0;
  }
  if (!decode_only && !stagger_only) {
  run(1, 2, 1, 200, 333, 64, 1, 0, 0, 0);
  run(1, 2, 2, 130, 70, 128, 1, 1, 1, 0);
  run(1, 2, 1, 65, 129, 80, 0, 0, 0, 0);
  run(1, 2, 1, 100, 150, 120, 1, 0, 1, 0);
  run(1, 1, 1, 70, 100, 256, 1, 1, 1, 0);
  run(1, 2, 1, 129, 64, 192, 0, 0, 0, 0);
  run(1, 2, 1, 33, 47, 96, 1, 0, 1, 0);
  }
  if (!stagger_only) {
  // decode kernel: one split, several, ragged lengths, every head-dim class, causal, padded head dims
  run(1, 2, 1, 1, 1, 32, 0, 0, 0, 1);
  run(1, 2, 1, 1, 1000, 128, 0, 0, 0, 4);
  run(1, 16, 1, 1, 4096, 128, 0, 0, 1, 16);
  run(2, 4, 1, 1, 3000, 128, 0, 0, 0, 1);
  run(1, 2, 2, 5, 700, 64, 1, 1, 1, 3);
  run(1, 1, 1, 3, 300, 256, 0, 0, 0, 2);
  run(1, 2, 1, 16, 555, 96, 1, 0, 0, 5);
  run(1, 2, 1, 20, 333, 192, 0, 0, 1, 2);
  run(1, 2, 1, 2, 900, 120, 0, 0, 0, 7);
  run(1, 2, 1, 1, 129, 40, 0, 0, 1, 2);
  run(1, 16, 1, 1, 4096, 128, 0, 0, 0, 8, 1);
  run(2, 2, 1, 3, 1000, 120, 1, 1, 1, 3, 1);
  run(2, 4, 1, 1, 3000, 128, 0, 0, 1, 1, 1);
  // the cluster decode kernels (DSMEM merge): the issue-6 B=1 shape, ragged, causal, GQA, padded head dims, compact,
  // empty splits, the non-portable cluster size 16
  run(1, 16, 1, 1, 4096, 128, 0, 0, 0, 8, 0, 1);
  run(1, 2, 1, 1, 1000, 128, 0, 0, 1, 4, 0, 1);
  run(1, 2, 2, 5, 700, 64, 1, 1, 1, 3, 0, 1);
  run(1, 2, 1, 20, 333, 192, 0, 0, 1, 2, 0, 1);
  run(1, 2, 1, 2, 900, 120, 0, 0, 0, 7, 0, 1);
  run(1, 1, 1, 3, 300, 256, 0, 0, 0, 8, 0, 1);
  run(1, 16, 1, 1, 4096, 128, 0, 0, 1, 8, 1, 1);
  run(1, 4, 1, 1, 2000, 96, 1, 1, 0, 16, 0, 1);
  // the work-stealing decode kernels: one block per unit, fewer blocks than units (fresh units, then helping), GQA
  // packing, two m-blocks with the causal mask, padded head dims, the compact traits
  run(8, 16, 1, 1, 9000, 128, 0, 0, 0, 1, 0, 0, 128);
  run(3, 16, 1, 1, 5000, 128, 0, 0, 1, 1, 0, 0, 20);
  run(2, 8, 4, 1, 4100, 64, 0, 0, 0, 1, 0, 0, 3);
  run(1, 4, 1, 20, 3000, 128, 1, 1, 1, 1, 0, 0, 5);
  run(2, 4, 1, 1, 5000, 200, 0, 0, 0, 1, 0, 0, 6);
  run(2, 4, 1, 1, 6000, 128, 0, 0, 1, 1, 1, 0, 5);
  // more blocks than units (helpers from the start), GQA packing with two m-blocks
  run(2, 16, 1, 1, 9000, 128, 0, 0, 0, 1, 0, 0, 132);
  run(1, 8, 2, 20, 3000, 128, 1, 1, 1, 1, 0, 0, 40);
  // v14's traits of head dims 64 and 256 (8 KB warp tiles, four warps) stealing with helpers, a padded head dim
  run(2, 8, 1, 1, 5000, 256, 0, 0, 1, 1, 0, 0, 24);
  run(1, 8, 1, 1, 9000, 56, 0, 0, 0, 1, 0, 0, 20);
  // the one-split head-dim-128 decode kernels (FlashPlan.NARROW, SHORT_TILES): a grid just over a wave and one just
  // under, padded head dims, two m-blocks
  run(9, 16, 1, 1, 4096, 128, 0, 0, 0, 1, 2);
  run(2, 4, 1, 20, 3000, 112, 1, 1, 1, 1, 2);
  run(7, 16, 1, 1, 4096, 128, 0, 0, 1, 1, 3);
  run(2, 4, 1, 20, 3000, 104, 1, 0, 0, 1, 3);
  // fair-share pacing (FlashPlan's paced plans): one split, workspace splits, a cluster, two m-blocks with the causal
  // mask and a padded head dim
  run(6, 16, 1, 1, 4096, 128, 0, 0, 0, 1, 0, 0, 0, 2000000);
  run(2, 16, 1, 1, 5000, 128, 0, 0, 1, 4, 0, 0, 0, 1000000);
  run(2, 16, 1, 1, 5000, 128, 0, 0, 0, 4, 0, 1, 0, 1000000);
  run(1, 4, 1, 20, 3000, 120, 1, 1, 1, 2, 0, 0, 0, 500000);
  // paced grids of more than a wave: the narrow and slim blocks, ragged, a padded head dim, two splits of each
  run(9, 16, 1, 1, 4100, 128, 0, 0, 0, 1, 2, 0, 0, 1500000);
  run(18, 16, 1, 1, 2050, 128, 0, 0, 1, 1, 4, 0, 0, 1500000);
  run(2, 4, 1, 20, 3000, 112, 1, 1, 0, 2, 2, 0, 0, 400000);
  run(2, 4, 1, 20, 3000, 104, 1, 0, 1, 2, 4, 0, 0, 400000);
  // v15: the paced plans of head dims 64 and 256 - workspace splits of one wave, and grids of more than a wave on
  // head dim 64's narrow blocks and 256's compact ones; ragged, padded head dims, two m-blocks with the causal mask
  run(2, 32, 1, 1, 5000, 64, 0, 0, 0, 2, 0, 0, 0, 1000000);
  run(4, 8, 1, 1, 3000, 256, 0, 0, 1, 4, 0, 0, 0, 1000000);
  run(5, 32, 1, 1, 3000, 64, 0, 0, 0, 1, 5, 0, 0, 1500000);
  run(2, 4, 1, 20, 3000, 56, 1, 1, 1, 1, 5, 0, 0, 400000);
  run(17, 8, 1, 1, 1000, 256, 0, 0, 1, 1, 1, 0, 0, 1500000);
  run(2, 4, 1, 20, 1000, 248, 1, 0, 0, 1, 1, 0, 0, 400000);
  }
  // v19: the staggered start on every decode family that takes it - one split, workspace and cluster merges (mostly
  // empty splits), paced, the narrow / short-tile / compact blocks, two m-blocks under the causal mask, padded head
  // dims
  run(2, 16, 1, 1, 5000, 128, 0, 0, 0, 1, 0, 0, 0, 0, 1);
  run(2, 16, 1, 1, 5000, 128, 0, 0, 1, 4, 0, 0, 0, 0, 1);
  run(1, 16, 1, 1, 4096, 128, 0, 0, 0, 8, 0, 1, 0, 0, 1);
  run(1, 2, 1, 1, 20, 256, 0, 0, 1, 16, 0, 1, 0, 0, 1);
  run(2, 16, 1, 1, 5000, 128, 0, 0, 1, 4, 0, 0, 0, 1000000, 1);
  run(9, 16, 1, 1, 4100, 128, 0, 0, 0, 1, 2, 0, 0, 1500000, 1);
  run(7, 16, 1, 1, 4096, 128, 0, 0, 1, 1, 3, 0, 0, 0, 1);
  run(5, 32, 1, 1, 3000, 64, 0, 0, 0, 1, 5, 0, 0, 1500000, 1);
  run(2, 4, 1, 20, 3000, 120, 1, 1, 1, 2, 0, 0, 0, 500000, 1);
  run(2, 2, 1, 3, 1000, 120, 1, 1, 1, 3, 1, 0, 0, 0, 1);
  run(1, 4, 1, 1, 2000, 96, 1, 1, 0, 16, 0, 1, 0, 0, 1);
  printf("sanitize harness done\n");
  return 0;
}
#endif
