// Memory-efficient attention backward (FlashAttention-2 structure, deterministic: no atomics anywhere).
//
// Three kernels, launched in this order on one stream:
//   memeff_bwd_pre       D = rowsum(dO * O) in fp32 and the LSE in log2 units (+inf for a fully masked row, so that
//                        every P of that row is exp2(-inf) = 0) into a [2, B*Hq*Lq] fp32 scratch buffer.
//   memeff_bwd_dkdv_*    one block per (key tile of BN keys, batch, kv head, output-column chunk): K/V rows stay in
//                        shared memory, the block loops over the query heads of its GQA group and their query tiles
//                        (Q, dO and the row statistics double-buffered by cp.async), recomputes S^T = K Q^T and
//                        P^T = exp2(S^T - LSE) with the forward's masking, dP^T = V dO^T, regenerates the dropout
//                        keep mask, and accumulates dV += P_drop^T dO and dK += dS^T Q in registers (each warp owns
//                        16 keys, so P^T and dS^T are directly the A operands: no shared-memory round trip).
//   memeff_bwd_dq_*      one block per (query tile, batch, query head, column chunk), streaming over key tiles like
//                        the forward: S, P, dP, dS recomputed, dQ += dS K in registers, written once.
// dK/dV of a GQA group are summed inside one block and dQ by one block in a fixed order, so every bit is reproducible.
// Head dims above the chunk width DC are split over the grid (each chunk recomputes S and dP).
//
// Semantics as the forward (memeff_fwd.cu): scores in log2 units, boolean mask false / additive -inf / causal -> P = 0,
// additive bias added to S before exp, dropout = dev.sdpa4j.Dropout's Philox4x32-10 with counter
// (j >> 2, i, b*Hq + h, offset) and key = seed, dropped P scaled by 1/(1-p).
//
// Tensor cores: fp16/bf16 mma.sync m16n8k16 (fp32 accumulation) fed by ldmatrix; fp32 mma.sync m16n8k8 TF32 in the
// 3xTF32 split (fp32-level accuracy). Minimum architecture sm_80. The one include is memeff_common.cuh (as in the
// forward).

#include "memeff_common.cuh"

namespace memeff {

// Kernel parameters, passed by value; every field is 8 bytes (the host writes a plain array of longs/doubles).
struct Params {
  const void* q;
  const void* k;
  const void* v;
  const void* o;
  const void* dout;
  const float* lse;
  const void* mask;        // null when mask_kind == 0
  void* dq;
  void* dk;
  void* dv;
  float* stat;             // scratch [2][B*Hq*Lq]: D, then LSE * log2(e)
  int64_t q_stride[4];     // b, h, l, e (elements)
  int64_t k_stride[4];
  int64_t v_stride[4];
  int64_t o_stride[4];
  int64_t do_stride[4];
  int64_t lse_stride[4];   // b, h, l, unused
  int64_t mask_stride[4];  // b, h, i, j of the [B, Hq, Lq, Lk] broadcast view
  int64_t dq_stride[4];
  int64_t dk_stride[4];
  int64_t dv_stride[4];
  int64_t batch;
  int64_t heads;           // Hq
  int64_t group;           // Hq / Hkv
  int64_t lq;
  int64_t lk;
  int64_t e;
  int64_t ev;
  int64_t mask_kind;       // 0 none, 1 bool (uint8), 2 fp32 additive, 3 fp16 additive, 4 bf16 additive
  int64_t causal;          // 0 none, 1 causal: key j takes part iff j <= i + causal_offset
  int64_t causal_offset;   // 0 (top-left) or Lk - Lq (bottom-right)
  int64_t flags;           // FLAG_* below
  int64_t tiles;           // dkdv: key tiles ceil(Lk / BN); dq: query tiles ceil(Lq / BM)
  int64_t chunks;          // output-column chunks of the launch
  double scale_log2;       // scale * log2(e)
  double scale;
  double dropout_scale;    // 1 / (1 - p), 1 without dropout
  int64_t dropout;         // 1 when p > 0
  int64_t dropout_threshold;  // floor(p * 2^32), unsigned
  int64_t seed;            // Philox key (k0 low word, k1 high word)
  int64_t offset;          // Philox counter word c3
  float* dq_acc;           // fp32 [B, Hq, Lq, E] dQ accumulator of the atomic path (zeroed by the host), else null
};

enum : int {
  FLAG_VEC_Q = 1,    // 16-byte cp.async rows
  FLAG_VEC_K = 2,
  FLAG_VEC_V = 4,
  FLAG_VEC_DO = 8,
  FLAG_VEC_DQ = 16,  // element pairs stored together
  FLAG_VEC_DK = 32,
  FLAG_VEC_DV = 64
};

// An A operand (16 x KS) as raw registers: 16-bit pairs, or fp32 bits pre-split into big/small halves.
template <typename T> struct FragA {
  uint32_t r[4];
};
template <> struct FragA<float> {
  uint32_t big[4];
  uint32_t small[4];
};

template <typename T> __device__ __forceinline__ void finish_a(FragA<T>& a, const uint32_t* x) {
#pragma unroll
  for (int i = 0; i < 4; ++i) a.r[i] = x[i];
}
template <> __device__ __forceinline__ void finish_a<float>(FragA<float>& a, const uint32_t* x) {
#pragma unroll
  for (int i = 0; i < 4; ++i) split_tf32(x[i], a.big[i], a.small[i]);
}

// A fragment of rows [m0, m0 + 16) x k [k0, k0 + KS) of a row-major shared matrix (pitch ld elements).
template <typename T>
__device__ __forceinline__ void load_a(FragA<T>& a, const T* s, int ld, int m0, int k0, int lane) {
  uint32_t x[4];
  if constexpr (sizeof(T) == 4) {
    const int g = lane / 4, t = lane % 4;
    const float* p = reinterpret_cast<const float*>(s) + (m0 + g) * ld + k0 + t;
    x[0] = __float_as_uint(p[0]);
    x[1] = __float_as_uint(p[8 * ld]);
    x[2] = __float_as_uint(p[4]);
    x[3] = __float_as_uint(p[8 * ld + 4]);
  } else {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(x[0]), "=r"(x[1]), "=r"(x[2]), "=r"(x[3])
                 : "r"(smem_addr(s + (m0 + lane % 16) * ld + k0 + (lane / 16) * 8)));
  }
  finish_a<T>(a, x);
}

