// Memory-efficient attention forward (xFormers structure): each thread block takes a tile of BM query rows of one
// (batch, query head, value-dim chunk), streams over the keys in tiles of BN, keeps the online-softmax state and the
// output tile in registers, and writes the output and the log-sum-exp once.
//
// Tensor cores: fp16/bf16 use mma.sync m16n8k16 (fp32 accumulation), ldmatrix from padded shared memory and cp.async
// double buffering of K/V. fp32 uses mma.sync m16n8k8 TF32 in the 3xTF32 split (a = big + small, a*b ~ big*big +
// big*small + small*big), which keeps fp32-level accuracy on tensor cores.
//
// Value head dims above HDV are split over the grid (each block computes HDV output columns and recomputes S); the
// row statistics are identical in every chunk, chunk 0 writes the LSE.
//
// Masks are read through the caller's strides (stride 0 = broadcast); dropout is dev.sdpa4j.Dropout's Philox4x32-10.
// Minimum architecture: sm_80 (cp.async, ldmatrix, bf16/tf32 mma).
//
// The one include is memeff_common.cuh (packaged beside this file; KernelSource hands it to NVRTC): no system
// headers, 16-bit conversions are inline PTX.

#include "memeff_common.cuh"

namespace memeff {

// Kernel parameters, passed by value. Every field is 8 bytes so the host can lay it out as a plain array of longs.
struct Params {
  const void* q;
  const void* k;
  const void* v;
  void* o;
  float* lse;          // null when not wanted
  const void* mask;    // null when mask_kind == 0
  int64_t q_stride[4]; // b, h, l, e (elements)
  int64_t k_stride[4];
  int64_t v_stride[4];
  int64_t o_stride[4];
  int64_t lse_stride[4];  // b, h, l, unused
  int64_t mask_stride[4]; // b, h, i, j of the [B, Hq, Lq, Lk] broadcast view
  int64_t batch;
  int64_t heads;          // Hq
  int64_t group;          // Hq / Hkv
  int64_t lq;
  int64_t lk;
  int64_t e;
  int64_t ev;
  int64_t mask_kind;      // 0 none, 1 bool (uint8), 2 fp32 additive, 3 fp16 additive, 4 bf16 additive
  int64_t causal;         // 0 none, 1 causal: key j takes part iff j <= i + causal_offset
  int64_t causal_offset;  // 0 (top-left) or Lk - Lq (bottom-right)
  int64_t flags;          // FLAG_* below
  int64_t q_tiles;        // ceil(Lq / BM)
  int64_t ev_chunks;      // ceil(Ev / HDV)
  double scale_log2;      // scale * log2(e)
  double dropout_scale;   // 1 / (1 - p), 1 without dropout
  int64_t dropout;        // 1 when p > 0
  int64_t dropout_threshold; // floor(p * 2^32), unsigned
  int64_t seed;           // Philox key (k0 low word, k1 high word)
  int64_t offset;         // Philox counter word c3
};

enum : int {
  FLAG_VEC_Q = 1,
  FLAG_VEC_K = 2,
  FLAG_VEC_V = 4,
  FLAG_VEC_O = 8,
  FLAG_VEC_MASK = 16,   // direct mask reads: two keys per load
  FLAG_MASK_ROW = 32,   // mask rows broadcast (query stride 0): one [BN] row per key tile staged in shared memory
  FLAG_MASK_TILE = 64,  // mask tile [BM, BN] staged in shared memory by cp.async with the K/V tile
  FLAG_BATCH_FIRST = 128  // schedule the batch index fastest (mask tiles shared across the batch)
};

constexpr float LN2 = 0.6931471805599453f;

// split_tf32 of memeff_common.cuh for a float held in a register; the same split, written on the float (ptxas
// schedules the fp32 kernels differently from the bit-pattern form, so the forward keeps this one)
__device__ __forceinline__ void split_tf32(float x, uint32_t& big, uint32_t& small) {
  const uint32_t b = __float_as_uint(x) & 0xFFFFE000u;
  big = b;
  small = __float_as_uint(x - __uint_as_float(b));
}

// c[n] += a * b[n] for N n-tiles in 3xTF32, a split once; the three products run as three passes over the n-tiles
// (small terms first), so N independent accumulators sit between two dependent mma.sync instead of none.
template <int N>
__device__ __forceinline__ void mma_3xtf32_row(float (*c)[4], const uint32_t* ab, const uint32_t* as,
                                               const float (*b)[2]) {
  uint32_t bb[N][2], bs[N][2];
#pragma unroll
  for (int n = 0; n < N; ++n) {
    split_tf32(b[n][0], bb[n][0], bs[n][0]);
    split_tf32(b[n][1], bb[n][1], bs[n][1]);
  }
#pragma unroll
  for (int n = 0; n < N; ++n) mma1688_tf32(c[n], as, bb[n]);
#pragma unroll
  for (int n = 0; n < N; ++n) mma1688_tf32(c[n], ab, bs[n]);
#pragma unroll
  for (int n = 0; n < N; ++n) mma1688_tf32(c[n], ab, bb[n]);
}

__device__ __forceinline__ void ldsm_x4(uint32_t* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldsm_x4_trans(uint32_t* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// Loads rows [0, ROWS) x columns [0, COLS) of a strided matrix into shared memory (row pitch LD elements); elements
// at rows >= rows_valid or columns >= cols_valid are zero. `safe` is any readable address of the tensor (never
// dereferenced by a zero-byte cp.async, but kept in bounds for the tools).
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

// Mask element kinds (Params::mask_kind) and their sizes in bytes.
enum : int { MASK_BOOL = 1, MASK_F32 = 2, MASK_F16 = 3, MASK_BF16 = 4 };
__host__ __device__ constexpr int mask_esz(int kind) { return kind == MASK_BOOL ? 1 : (kind == MASK_F32 ? 4 : 2); }

// Stages the mask of key tile [n0, n0 + BN) for `rows` query rows (1 when the mask broadcasts over queries) in shared
// memory, row pitch BN * esz + 16 bytes; bytes past Lk or rows past Lq are zero-filled, never read.
template <int BN, int NT>
__device__ __forceinline__ void load_mask_tile(unsigned char* s, const unsigned char* mbh, const unsigned char* safe,
                                               int esz, int64_t row_stride_bytes, int rows, int m0, int lq, int n0,
                                               int lk, int tid) {
  const int row_bytes = BN * esz;
  const int ld = row_bytes + 16;
  const int cpr = row_bytes / 16;
  const int64_t valid_bytes = static_cast<int64_t>(lk - n0) * esz;
  for (int idx = tid; idx < rows * cpr; idx += NT) {
    const int r = idx / cpr;
    const int c = (idx % cpr) * 16;
    int64_t n = valid_bytes - c;
    n = n < 0 ? 0 : (n > 16 ? 16 : n);
    if (m0 + r >= lq) n = 0;
    const unsigned char* src = n > 0 ? mbh + (m0 + r) * row_stride_bytes + static_cast<int64_t>(n0) * esz + c : safe;
    cp_async16(s + r * ld + c, src, static_cast<int>(n));
  }
}

// Mask values in natural units (-inf where a boolean mask is false); the caller adds them times log2(e).
__device__ __forceinline__ float read_mask(const void* base, int kind, int64_t off) {
  switch (kind) {
    case MASK_BOOL: return static_cast<const uint8_t*>(base)[off] ? 0.f : -MEMEFF_INF;
    case MASK_F32: return static_cast<const float*>(base)[off];
    case MASK_F16: return f16_to_float(static_cast<const uint16_t*>(base)[off]);
    default: return bf16_to_float(static_cast<const uint16_t*>(base)[off]);
  }
}

// Two adjacent keys (j even, unit key stride, pair-aligned address).
__device__ __forceinline__ float2 read_mask_pair(const void* base, int kind, int64_t off) {
  switch (kind) {
    case MASK_BOOL: {
      uint16_t b = *reinterpret_cast<const uint16_t*>(static_cast<const uint8_t*>(base) + off);
      return make_float2((b & 0xFF) ? 0.f : -MEMEFF_INF, (b >> 8) ? 0.f : -MEMEFF_INF);
    }
    case MASK_F32: return *reinterpret_cast<const float2*>(static_cast<const float*>(base) + off);
    case MASK_F16: {
      uint32_t w = *reinterpret_cast<const uint32_t*>(static_cast<const uint16_t*>(base) + off);
      return make_float2(f16_to_float(w & 0xFFFFu), f16_to_float(w >> 16));
    }
    default: {
      uint32_t w = *reinterpret_cast<const uint32_t*>(static_cast<const uint16_t*>(base) + off);
      return make_float2(__uint_as_float(w << 16), __uint_as_float(w & 0xFFFF0000u));
    }
  }
}

// This thread's mask values (natural units) of one staged key tile, KIND and ROW compile-time (no branch per
// element): m[nt] = keys nt * 8 + 2t, +1 of its rows rl and rl + 8 (row 0 when ROW); `at` = the byte of key 2t in row
// rl (row 0 when ROW), so every load has a constant offset from it.
template <int KIND, bool ROW, int BN>
__device__ __forceinline__ void staged_mask(float (*m)[4], const unsigned char* at) {
  constexpr int ESZ = mask_esz(KIND);
  constexpr int LD = BN * ESZ + 16;
#pragma unroll
  for (int nt = 0; nt < BN / 8; ++nt) {
    const float2 m0 = read_mask_pair(at + nt * 8 * ESZ, KIND, 0);
    const float2 m1 = ROW ? m0 : read_mask_pair(at + 8 * LD + nt * 8 * ESZ, KIND, 0);
    m[nt][0] = m0.x;
    m[nt][1] = m0.y;
    m[nt][2] = m1.x;
    m[nt][3] = m1.y;
  }
}

// staged_mask for the run-time kind and row mode of a block (a uniform branch per key tile); ms = the staged tile.
template <int BN>
__device__ __forceinline__ void staged_mask(float (*m)[4], const unsigned char* ms, int kind, bool row, int rl, int t) {
  const int esz = mask_esz(kind);
  const unsigned char* at = ms + (row ? 0 : rl * (BN * esz + 16)) + 2 * t * esz;
  if (row) {
    switch (kind) {
      case MASK_BOOL: staged_mask<MASK_BOOL, true, BN>(m, at); break;
      case MASK_F32: staged_mask<MASK_F32, true, BN>(m, at); break;
      case MASK_F16: staged_mask<MASK_F16, true, BN>(m, at); break;
      default: staged_mask<MASK_BF16, true, BN>(m, at); break;
    }
  } else {
    switch (kind) {
      case MASK_BOOL: staged_mask<MASK_BOOL, false, BN>(m, at); break;
      case MASK_F32: staged_mask<MASK_F32, false, BN>(m, at); break;
      case MASK_F16: staged_mask<MASK_F16, false, BN>(m, at); break;
      default: staged_mask<MASK_BF16, false, BN>(m, at); break;
    }
  }
}

// FULL (16-bit kernels of their own, launched only when E == HDQ and Ev == HDV): no zero-padded k-steps or output
// columns, so the products run without per-step bounds tests, which otherwise split the unrolled ldmatrix/mma chains
// into separate basic blocks.
template <typename T, int HDQ, int HDV, int BM, int BN, int STAGES, bool FULL = false>
__device__ __forceinline__ void attention(const Params& p) {
  constexpr bool F32 = sizeof(T) == 4;
  constexpr int NW = BM / 16;
  constexpr int NT = NW * 32;
  constexpr int PAD = Elem<T>::PAD;
  constexpr int LDQ = HDQ + PAD;
  constexpr int LDV = HDV + PAD;
  constexpr int NTILES = BN / 8;     // S n-tiles per warp
  constexpr int OTILES = HDV / 8;    // O n-tiles per warp

  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sK = sQ + BM * LDQ;
  T* sV = sK + STAGES * BN * LDQ;

  const int tid = threadIdx.x;
  const int warp = tid / 32;
  const int lane = tid % 32;
  const int g = lane / 4;
  const int t = lane % 4;

  // block -> (batch, query tile, head, value chunk). Query tiles vary fastest so that blocks sharing K/V run together;
  // with FLAG_BATCH_FIRST (a mask tile shared by the whole batch) the batch varies fastest so that the blocks reading
  // one mask tile run together and all but the first read hit L2. Heavier causal tiles run first.
  int64_t bid = blockIdx.x;
  int64_t b;
  int qt;
  if (p.flags & FLAG_BATCH_FIRST) {
    b = bid % p.batch;
    bid /= p.batch;
    qt = static_cast<int>(bid % p.q_tiles);
    bid /= p.q_tiles;
  } else {
    qt = static_cast<int>(bid % p.q_tiles);
    bid /= p.q_tiles;
    b = bid % p.batch;
    bid /= p.batch;
  }
  const int64_t h = bid % p.heads;
  const int chunk = static_cast<int>(bid / p.heads);
  if (p.causal) qt = static_cast<int>(p.q_tiles - 1 - qt);
  const int64_t hk = h / p.group;
  const int lq = static_cast<int>(p.lq);
  const int lk = static_cast<int>(p.lk);
  const int E = static_cast<int>(p.e);
  const int m0 = qt * BM;
  const int c0 = chunk * HDV;
  const int ev_valid = min(HDV, static_cast<int>(p.ev) - c0);

  const T* qg = static_cast<const T*>(p.q) + b * p.q_stride[0] + h * p.q_stride[1] + (int64_t)m0 * p.q_stride[2];
  const T* kg = static_cast<const T*>(p.k) + b * p.k_stride[0] + hk * p.k_stride[1];
  const T* vg = static_cast<const T*>(p.v) + b * p.v_stride[0] + hk * p.v_stride[1] + (int64_t)c0 * p.v_stride[3];
  const bool vq = p.flags & FLAG_VEC_Q, vk = p.flags & FLAG_VEC_K, vv = p.flags & FLAG_VEC_V;

  // keys this tile can see
  int n_end = lk;
  if (p.causal) {
    int64_t last_row = min(m0 + BM, lq) - 1;
    int64_t lim = last_row + p.causal_offset + 1;
    n_end = static_cast<int>(lim < 0 ? 0 : (lim < lk ? lim : lk));
  }
  const int n_blocks = (n_end + BN - 1) / BN;

  const int mask_kind = static_cast<int>(p.mask_kind);
  const bool mask_pair = p.flags & FLAG_VEC_MASK;
  const unsigned char* mask_bh = nullptr;
  const int mesz = mask_esz(mask_kind);
  if (mask_kind != 0) {
    mask_bh = static_cast<const unsigned char*>(p.mask) + (b * p.mask_stride[0] + h * p.mask_stride[1]) * mesz;
  }
  const bool mask_row = p.flags & FLAG_MASK_ROW;
  const bool mask_smem = p.flags & (FLAG_MASK_ROW | FLAG_MASK_TILE);
  const int mask_stage_bytes = (mask_row ? 1 : BM) * (BN * mesz + 16);
  unsigned char* sM = reinterpret_cast<unsigned char*>(sV + STAGES * BN * LDV);

  load_tile<T, BM, HDQ, LDQ, NT>(sQ, qg, static_cast<const T*>(p.q), p.q_stride[2], p.q_stride[3], lq - m0, E, vq, tid);
  auto load_kv = [&](int nb, int stage) {
    int n0 = nb * BN;
    load_tile<T, BN, HDQ, LDQ, NT>(sK + stage * BN * LDQ, kg + (int64_t)n0 * p.k_stride[2], static_cast<const T*>(p.k),
                                   p.k_stride[2], p.k_stride[3], lk - n0, E, vk, tid);
    load_tile<T, BN, HDV, LDV, NT>(sV + stage * BN * LDV, vg + (int64_t)n0 * p.v_stride[2], static_cast<const T*>(p.v),
                                   p.v_stride[2], p.v_stride[3], lk - n0, ev_valid, vv, tid);
    if (mask_smem) {
      load_mask_tile<BN, NT>(sM + stage * mask_stage_bytes, mask_bh, static_cast<const unsigned char*>(p.mask),
                             mesz, p.mask_stride[2] * mesz, mask_row ? 1 : BM, m0, lq, n0, lk, tid);
    }
  };
  if (STAGES == 2 && n_blocks > 0) load_kv(0, 0);
  cp_async_commit();

  float o[OTILES][4];
#pragma unroll
  for (int i = 0; i < OTILES; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float row_max[2] = {-MEMEFF_INF, -MEMEFF_INF};
  float row_sum[2] = {0.f, 0.f};

  const int row0 = m0 + warp * 16 + g;  // this thread's rows: row0 and row0 + 8
  const float scale_log2 = static_cast<float>(p.scale_log2);
  const uint32_t seed_lo = static_cast<uint32_t>(p.seed);
  const uint32_t seed_hi = static_cast<uint32_t>(static_cast<uint64_t>(p.seed) >> 32);
  const uint32_t drop_c2 = static_cast<uint32_t>(b * p.heads + h);
  const uint32_t drop_thr = static_cast<uint32_t>(p.dropout_threshold);

  const int e_steps = F32 ? (E + 7) / 8 : (E + 15) / 16;
  const int ev_steps16 = (ev_valid + 15) / 16;

  for (int nb = 0; nb < n_blocks; ++nb) {
    const int n0 = nb * BN;
    int stage = 0;
    if (STAGES == 2) {
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
    const T* cK = sK + stage * BN * LDQ;
    const T* cV = sV + stage * BN * LDV;

    // mask values of this tile (natural units): staged tile, direct reads, or nothing
    float madd[NTILES][4];
    const bool has_mask = mask_kind != 0;
    const bool direct_mask = has_mask && !mask_smem;
    if (direct_mask) {
#pragma unroll
      for (int nt = 0; nt < NTILES; ++nt) {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const int i = row0 + r * 8;
          const int j = n0 + nt * 8 + 2 * t;
          float a0 = 0.f, a1 = 0.f;
          if (i < lq) {
            const int64_t off = i * p.mask_stride[2] + j * p.mask_stride[3];
            if (mask_pair && j + 1 < lk) {
              float2 m2 = read_mask_pair(mask_bh, mask_kind, off);
              a0 = m2.x;
              a1 = m2.y;
            } else {
              if (j < lk) a0 = read_mask(mask_bh, mask_kind, off);
              if (j + 1 < lk) a1 = read_mask(mask_bh, mask_kind, off + p.mask_stride[3]);
            }
          }
          madd[nt][2 * r] = a0;
          madd[nt][2 * r + 1] = a1;
        }
      }
    }

    // S = Q K^T for this warp's 16 rows
    float s[NTILES][4];
#pragma unroll
    for (int nt = 0; nt < NTILES; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
    if constexpr (!F32) {
#pragma unroll
      for (int kk = 0; kk < HDQ / 16; ++kk) {
        if (FULL || kk < e_steps) {
          uint32_t a[4];
          ldsm_x4(a, sQ + (warp * 16 + (lane % 16)) * LDQ + kk * 16 + (lane / 16) * 8);
#pragma unroll
          for (int np = 0; np < NTILES / 2; ++np) {
            uint32_t bq[4];
            const int m = lane / 8;
            ldsm_x4(bq, cK + (np * 16 + (m / 2) * 8 + (lane % 8)) * LDQ + kk * 16 + (m % 2) * 8);
            mma16816<T>(s[2 * np], a, bq);
            mma16816<T>(s[2 * np + 1], a, bq + 2);
          }
        }
      }
    } else {
#pragma unroll
      for (int kk = 0; kk < HDQ / 8; ++kk) {
        if (kk < e_steps) {
          const float* qa = reinterpret_cast<const float*>(sQ) + (warp * 16 + g) * LDQ + kk * 8 + t;
          const float a[4] = {qa[0], qa[8 * LDQ], qa[4], qa[8 * LDQ + 4]};
          uint32_t ab[4], as[4];
#pragma unroll
          for (int i = 0; i < 4; ++i) split_tf32(a[i], ab[i], as[i]);
          float kf[NTILES][2];
#pragma unroll
          for (int nt = 0; nt < NTILES; ++nt) {
            const float* kb = reinterpret_cast<const float*>(cK) + (nt * 8 + g) * LDQ + kk * 8 + t;
            kf[nt][0] = kb[0];
            kf[nt][1] = kb[4];
          }
          mma_3xtf32_row<NTILES>(s, ab, as, kf);
        }
      }
    }

    if (has_mask && mask_smem) {
      staged_mask<BN>(madd, sM + stage * mask_stage_bytes, mask_kind, mask_row, warp * 16 + g, t);
    }
    // scale, mask (log2 units), online softmax
    const bool bound = n0 + BN > lk;
    const bool causal_tile = p.causal && (n0 + BN - 1 > m0 + p.causal_offset);
#pragma unroll
    for (int nt = 0; nt < NTILES; ++nt) {
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        float v = s[nt][c] * scale_log2;
        if (has_mask) v = fmaf(madd[nt][c], LOG2E, v);
        if (bound || causal_tile) {
          const int i = row0 + (c / 2) * 8;
          const int j = n0 + nt * 8 + 2 * t + (c & 1);
          if (j >= lk || (causal_tile && j > i + p.causal_offset)) v = -MEMEFF_INF;
        }
        s[nt][c] = v;
      }
    }
    float row_alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = row_max[r];
#pragma unroll
      for (int nt = 0; nt < NTILES; ++nt) mx = fmaxf(mx, fmaxf(s[nt][2 * r], s[nt][2 * r + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float base = mx == -MEMEFF_INF ? 0.f : mx;
      const float alpha = ex2(row_max[r] - base);
      row_max[r] = mx;
      row_sum[r] *= alpha;
      row_alpha[r] = alpha;
      if constexpr (!F32) {
#pragma unroll
        for (int ot = 0; ot < OTILES; ++ot) {
          o[ot][2 * r] *= alpha;
          o[ot][2 * r + 1] *= alpha;
        }
      }
      float sum = 0.f;
#pragma unroll
      for (int nt = 0; nt < NTILES; ++nt) {
        float e0 = ex2(s[nt][2 * r] - base);
        float e1 = ex2(s[nt][2 * r + 1] - base);
        sum += e0 + e1;
        s[nt][2 * r] = e0;
        s[nt][2 * r + 1] = e1;
      }
      row_sum[r] += sum;
    }

    if (p.dropout) {
#pragma unroll
      for (int nt = 0; nt < NTILES; ++nt) {
        const int j = n0 + nt * 8 + 2 * t;
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const uint32_t i = static_cast<uint32_t>(row0 + r * 8);
          uint4 rnd = philox(static_cast<uint32_t>(j) >> 2, i, drop_c2, static_cast<uint32_t>(p.offset), seed_lo, seed_hi);
          const uint32_t u0 = (j & 3) == 0 ? rnd.x : rnd.z;
          const uint32_t u1 = (j & 3) == 0 ? rnd.y : rnd.w;
          if (u0 < drop_thr) s[nt][2 * r] = 0.f;
          if (u1 < drop_thr) s[nt][2 * r + 1] = 0.f;
        }
      }
    }

    // O += P V
    if constexpr (!F32) {
#pragma unroll
      for (int kb = 0; kb < BN / 16; ++kb) {
        uint32_t a[4];
        a[0] = Elem<T>::pack(s[2 * kb][0], s[2 * kb][1]);
        a[1] = Elem<T>::pack(s[2 * kb][2], s[2 * kb][3]);
        a[2] = Elem<T>::pack(s[2 * kb + 1][0], s[2 * kb + 1][1]);
        a[3] = Elem<T>::pack(s[2 * kb + 1][2], s[2 * kb + 1][3]);
#pragma unroll
        for (int np = 0; np < OTILES / 2; ++np) {
          if (FULL || np < ev_steps16) {
            uint32_t bv[4];
            const int m = lane / 8;
            ldsm_x4_trans(bv, cV + (kb * 16 + (m % 2) * 8 + (lane % 8)) * LDV + np * 16 + (m / 2) * 8);
            mma16816<T>(o[2 * np], a, bv);
            mma16816<T>(o[2 * np + 1], a, bv + 2);
          }
        }
      }
    } else {
      // O = alpha * O + P V, the P V of this tile staged per group of G output n-tiles: the tensor cores sum only this
      // tile's BN keys from zero, the running O is updated in fp32 (one FFMA per element, the rescale folded in)
      const int ev_steps8 = (ev_valid + 7) / 8;
      uint32_t pb[NTILES][4], ps[NTILES][4];
#pragma unroll
      for (int kb = 0; kb < NTILES; ++kb) {
        const float a[4] = {s[kb][0], s[kb][2], s[kb][1], s[kb][3]};
#pragma unroll
        for (int i = 0; i < 4; ++i) split_tf32(a[i], pb[kb][i], ps[kb][i]);
      }
      constexpr int G = OTILES < 4 ? OTILES : 4;  // O n-tiles per pass group
#pragma unroll
      for (int og = 0; og < OTILES; og += G) {
        if (og < ev_steps8) {
          float acc[G][4];
#pragma unroll
          for (int i = 0; i < G; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
#pragma unroll
          for (int kb = 0; kb < NTILES; ++kb) {
            float vf[G][2];
#pragma unroll
            for (int i = 0; i < G; ++i) {
              const float* vb = reinterpret_cast<const float*>(cV) + (kb * 8 + 2 * t) * LDV + (og + i) * 8 + g;
              vf[i][0] = vb[0];
              vf[i][1] = vb[LDV];
            }
            mma_3xtf32_row<G>(acc, pb[kb], ps[kb], vf);
          }
#pragma unroll
          for (int i = 0; i < G; ++i) {
#pragma unroll
            for (int c = 0; c < 4; ++c) o[og + i][c] = fmaf(o[og + i][c], row_alpha[c / 2], acc[i][c]);
          }
        }
      }
    }
  }

  cp_async_wait_all();  // no copy may outlive the block (n_blocks == 0 leaves the Q tile in flight)

  // epilogue: normalise, write O and LSE
  T* og = static_cast<T*>(p.o) + b * p.o_stride[0] + h * p.o_stride[1] + (int64_t)c0 * p.o_stride[3];
  const bool vo = p.flags & FLAG_VEC_O;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float sum = row_sum[r];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int i = row0 + r * 8;
    const bool empty = !(sum > 0.f);
    const float inv = empty ? 0.f : static_cast<float>(p.dropout_scale) / sum;
    if (i < lq) {
      T* orow = og + (int64_t)i * p.o_stride[2];
#pragma unroll
      for (int ot = 0; ot < OTILES; ++ot) {
        const int c = ot * 8 + 2 * t;
        if (c < ev_valid) {
          const float x0 = o[ot][2 * r] * inv;
          const float x1 = o[ot][2 * r + 1] * inv;
          if constexpr (F32) {
            if (vo) {
              *reinterpret_cast<float2*>(orow + c) = make_float2(x0, x1);
            } else {
              orow[c * p.o_stride[3]] = x0;
              orow[(c + 1) * p.o_stride[3]] = x1;
            }
          } else {
            if (vo) {
              *reinterpret_cast<uint32_t*>(orow + c) = Elem<T>::pack(x0, x1);
            } else {
              orow[c * p.o_stride[3]] = Elem<T>::from(x0);
              orow[(c + 1) * p.o_stride[3]] = Elem<T>::from(x1);
            }
          }
        }
      }
      if (p.lse != nullptr && chunk == 0 && t == 0) {
        const float lse = empty ? -MEMEFF_INF : (row_max[r] + __log2f(sum)) * LN2;
        p.lse[b * p.lse_stride[0] + h * p.lse_stride[1] + (int64_t)i * p.lse_stride[2]] = lse;
      }
    }
  }
}

}  // namespace memeff

// ---- instantiations: memeff_fwd_<dtype>_q<HDQ>_v<HDV>; block = BM/16 warps; dynamic shared memory =
// (BM + STAGES*BN) * (HDQ + PAD) + STAGES*BN*(HDV + PAD) elements. The host-side table (MemeffKernel.java) mirrors
// the (BM, BN, STAGES) chosen here.
#define MEMEFF_KERNEL(NAME, T, HDQ, HDV, BM, BN, ST)                                                  \
  extern "C" __global__ void __launch_bounds__((BM) / 16 * 32) NAME(const memeff::Params p) {        \
    memeff::attention<T, HDQ, HDV, BM, BN, ST>(p);                                                    \
  }
// The same with a floor of MINB resident blocks per SM for the register allocation (__launch_bounds__). The fp32
// kernels are latency-bound (three dependent mma.sync per product): q64/v64 (52 KiB shared, 128 threads) runs 4
// blocks and q128 (99 KiB, 256 threads) 2 blocks, 16 warps per SM either way.
#define MEMEFF_KERNEL_MINB(NAME, T, HDQ, HDV, BM, BN, ST, MINB)                                       \
  extern "C" __global__ void __launch_bounds__((BM) / 16 * 32, MINB) NAME(const memeff::Params p) {  \
    memeff::attention<T, HDQ, HDV, BM, BN, ST>(p);                                                    \
  }

// The FULL variant (no bounds tests in the products; launched when E == HDQ and Ev == HDV), same tiles.
#define MEMEFF_KERNEL_FULL(NAME, T, HDQ, HDV, BM, BN, ST)                                             \
  extern "C" __global__ void __launch_bounds__((BM) / 16 * 32) NAME(const memeff::Params p) {        \
    memeff::attention<T, HDQ, HDV, BM, BN, ST, true>(p);                                              \
  }

#define MEMEFF_16BIT(DT, T)                                              \
  MEMEFF_KERNEL_FULL(memeff_fwd_##DT##_q64_v64f, T, 64, 64, 64, 64, 2)   \
  MEMEFF_KERNEL_FULL(memeff_fwd_##DT##_q128_v128f, T, 128, 128, 64, 64, 2) \
  MEMEFF_KERNEL(memeff_fwd_##DT##_q64_v64, T, 64, 64, 64, 64, 2)         \
  MEMEFF_KERNEL(memeff_fwd_##DT##_q64_v128, T, 64, 128, 64, 64, 2)       \
  MEMEFF_KERNEL(memeff_fwd_##DT##_q128_v64, T, 128, 64, 64, 64, 2)       \
  MEMEFF_KERNEL(memeff_fwd_##DT##_q128_v128, T, 128, 128, 64, 64, 2)     \
  MEMEFF_KERNEL(memeff_fwd_##DT##_q256_v64, T, 256, 64, 64, 32, 2)       \
  MEMEFF_KERNEL(memeff_fwd_##DT##_q256_v128, T, 256, 128, 64, 32, 2)     \
  MEMEFF_KERNEL(memeff_fwd_##DT##_q512_v64, T, 512, 64, 32, 32, 1)       \
  MEMEFF_KERNEL(memeff_fwd_##DT##_q512_v128, T, 512, 128, 32, 32, 1)

#if !defined(MEMEFF_ONLY) || MEMEFF_ONLY == 1
MEMEFF_16BIT(f16, memeff::f16)
#endif
#if !defined(MEMEFF_ONLY) || MEMEFF_ONLY == 2
MEMEFF_16BIT(bf16, memeff::bf16)
#endif
#if !defined(MEMEFF_ONLY) || MEMEFF_ONLY == 3
MEMEFF_KERNEL_MINB(memeff_fwd_f32_q64_v64, float, 64, 64, 64, 32, 2, 4)
MEMEFF_KERNEL(memeff_fwd_f32_q64_v128, float, 64, 128, 64, 32, 2)
MEMEFF_KERNEL_MINB(memeff_fwd_f32_q128_v64, float, 128, 64, 128, 16, 2, 2)
MEMEFF_KERNEL_MINB(memeff_fwd_f32_q128_v128, float, 128, 128, 128, 16, 2, 2)
MEMEFF_KERNEL(memeff_fwd_f32_q256_v64, float, 256, 64, 32, 32, 1)
MEMEFF_KERNEL(memeff_fwd_f32_q256_v128, float, 256, 128, 32, 32, 1)
MEMEFF_KERNEL(memeff_fwd_f32_q512_v64, float, 512, 64, 16, 16, 1)
MEMEFF_KERNEL(memeff_fwd_f32_q512_v128, float, 512, 128, 16, 16, 1)
#endif