// A fragment from accumulator tiles c (16 x 8 each) of the same warp: k-step kb covers accumulator columns
// [kb*KS, kb*KS + KS). fp32 permutes k (column 2t -> k t, 2t+1 -> k t+4); load_b_kn reads B with the same permutation.
template <typename T>
__device__ __forceinline__ void a_from_acc(FragA<T>& a, const float (*c)[4], int kb) {
  uint32_t x[4];
  if constexpr (sizeof(T) == 4) {
    x[0] = __float_as_uint(c[kb][0]);
    x[1] = __float_as_uint(c[kb][2]);
    x[2] = __float_as_uint(c[kb][1]);
    x[3] = __float_as_uint(c[kb][3]);
  } else {
    x[0] = Elem<T>::pack(c[2 * kb][0], c[2 * kb][1]);
    x[1] = Elem<T>::pack(c[2 * kb][2], c[2 * kb][3]);
    x[2] = Elem<T>::pack(c[2 * kb + 1][0], c[2 * kb + 1][1]);
    x[3] = Elem<T>::pack(c[2 * kb + 1][2], c[2 * kb + 1][3]);
  }
  finish_a<T>(a, x);
}

// c[n] += A * B over NTILES n8-tiles, B stored [n][k] (row n of the shared matrix is column n of B): tile n covers
// rows n0 + 8n .. of the matrix. Tiles at or past `n_valid` columns are skipped.
template <typename T, int NTILES>
__device__ __forceinline__ void mma_nk(float (*c)[4], const FragA<T>& a, const T* s, int ld, int n0, int k0,
                                       int n_valid, int lane) {
  if constexpr (sizeof(T) == 4) {
    const int g = lane / 4, t = lane % 4;
#pragma unroll
    for (int n = 0; n < NTILES; ++n) {
      if (n * 8 < n_valid) {
        const float* p = reinterpret_cast<const float*>(s) + (n0 + n * 8 + g) * ld + k0 + t;
        uint32_t bb[2], bs[2];
        split_tf32(__float_as_uint(p[0]), bb[0], bs[0]);
        split_tf32(__float_as_uint(p[4]), bb[1], bs[1]);
        mma1688_tf32(c[n], a.small, bb);
        mma1688_tf32(c[n], a.big, bs);
        mma1688_tf32(c[n], a.big, bb);
      }
    }
  } else {
    const int m = lane / 8;
#pragma unroll
    for (int np = 0; np < NTILES / 2; ++np) {
      if (np * 16 < n_valid) {
        uint32_t b[4];
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3])
                     : "r"(smem_addr(s + (n0 + np * 16 + (m / 2) * 8 + lane % 8) * ld + k0 + (m % 2) * 8)));
        mma16816<T>(c[2 * np], a.r, b);
        mma16816<T>(c[2 * np + 1], a.r, b + 2);
      }
    }
  }
}

// c[n] += A * B over NTILES n8-tiles, B stored [k][n] (row-major): tile n covers columns n0 + 8n .. of the matrix,
// k rows k0 .. k0 + KS (fp32: in a_from_acc's permutation).
template <typename T, int NTILES>
__device__ __forceinline__ void mma_kn(float (*c)[4], const FragA<T>& a, const T* s, int ld, int n0, int k0,
                                       int n_valid, int lane) {
  if constexpr (sizeof(T) == 4) {
    const int g = lane / 4, t = lane % 4;
#pragma unroll
    for (int n = 0; n < NTILES; ++n) {
      if (n * 8 < n_valid) {
        const float* p = reinterpret_cast<const float*>(s) + (k0 + 2 * t) * ld + n0 + n * 8 + g;
        uint32_t bb[2], bs[2];
        split_tf32(__float_as_uint(p[0]), bb[0], bs[0]);
        split_tf32(__float_as_uint(p[ld]), bb[1], bs[1]);
        mma1688_tf32(c[n], a.small, bb);
        mma1688_tf32(c[n], a.big, bs);
        mma1688_tf32(c[n], a.big, bb);
      }
    }
  } else {
    const int m = lane / 8;
#pragma unroll
    for (int np = 0; np < NTILES / 2; ++np) {
      if (np * 16 < n_valid) {
        uint32_t b[4];
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3])
                     : "r"(smem_addr(s + (k0 + (m % 2) * 8 + lane % 8) * ld + n0 + np * 16 + (m / 2) * 8)));
        mma16816<T>(c[2 * np], a.r, b);
        mma16816<T>(c[2 * np + 1], a.r, b + 2);
      }
    }
  }
}

// Loads rows [0, ROWS) x columns [0, COLS) of a strided matrix into shared memory (row pitch LD elements); elements
// at rows >= rows_valid or columns >= cols_valid are zero. `safe` is any readable address of the tensor.
template <typename T, int ROWS, int COLS, int LD, int NT>
__device__ __forceinline__ void load_tile(T* s, const T* g, const T* safe, int64_t row_stride, int64_t col_stride,
                                          int rows_valid, int cols_valid, bool vec, int tid) {
  if (vec) {
    constexpr int V = Elem<T>::VEC;
    constexpr int CPR = COLS / V;
#pragma unroll 4
    for (int idx = tid; idx < ROWS * CPR; idx += NT) {
      int r = idx / CPR;
      int c = (idx % CPR) * V;
      bool ok = r < rows_valid && c < cols_valid;
      const T* src = ok ? g + r * row_stride + c : safe;
      cp_async16(s + r * LD + c, src, ok ? 16 : 0);
    }
  } else {
    for (int idx = tid; idx < ROWS * COLS; idx += NT) {
      int r = idx / COLS;
      int c = idx % COLS;
      T val = Elem<T>::from(0.f);
      if (r < rows_valid && c < cols_valid) val = g[r * row_stride + c * col_stride];
      s[r * LD + c] = val;
    }
  }
}

// The mask's additive term (log2 units) of element (i, j): -inf where a boolean mask is false.
__device__ __forceinline__ float read_mask(const void* base, int kind, int64_t off) {
  switch (kind) {
    case 1: return static_cast<const uint8_t*>(base)[off] ? 0.f : -MEMEFF_INF;
    case 2: return static_cast<const float*>(base)[off] * LOG2E;
    case 3: return f16_to_float(static_cast<const uint16_t*>(base)[off]) * LOG2E;
    default: return bf16_to_float(static_cast<const uint16_t*>(base)[off]) * LOG2E;
  }
}

// Writes x0, x1 to columns c, c + 1 of a row (c + 1 only when below `valid`).
template <typename T>
__device__ __forceinline__ void store_pair(T* row, int64_t col_stride, int c, int valid, float x0, float x1, bool vec) {
  if (c >= valid) return;
  if constexpr (sizeof(T) == 4) {
    if (vec && c + 1 < valid) {
      *reinterpret_cast<float2*>(row + c) = make_float2(x0, x1);
      return;
    }
  } else {
    if (vec && c + 1 < valid) {
      *reinterpret_cast<uint32_t*>(row + c) = Elem<T>::pack(x0, x1);
      return;
    }
  }
  row[c * col_stride] = Elem<T>::from(x0);
  if (c + 1 < valid) row[(c + 1) * col_stride] = Elem<T>::from(x1);
}

// The softmax/dropout step shared by both kernels, for one element with query i and key j:
// p = exp2(s2 + mask - lse2) (0 where masked), then s <- dropped p (for dV), dp <- dS = p * (dP * keep/(1-p) - D).
// A mask that broadcasts over the queries (key padding) is read once per key by the caller and passed as `hoisted`.
struct Elementwise {
  float scale_log2;
  float drop_scale;
  int lq, lk;
  int64_t causal_offset;
  bool causal;
  bool row_bcast;  // mask query stride 0
  int mask_kind;
  const void* mask_bh;
  int64_t ms2, ms3;

  __device__ __forceinline__ float key_mask(int j) const {
    return mask_kind != 0 && j < lk ? read_mask(mask_bh, mask_kind, j * ms3) : 0.f;
  }

  __device__ __forceinline__ void apply(float& s, float& dp, int i, int j, float lse2, float dsum, bool keep,
                                        float hoisted) const {
    const bool valid = i < lq && j < lk && !(causal && j > i + causal_offset);
    float x = s * scale_log2 - lse2;
    if (mask_kind != 0) x += row_bcast ? hoisted : (valid ? read_mask(mask_bh, mask_kind, i * ms2 + j * ms3) : 0.f);
    const float pr = valid ? ex2(x) : 0.f;
    const float ks = keep ? drop_scale : 0.f;
    s = pr * ks;
    dp = pr * (dp * ks - dsum);
  }
};

// ---------------------------------------------------------------- preprocess
// One warp per query row r = (b*Hq + h)*Lq + i: stat[r] = sum_e dO*O (fp32), stat[R + r] = LSE * log2(e) (+inf for
// a fully masked row).
template <typename T>
__device__ __forceinline__ void preprocess(const Params& p) {
  const int64_t rows = p.batch * p.heads * p.lq;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;
  const int64_t i = r % p.lq;
  const int64_t h = (r / p.lq) % p.heads;
  const int64_t b = r / (p.lq * p.heads);
  const T* o = static_cast<const T*>(p.o) + b * p.o_stride[0] + h * p.o_stride[1] + i * p.o_stride[2];
  const T* d = static_cast<const T*>(p.dout) + b * p.do_stride[0] + h * p.do_stride[1] + i * p.do_stride[2];
  float acc = 0.f;
  for (int64_t c = lane; c < p.ev; c += 32) {
    acc = fmaf(Elem<T>::to(o[c * p.o_stride[3]]), Elem<T>::to(d[c * p.do_stride[3]]), acc);
  }
#pragma unroll
  for (int w = 16; w > 0; w /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, w);
  if (lane == 0) {
    const float l = p.lse[b * p.lse_stride[0] + h * p.lse_stride[1] + i * p.lse_stride[2]];
    p.stat[r] = acc;
    p.stat[rows + r] = l == -MEMEFF_INF ? MEMEFF_INF : l * LOG2E;
  }
}

// One warp per query row: dQ = scale * dq_acc (the atomic path's fp32 accumulator, rows of E) in the caller's strides.
template <typename T>
__device__ __forceinline__ void dq_convert(const Params& p) {
  const int64_t rows = p.batch * p.heads * p.lq;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;
  const int64_t i = r % p.lq;
  const int64_t h = (r / p.lq) % p.heads;
  const int64_t b = r / (p.lq * p.heads);
  T* d = static_cast<T*>(p.dq) + b * p.dq_stride[0] + h * p.dq_stride[1] + i * p.dq_stride[2];
  const float* a = p.dq_acc + r * p.e;
  const float scale = static_cast<float>(p.scale);
  for (int64_t c = lane; c < p.e; c += 32) d[c * p.dq_stride[3]] = Elem<T>::from(a[c] * scale);
}

// ---------------------------------------------------------------- dK, dV
// ATOMIC: dQ is also accumulated here (dS^T staged in shared memory, dQ += dS K added to p.dq_acc with fp32 atomics,
// so its bits depend on the order blocks finish); memeff_bwd_dqconv then scales and converts it. Without ATOMIC the
// dq kernel computes dQ deterministically.
// FULL (a kernel of its own, launched only when E == Ev == D): no zero-padded k-steps or output columns, so the
// products run without per-step bounds tests, which otherwise split the unrolled ldmatrix/mma chains into separate
// basic blocks.
template <typename T, int D, int DC, int BM, int BN, int ST, bool ATOMIC, bool FULL>
__device__ __forceinline__ void dkdv(const Params& p) {
  constexpr int NW = BN / 16;
  constexpr int NT = NW * 32;
  constexpr int KS = Elem<T>::KS;
  constexpr int LD = D + Elem<T>::PAD;
  constexpr int NQ = BM / 8;   // S^T n8-tiles (queries) per warp
  constexpr int NC = DC / 8;   // dK/dV n8-tiles (columns) per warp

  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* sK = reinterpret_cast<T*>(smem_raw);
  T* sV = sK + BN * LD;
  T* sQ = sV + BN * LD;          // [ST][BM][LD]
  T* sO = sQ + ST * BM * LD;     // dO, [ST][BM][LD]
  float* sStat = reinterpret_cast<float*>(sO + ST * BM * LD);  // [ST][2][BM]: D, lse2
  constexpr int LDS = BM + Elem<T>::PAD;
  T* sDS = reinterpret_cast<T*>(sStat + ST * 2 * BM);  // ATOMIC: dS^T [BN][LDS]

  const int tid = threadIdx.x;
  const int warp = tid / 32;
  const int lane = tid % 32;
  const int g = lane / 4;
  const int t = lane % 4;

  int64_t bid = blockIdx.x;
  const int kt = static_cast<int>(bid % p.tiles);
  bid /= p.tiles;
  const int64_t b = bid % p.batch;
  bid /= p.batch;
  const int64_t hkv = p.heads / p.group;
  const int64_t hk = bid % hkv;
  const int chunk = static_cast<int>(bid / hkv);

  const int lq = static_cast<int>(p.lq);
  const int lk = static_cast<int>(p.lk);
  const int E = static_cast<int>(p.e);
  const int Ev = static_cast<int>(p.ev);
  const int n0 = kt * BN;
  const int c0 = chunk * DC;
  const int dk_valid = min(DC, E - c0);   // <= 0: this chunk has no dK columns
  const int dv_valid = min(DC, Ev - c0);
  const int64_t rows_total = p.batch * p.heads * p.lq;

  const T* kg = static_cast<const T*>(p.k) + b * p.k_stride[0] + hk * p.k_stride[1] + (int64_t)n0 * p.k_stride[2];
  const T* vg = static_cast<const T*>(p.v) + b * p.v_stride[0] + hk * p.v_stride[1] + (int64_t)n0 * p.v_stride[2];
  load_tile<T, BN, D, LD, NT>(sK, kg, static_cast<const T*>(p.k), p.k_stride[2], p.k_stride[3], lk - n0, E,
                              p.flags & FLAG_VEC_K, tid);
  load_tile<T, BN, D, LD, NT>(sV, vg, static_cast<const T*>(p.v), p.v_stride[2], p.v_stride[3], lk - n0, Ev,
                              p.flags & FLAG_VEC_V, tid);

  // query tiles that can see this key tile
  int m_begin = 0;
  if (p.causal) {
    int64_t first = static_cast<int64_t>(n0) - p.causal_offset;
    m_begin = first <= 0 ? 0 : static_cast<int>(first < lq ? first : lq);
  }
  const int mt0 = m_begin / BM;
  const int mt_count = (lq + BM - 1) / BM - mt0;
  const int iters = mt_count > 0 ? static_cast<int>(p.group) * mt_count : 0;

  auto load_q = [&](int it, int stage) {
    const int64_t h = hk * p.group + it / mt_count;
    const int m0 = (mt0 + it % mt_count) * BM;
    const T* qg = static_cast<const T*>(p.q) + b * p.q_stride[0] + h * p.q_stride[1] + (int64_t)m0 * p.q_stride[2];
    const T* dg = static_cast<const T*>(p.dout) + b * p.do_stride[0] + h * p.do_stride[1] +
                  (int64_t)m0 * p.do_stride[2];
    load_tile<T, BM, D, LD, NT>(sQ + stage * BM * LD, qg, static_cast<const T*>(p.q), p.q_stride[2], p.q_stride[3],
                                lq - m0, E, p.flags & FLAG_VEC_Q, tid);
    load_tile<T, BM, D, LD, NT>(sO + stage * BM * LD, dg, static_cast<const T*>(p.dout), p.do_stride[2],
                                p.do_stride[3], lq - m0, Ev, p.flags & FLAG_VEC_DO, tid);
    const int64_t row0 = (b * p.heads + h) * p.lq + m0;
    for (int idx = tid; idx < 2 * BM; idx += NT) {
      const int r = idx % BM;
      const bool ok = m0 + r < lq;
      const float* src = p.stat + (idx / BM) * rows_total + (ok ? row0 + r : 0);
      cp_async4(sStat + stage * 2 * BM + idx, src, ok ? 4 : 0);
    }
  };
  if (ST == 2 && iters > 0) load_q(0, 0);
  cp_async_commit();

  float dk[NC][4], dv[NC][4];
#pragma unroll
  for (int i = 0; i < NC; ++i) {
#pragma unroll
    for (int c = 0; c < 4; ++c) dk[i][c] = dv[i][c] = 0.f;
  }

  Elementwise ew;
  ew.scale_log2 = static_cast<float>(p.scale_log2);
  ew.drop_scale = static_cast<float>(p.dropout_scale);
  ew.lq = lq;
  ew.lk = lk;
  ew.causal = p.causal != 0;
  ew.causal_offset = p.causal_offset;
  ew.mask_kind = static_cast<int>(p.mask_kind);
  ew.ms2 = p.mask_stride[2];
  ew.ms3 = p.mask_stride[3];
  ew.row_bcast = p.mask_stride[2] == 0;
  const int mask_esz = ew.mask_kind == 1 ? 1 : (ew.mask_kind == 2 ? 4 : 2);
  const uint32_t seed_lo = static_cast<uint32_t>(p.seed);
  const uint32_t seed_hi = static_cast<uint32_t>(static_cast<uint64_t>(p.seed) >> 32);
  const uint32_t drop_thr = static_cast<uint32_t>(p.dropout_threshold);
  const bool dropout = p.dropout != 0;

  const int e_steps = (E + KS - 1) / KS;
  const int ev_steps = (Ev + KS - 1) / KS;
  const int kw = warp * 16;  // this warp's first key row in the tile

  for (int it = 0; it < iters; ++it) {
    int stage = 0;
    if (ST == 2) {
      stage = it & 1;
      cp_async_wait_all();
      __syncthreads();
      if (it + 1 < iters) load_q(it + 1, stage ^ 1);
      cp_async_commit();
    } else {
      if (it > 0) __syncthreads();
      load_q(it, 0);
      cp_async_commit();
      cp_async_wait_all();
      __syncthreads();
    }
    const int64_t h = hk * p.group + it / mt_count;
    const int m0 = (mt0 + it % mt_count) * BM;
    const T* cQ = sQ + stage * BM * LD;
    const T* cO = sO + stage * BM * LD;
    const float* cD = sStat + stage * 2 * BM;
    const float* cL = cD + BM;

    // S^T = K Q^T and dP^T = V dO^T for this warp's 16 keys x BM queries
    float st[NQ][4], dpt[NQ][4];
#pragma unroll
    for (int n = 0; n < NQ; ++n) {
#pragma unroll
      for (int c = 0; c < 4; ++c) st[n][c] = dpt[n][c] = 0.f;
    }
#pragma unroll
    for (int kk = 0; kk < D / KS; ++kk) {
      if (FULL || kk < e_steps) {
        FragA<T> a;
        load_a<T>(a, sK, LD, kw, kk * KS, lane);
        mma_nk<T, NQ>(st, a, cQ, LD, 0, kk * KS, BM, lane);
      }
    }
#pragma unroll
    for (int kk = 0; kk < D / KS; ++kk) {
      if (FULL || kk < ev_steps) {
        FragA<T> a;
        load_a<T>(a, sV, LD, kw, kk * KS, lane);
        mma_nk<T, NQ>(dpt, a, cO, LD, 0, kk * KS, BM, lane);
      }
    }

    // P^T, dropout, dS^T. Element (nt, c): key n0 + kw + g + 8*(c/2), query m0 + 8*nt + 2t + (c&1).
    float hoisted[2] = {0.f, 0.f};  // a key-broadcast mask at this thread's two keys
    if (ew.mask_kind != 0) {
      ew.mask_bh = static_cast<const unsigned char*>(p.mask) + (b * p.mask_stride[0] + h * p.mask_stride[1]) * mask_esz;
      if (ew.row_bcast) {
        hoisted[0] = ew.key_mask(n0 + kw + g);
        hoisted[1] = ew.key_mask(n0 + kw + g + 8);
      }
    }
    const uint32_t drop_c2 = static_cast<uint32_t>(b * p.heads + h);
#pragma unroll
    for (int nt = 0; nt < NQ; ++nt) {
      // keep bits: lane L draws Philox for keys n0 + kw + 4*(L/8) .. +3 and query m0 + 8*nt + L%8 (one call per
      // 4 elements), packs the four keep bits, and each thread fetches its own by shuffle
      uint32_t bits = 0xFu;
      if (dropout) {
        const uint4 rnd = philox(static_cast<uint32_t>((n0 + kw) >> 2) + (lane / 8),
                                 static_cast<uint32_t>(m0 + nt * 8 + lane % 8), drop_c2,
                                 static_cast<uint32_t>(p.offset), seed_lo, seed_hi);
        bits = (rnd.x >= drop_thr ? 1u : 0u) | (rnd.y >= drop_thr ? 2u : 0u) | (rnd.z >= drop_thr ? 4u : 0u) |
               (rnd.w >= drop_thr ? 8u : 0u);
      }
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int il = nt * 8 + 2 * t + (c & 1);
        const int jl = kw + g + (c / 2) * 8;
        bool keep = true;
        if (dropout) {
          const uint32_t src = __shfl_sync(0xffffffffu, bits, ((g / 4) + 2 * (c / 2)) * 8 + 2 * t + (c & 1));
          keep = (src >> (g & 3)) & 1u;
        }
        ew.apply(st[nt][c], dpt[nt][c], m0 + il, n0 + jl, cL[il], cD[il], keep, hoisted[c / 2]);
      }
    }

    if constexpr (ATOMIC) {
      static_assert(sizeof(T) == 2, "the atomic dQ path is 16-bit only");
#pragma unroll
      for (int nt = 0; nt < NQ; ++nt) {
        *reinterpret_cast<uint32_t*>(sDS + (kw + g) * LDS + nt * 8 + 2 * t) = Elem<T>::pack(dpt[nt][0], dpt[nt][1]);
        *reinterpret_cast<uint32_t*>(sDS + (kw + g + 8) * LDS + nt * 8 + 2 * t) =
            Elem<T>::pack(dpt[nt][2], dpt[nt][3]);
      }
    }

    // dV += P_drop^T dO, dK += dS^T Q (this chunk's columns)
#pragma unroll
    for (int kb = 0; kb < BM / KS; ++kb) {
      FragA<T> a;
      a_from_acc<T>(a, st, kb);
      mma_kn<T, NC>(dv, a, cO, LD, c0, kb * KS, FULL ? DC : dv_valid, lane);
    }
#pragma unroll
    for (int kb = 0; kb < BM / KS; ++kb) {
      FragA<T> a;
      a_from_acc<T>(a, dpt, kb);
      mma_kn<T, NC>(dk, a, cQ, LD, c0, kb * KS, FULL ? DC : dk_valid, lane);
    }

    if constexpr (ATOMIC) {
      // dQ[m0.., :] += dS K: warps split the BM query rows into groups of 16 and, when there are more warps than
      // groups, the columns; the next iteration's first barrier orders these reads before sDS is written again
      __syncthreads();
      constexpr int RG = BM / 16;
      constexpr int CG = NW > RG ? NW / RG : 1;
      constexpr int CW = D / CG;  // columns per work item
      float* acc_bh = p.dq_acc + ((b * p.heads + h) * p.lq) * p.e;
      for (int item = warp; item < RG * CG; item += NW) {
        const int rg = item % RG;
        const int cg = item / RG;
        FragA<T> a[BN / 16];
#pragma unroll
        for (int ks = 0; ks < BN / 16; ++ks) {
          const int mi = lane / 8;
          asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                       : "=r"(a[ks].r[0]), "=r"(a[ks].r[1]), "=r"(a[ks].r[2]), "=r"(a[ks].r[3])
                       : "r"(smem_addr(sDS + (ks * 16 + (mi / 2) * 8 + lane % 8) * LDS + rg * 16 + (mi % 2) * 8)));
        }
        const int i0 = m0 + rg * 16 + g;
#pragma unroll
        for (int np = 0; np < CW / 16; ++np) {
          const int col = cg * CW + np * 16;
          if (col < E) {
            float acc[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
            for (int ks = 0; ks < BN / 16; ++ks) mma_kn<T, 2>(acc, a[ks], sK, LD, col, ks * 16, 16, lane);
#pragma unroll
            for (int n = 0; n < 2; ++n) {
              const int c = col + n * 8 + 2 * t;
#pragma unroll
              for (int r = 0; r < 2; ++r) {
                const int i = i0 + r * 8;
                if (i < lq && c < E) {
                  float* dst = acc_bh + (int64_t)i * p.e + c;
#if __CUDA_ARCH__ >= 900
                  atomicAdd(reinterpret_cast<float2*>(dst), make_float2(acc[n][2 * r], acc[n][2 * r + 1]));
#else
                  atomicAdd(dst, acc[n][2 * r]);
                  atomicAdd(dst + 1, acc[n][2 * r + 1]);
#endif
                }
              }
            }
          }
        }
      }
    }
  }
  cp_async_wait_all();  // no copy may outlive the block (iters == 0 leaves K/V in flight)

  const float scale = static_cast<float>(p.scale);
  T* dkg = static_cast<T*>(p.dk) + b * p.dk_stride[0] + hk * p.dk_stride[1] + (int64_t)c0 * p.dk_stride[3];
  T* dvg = static_cast<T*>(p.dv) + b * p.dv_stride[0] + hk * p.dv_stride[1] + (int64_t)c0 * p.dv_stride[3];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int j = n0 + kw + g + r * 8;
    if (j < lk) {
#pragma unroll
      for (int n = 0; n < NC; ++n) {
        const int c = n * 8 + 2 * t;
        store_pair<T>(dkg + (int64_t)j * p.dk_stride[2], p.dk_stride[3], c, dk_valid, dk[n][2 * r] * scale,
                      dk[n][2 * r + 1] * scale, p.flags & FLAG_VEC_DK);
        store_pair<T>(dvg + (int64_t)j * p.dv_stride[2], p.dv_stride[3], c, dv_valid, dv[n][2 * r], dv[n][2 * r + 1],
                      p.flags & FLAG_VEC_DV);
      }
    }
  }
}

// ---------------------------------------------------------------- dQ
template <typename T, int D, int DC, int BM, int BN, int ST>
__device__ __forceinline__ void dq(const Params& p) {
  constexpr int NW = BM / 16;
  constexpr int NT = NW * 32;
  constexpr int KS = Elem<T>::KS;
  constexpr int LD = D + Elem<T>::PAD;
  constexpr int NK = BN / 8;   // S n8-tiles (keys) per warp
  constexpr int NC = DC / 8;   // dQ n8-tiles per warp

  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sO = sQ + BM * LD;          // dO
  T* sK = sO + BM * LD;          // [ST][BN][LD]
  T* sV = sK + ST * BN * LD;     // [ST][BN][LD]

  const int tid = threadIdx.x;
  const int warp = tid / 32;
  const int lane = tid % 32;
  const int g = lane / 4;
  const int t = lane % 4;

  int64_t bid = blockIdx.x;
  int qt = static_cast<int>(bid % p.tiles);
  bid /= p.tiles;
  const int64_t b = bid % p.batch;
  bid /= p.batch;
  const int64_t h = bid % p.heads;
  const int chunk = static_cast<int>(bid / p.heads);
  if (p.causal) qt = static_cast<int>(p.tiles - 1 - qt);  // heavier tiles first
  const int64_t hk = h / p.group;
  const int lq = static_cast<int>(p.lq);
  const int lk = static_cast<int>(p.lk);
  const int E = static_cast<int>(p.e);
  const int Ev = static_cast<int>(p.ev);
  const int m0 = qt * BM;
  const int c0 = chunk * DC;
  const int dq_valid = min(DC, E - c0);
  const int64_t rows_total = p.batch * p.heads * p.lq;

  const T* qg = static_cast<const T*>(p.q) + b * p.q_stride[0] + h * p.q_stride[1] + (int64_t)m0 * p.q_stride[2];
  const T* dg = static_cast<const T*>(p.dout) + b * p.do_stride[0] + h * p.do_stride[1] + (int64_t)m0 * p.do_stride[2];
  const T* kg = static_cast<const T*>(p.k) + b * p.k_stride[0] + hk * p.k_stride[1];
  const T* vg = static_cast<const T*>(p.v) + b * p.v_stride[0] + hk * p.v_stride[1];
  load_tile<T, BM, D, LD, NT>(sQ, qg, static_cast<const T*>(p.q), p.q_stride[2], p.q_stride[3], lq - m0, E,
                              p.flags & FLAG_VEC_Q, tid);
  load_tile<T, BM, D, LD, NT>(sO, dg, static_cast<const T*>(p.dout), p.do_stride[2], p.do_stride[3], lq - m0, Ev,
                              p.flags & FLAG_VEC_DO, tid);

  int n_end = lk;
  if (p.causal) {
    int64_t last_row = min(m0 + BM, lq) - 1;
    int64_t lim = last_row + p.causal_offset + 1;
    n_end = static_cast<int>(lim < 0 ? 0 : (lim < lk ? lim : lk));
  }
  const int n_blocks = (n_end + BN - 1) / BN;

  auto load_kv = [&](int nb, int stage) {
    const int n0 = nb * BN;
    load_tile<T, BN, D, LD, NT>(sK + stage * BN * LD, kg + (int64_t)n0 * p.k_stride[2], static_cast<const T*>(p.k),
                                p.k_stride[2], p.k_stride[3], lk - n0, E, p.flags & FLAG_VEC_K, tid);
    load_tile<T, BN, D, LD, NT>(sV + stage * BN * LD, vg + (int64_t)n0 * p.v_stride[2], static_cast<const T*>(p.v),
                                p.v_stride[2], p.v_stride[3], lk - n0, Ev, p.flags & FLAG_VEC_V, tid);
  };
  if (ST == 2 && n_blocks > 0) load_kv(0, 0);
  cp_async_commit();

  // this thread's rows: i0 = m0 + 16*warp + g and i0 + 8
  const int i0 = m0 + warp * 16 + g;
  float lse2[2], dsum[2];
  const int64_t row_base = (b * p.heads + h) * p.lq;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int i = i0 + r * 8;
    lse2[r] = i < lq ? p.stat[rows_total + row_base + i] : MEMEFF_INF;
    dsum[r] = i < lq ? p.stat[row_base + i] : 0.f;
  }

  Elementwise ew;
  ew.scale_log2 = static_cast<float>(p.scale_log2);
  ew.drop_scale = static_cast<float>(p.dropout_scale);
  ew.lq = lq;
  ew.lk = lk;
  ew.causal = p.causal != 0;
  ew.causal_offset = p.causal_offset;
  ew.mask_kind = static_cast<int>(p.mask_kind);
  ew.ms2 = p.mask_stride[2];
  ew.ms3 = p.mask_stride[3];
  ew.row_bcast = p.mask_stride[2] == 0;
  if (ew.mask_kind != 0) {
    const int esz = ew.mask_kind == 1 ? 1 : (ew.mask_kind == 2 ? 4 : 2);
    ew.mask_bh = static_cast<const unsigned char*>(p.mask) + (b * p.mask_stride[0] + h * p.mask_stride[1]) * esz;
  }
  const uint32_t seed_lo = static_cast<uint32_t>(p.seed);
  const uint32_t seed_hi = static_cast<uint32_t>(static_cast<uint64_t>(p.seed) >> 32);
  const uint32_t drop_c2 = static_cast<uint32_t>(b * p.heads + h);
  const uint32_t drop_thr = static_cast<uint32_t>(p.dropout_threshold);
  const bool dropout = p.dropout != 0;

  float acc[NC][4];
#pragma unroll
  for (int i = 0; i < NC; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;

  const int e_steps = (E + KS - 1) / KS;
  const int ev_steps = (Ev + KS - 1) / KS;

  for (int nb = 0; nb < n_blocks; ++nb) {
    const int n0 = nb * BN;
    int stage = 0;
    if (ST == 2) {
      stage = nb & 1;
      cp_async_wait_all();
      __syncthreads();
      if (nb + 1 < n_blocks) load_kv(nb + 1, stage ^ 1);
      cp_async_commit();
    } else {
      if (nb > 0) __syncthreads();
      load_kv(nb, 0);
      cp_async_commit();
      cp_async_wait_all();
      __syncthreads();
    }
    const T* cK = sK + stage * BN * LD;
    const T* cV = sV + stage * BN * LD;

    float s[NK][4], dp[NK][4];
#pragma unroll
    for (int n = 0; n < NK; ++n) {
#pragma unroll
      for (int c = 0; c < 4; ++c) s[n][c] = dp[n][c] = 0.f;
    }
#pragma unroll
    for (int kk = 0; kk < D / KS; ++kk) {
      if (kk < e_steps) {
        FragA<T> a;
        load_a<T>(a, sQ, LD, warp * 16, kk * KS, lane);
        mma_nk<T, NK>(s, a, cK, LD, 0, kk * KS, BN, lane);
      }
    }
#pragma unroll
    for (int kk = 0; kk < D / KS; ++kk) {
      if (kk < ev_steps) {
        FragA<T> a;
        load_a<T>(a, sO, LD, warp * 16, kk * KS, lane);
        mma_nk<T, NK>(dp, a, cV, LD, 0, kk * KS, BN, lane);
      }
    }

    // element (nt, c): query i0 + 8*(c/2), key n0 + 8*nt + 2t + (c&1)
#pragma unroll
    for (int nt = 0; nt < NK; ++nt) {
      const int j = n0 + nt * 8 + 2 * t;
      float hoisted[2] = {0.f, 0.f};
      if (ew.row_bcast) {
        hoisted[0] = ew.key_mask(j);
        hoisted[1] = ew.key_mask(j + 1);
      }
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        bool keep0 = true, keep1 = true;
        if (dropout) {
          const uint4 rnd = philox(static_cast<uint32_t>(j) >> 2, static_cast<uint32_t>(i0 + r * 8), drop_c2,
                                   static_cast<uint32_t>(p.offset), seed_lo, seed_hi);
          keep0 = ((j & 3) == 0 ? rnd.x : rnd.z) >= drop_thr;
          keep1 = ((j & 3) == 0 ? rnd.y : rnd.w) >= drop_thr;
        }
        ew.apply(s[nt][2 * r], dp[nt][2 * r], i0 + r * 8, j, lse2[r], dsum[r], keep0, hoisted[0]);
        ew.apply(s[nt][2 * r + 1], dp[nt][2 * r + 1], i0 + r * 8, j + 1, lse2[r], dsum[r], keep1, hoisted[1]);
      }
    }

    // dQ += dS K (this chunk's columns)
#pragma unroll
    for (int kb = 0; kb < BN / KS; ++kb) {
      FragA<T> a;
      a_from_acc<T>(a, dp, kb);
      mma_kn<T, NC>(acc, a, cK, LD, c0, kb * KS, dq_valid, lane);
    }
  }
  cp_async_wait_all();

  const float scale = static_cast<float>(p.scale);
  T* dqg = static_cast<T*>(p.dq) + b * p.dq_stride[0] + h * p.dq_stride[1] + (int64_t)c0 * p.dq_stride[3];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int i = i0 + r * 8;
    if (i < lq) {
#pragma unroll
      for (int n = 0; n < NC; ++n) {
        store_pair<T>(dqg + (int64_t)i * p.dq_stride[2], p.dq_stride[3], n * 8 + 2 * t, dq_valid, acc[n][2 * r] * scale,
                      acc[n][2 * r + 1] * scale, p.flags & FLAG_VEC_DQ);
      }
    }
  }
}

}  // namespace memeff

// ---- instantiations. The host-side table (MemeffBackwardKernel.java) mirrors every line:
// MEMEFF_BWD(dtype, D, DC, dkdv BM, dkdv BN, dkdv stages, dq BM, dq BN, dq stages), D = padded max(E, Ev), DC =
// output columns per block. dkdv: BN/16 warps; dq: BM/16 warps. Shared memory (elements of T):
// dkdv (2*BN + 2*ST*BM) * (D + PAD) + 2*ST*BM floats (+ BN * (BM + PAD) for dkdvq); dq (2*BM + 2*ST*BN) * (D + PAD).
// MEMEFF_BWD_ATOMIC(dtype, D, DC, dkdv BM, dkdv BN, dkdv stages): the atomic dK/dV/dQ kernel for 16-bit D <= 128;
// MEMEFF_BWD_ATOMIC_MINB(..., blocks) the same with a minimum of resident blocks per SM in __launch_bounds__.
#define MEMEFF_BWD(DT, T, D, DC, KBM, KBN, KST, QBM, QBN, QST)                                                       \
  extern "C" __global__ void __launch_bounds__((KBN) / 16 * 32) memeff_bwd_dkdv_##DT##_d##D(                        \
      const memeff::Params p) {                                                                                  \
    memeff::dkdv<T, D, DC, KBM, KBN, KST, false, false>(p);                                                             \
  }                                                                                                                  \
  extern "C" __global__ void __launch_bounds__((QBM) / 16 * 32) memeff_bwd_dq_##DT##_d##D(const memeff::Params p) { \
    memeff::dq<T, D, DC, QBM, QBN, QST>(p);                                                                      \
  }

// The atomic variant of the dK/dV kernel (dQ accumulated with atomics; memeff_bwd_dqconv converts it), same tiles:
// memeff_bwd_dkdvq_* for any head dims up to D, memeff_bwd_dkdvqf_* for E == Ev == D (no bounds tests in the products).
#define MEMEFF_BWD_ATOMIC_K(DT, T, D, DC, KBM, KBN, KST, NAME, FULL, ...)                                             \
  extern "C" __global__ void __launch_bounds__(__VA_ARGS__) NAME##_##DT##_d##D(const memeff::Params p) {         \
    memeff::dkdv<T, D, DC, KBM, KBN, KST, true, FULL>(p);                                                        \
  }
#define MEMEFF_BWD_ATOMIC(DT, T, D, DC, KBM, KBN, KST)                                                               \
  MEMEFF_BWD_ATOMIC_K(DT, T, D, DC, KBM, KBN, KST, memeff_bwd_dkdvq, false, (KBN) / 16 * 32)                         \
  MEMEFF_BWD_ATOMIC_K(DT, T, D, DC, KBM, KBN, KST, memeff_bwd_dkdvqf, true, (KBN) / 16 * 32)
#define MEMEFF_BWD_ATOMIC_MINB(DT, T, D, DC, KBM, KBN, KST, MINB)                                                    \
  MEMEFF_BWD_ATOMIC_K(DT, T, D, DC, KBM, KBN, KST, memeff_bwd_dkdvq, false, (KBN) / 16 * 32, MINB)                   \
  MEMEFF_BWD_ATOMIC_K(DT, T, D, DC, KBM, KBN, KST, memeff_bwd_dkdvqf, true, (KBN) / 16 * 32, MINB)

#define MEMEFF_BWD_PRE(DT, T)                                                                                       \
  extern "C" __global__ void __launch_bounds__(256) memeff_bwd_pre_##DT(const memeff::Params p) {               \
    memeff::preprocess<T>(p);                                                                                    \
  }                                                                                                                  \
  extern "C" __global__ void __launch_bounds__(256) memeff_bwd_dqconv_##DT(const memeff::Params p) {            \
    memeff::dq_convert<T>(p);                                                                                    \
  }

#define MEMEFF_BWD_16BIT(DT, T)                     \
  MEMEFF_BWD_PRE(DT, T)                             \
  MEMEFF_BWD(DT, T, 64, 64, 32, 64, 2, 64, 64, 2)   \
  MEMEFF_BWD(DT, T, 128, 128, 32, 64, 2, 64, 32, 2) \
  MEMEFF_BWD_ATOMIC_MINB(DT, T, 64, 64, 32, 64, 2, 3) \
  MEMEFF_BWD_ATOMIC(DT, T, 128, 128, 32, 64, 2)     \
  MEMEFF_BWD(DT, T, 256, 128, 32, 32, 1, 32, 32, 1) \
  MEMEFF_BWD(DT, T, 512, 128, 16, 32, 1, 16, 32, 1)

#if !defined(MEMEFF_ONLY) || MEMEFF_ONLY == 1
MEMEFF_BWD_16BIT(f16, memeff::f16)
#endif
#if !defined(MEMEFF_ONLY) || MEMEFF_ONLY == 2
MEMEFF_BWD_16BIT(bf16, memeff::bf16)
#endif
#if !defined(MEMEFF_ONLY) || MEMEFF_ONLY == 3
MEMEFF_BWD_PRE(f32, float)
MEMEFF_BWD(f32, float, 64, 64, 32, 64, 2, 64, 32, 2)
MEMEFF_BWD(f32, float, 128, 64, 32, 32, 1, 32, 32, 1)
MEMEFF_BWD(f32, float, 256, 64, 16, 32, 1, 16, 32, 1)
MEMEFF_BWD(f32, float, 512, 64, 8, 16, 1, 16, 8, 1)
#endif
