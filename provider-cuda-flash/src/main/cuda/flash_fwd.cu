// sdpa4j cuda-flash: FlashAttention-2 forward on tensor cores (mma.sync m16n8k16, fp32 accumulation).
//
// Its one include, flash_common.cuh (packaged beside it, handed to NVRTC), holds FlashParams, which every kernel takes
// by value (FlashDevice.java writes it), and the primitives the flash kernel files share.
//
// Structure (Dao, FlashAttention-2, 2023): a block owns kBlockM query rows of one (batch, head); each warp owns
// kMRep x 16 of those rows. Q is loaded once into shared memory; K and V tiles of kBlockN keys stream through
// shared memory with cp.async (V[n] loads while S = Q K[n]^T is computed, K[n-1] loads while O += P V[n] is).
// Shared tiles are stored in column blocks of kBlockKSmem (64 or 32) halves with an XOR swizzle of the 16-byte
// chunk index, so ldmatrix reads are conflict-free. S stays in registers, the online softmax uses exp2 with
// scale*log2(e) folded in, P is converted to 16-bit A fragments in registers. Key tiles are visited from the last
// to the first, so only the first one or two (boundary / causal diagonal) tiles pay for masking; tiles wholly
// above the causal diagonal are never visited. Rows with every key masked give O = 0 and LSE = -inf.
//
// Decode (flash-decoding, Lq <= 16 after GQA packing, or a grid too small for the device): flash_decode_* splits the
// keys across blocks (blockIdx.z) and merges the splits in the same launch (see flash_decode below): on sm_90 through
// distributed shared memory within a thread-block cluster (the _cl kernels), elsewhere through a global workspace.
// flash_decode_*_ws run a persistent grid whose blocks share each (batch, head)'s key tiles by work stealing (see
// flash_decode_steal). A grid whose blocks are all resident at once may be paced (decode_pace_ps): each warp loads its
// key tiles at a set rate, so that every block reads its share of the DRAM bandwidth (see flash_decode).

#include "flash_common.cuh"

DEVI void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }

__host__ __device__ constexpr int gcd_int(int a, int b) { return b == 0 ? a : gcd_int(b, a % b); }
__host__ __device__ constexpr int lcm_int(int a, int b) { return a / gcd_int(a, b) * b; }

// loads a kRows x kD tile (rows >= nrows or cols >= ncols zero-filled) with cp.async; kEvenD: ncols == kD (the
// kernels of an exact head dim)
template <int kD, int kRows, int kThreads, int KS, bool kEvenD>
DEVI void load_tile(u32 smem, const u16* g, i64 row_stride, int nrows, int ncols, int tid) {
  constexpr int kChunksPerRow = kD / 8;
  constexpr int kChunks = kRows * kChunksPerRow;
  static_assert(kChunks % kThreads == 0, "tile chunks must divide among threads");
  if constexpr (kThreads % kChunksPerRow == 0) {
    // each thread keeps one column; rows advance by kStep
    constexpr int kStep = kThreads / kChunksPerRow;
    const int col = (tid % kChunksPerRow) * 8;
    const int row0 = tid / kChunksPerRow;
    const u16* src = g + (i64)row0 * row_stride + col;
    const i64 step = (i64)kStep * row_stride;
    const bool col_ok = col < ncols;
#pragma unroll 8
    for (int i = 0; i < kChunks / kThreads; ++i) {
      const int row = row0 + i * kStep;
      const bool pred = col_ok && row < nrows;
      u32 dst;
      if constexpr (kStep % 8 == 0) {
        dst = smem + 2 * swz<KS, kRows>(row0, col) + i * kStep * KS * 2;
      } else {
        dst = smem + 2 * swz<KS, kRows>(row, col);
      }
      cp_async16(dst, pred ? src : g, pred);
      src += step;
    }
  } else {
    // columns do not divide among the threads (head dims 96, 192): a thread's chunks repeat their columns every
    // kPeriod loads, kPeriodRows rows further on, a multiple of 8 rows, so that the swizzle repeats as well. Only the
    // first period's rows and columns are computed; the later loads are fixed offsets from them (KERNEL_NOTES.md v21:
    // the main kernels of these head dims 1.15-1.25x a rolled loop over every chunk)
    constexpr int kPeriodRows = lcm_int(lcm_int(kThreads, kChunksPerRow) / kChunksPerRow, 8);
    constexpr int kPeriod = kPeriodRows * kChunksPerRow / kThreads;
    static_assert(kChunks % (kPeriod * kThreads) == 0, "tile rows must be whole periods of the thread's chunks");
    const i64 step = (i64)kPeriodRows * row_stride;
#pragma unroll
    for (int k = 0; k < kPeriod; ++k) {
      const int c = tid + k * kThreads;
      const int row = c / kChunksPerRow;
      const int col = (c % kChunksPerRow) * 8;
      const u32 dst = smem + 2 * swz<KS, kRows>(row, col);
      const u16* src = g + (i64)row * row_stride + col;
      const bool col_ok = kEvenD || col < ncols;
#pragma unroll
      for (int j = 0; j < kChunks / (kPeriod * kThreads); ++j) {
        const bool pred = col_ok && row + j * kPeriodRows < nrows;
        cp_async16(dst + j * kPeriodRows * KS * 2, pred ? src + j * step : g, pred);
      }
    }
  }
}

// Per-thread ldmatrix addresses in a swizzled tile of kRows rows: the lane reads row (R0 + trow) and the 16-byte
// chunk at column (C0 + tcol) for compile-time R0 (multiple of 16) and C0 (multiple of 16). The swizzle term depends
// only on the lane and on (C0 % KS) / 16, so it is kept in KS / 16 registers.
template <int KS, int kRows>
struct LdsmAddr {
  u32 base;
  u32 off[KS / 16];
  DEVI LdsmAddr(u32 tile, int trow, int tcol) {
    base = tile + trow * KS * 2;
#pragma unroll
    for (int q = 0; q < KS / 16; ++q) {
      const int chunk = 2 * q + tcol / 8;
      const int sw = KS == 64 ? (chunk ^ (trow & 7)) : (chunk ^ ((trow >> 1) & 3));
      off[q] = sw * 16;
    }
  }
  DEVI u32 at(int R0, int C0) const {
    return base + (C0 / KS) * kRows * KS * 2 + R0 * KS * 2 + off[(C0 % KS) / 16];
  }
};

template <int kHeadDim_, int kBlockM_, int kBlockN_, int kNWarps_>
struct Traits {
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kBlockM = kBlockM_;
  static constexpr int kBlockN = kBlockN_;
  static constexpr int kNWarps = kNWarps_;
  static constexpr int kThreads = kNWarps * 32;
  static constexpr int kMRep = kBlockM / (16 * kNWarps);
  static constexpr int KS = kHeadDim % 64 == 0 ? 64 : 32;
  static constexpr int kSmemBytes = (kBlockM + 2 * kBlockN) * kHeadDim * 2;
  static_assert(kMRep * 16 * kNWarps == kBlockM, "kBlockM must be a multiple of 16 * warps");
  static_assert(kHeadDim % 16 == 0 && kBlockN % 16 == 0, "tile sizes");
};

// kEvenD: the head dim equals the specialisation's, so no column predicates are needed. A padded head dim runs every
// k-step of the specialisation on the zero-filled columns of Q, K and V (FlashAttention-2's padding): skipping the
// empty ones behind a branch per k-step cost more than their work (KERNEL_NOTES.md v21: 1.3-2.2x).
// kDropout: dev.sdpa4j.Dropout's mask on the normalised probabilities (the row sums, hence the LSE, see every key),
// at the BYTE resolution with kDropBytes, else WORD; the decode kernels never run with dropout.
template <typename T, bool kBf16, bool kEvenD, bool kDropout = false, bool kDropBytes = false>
DEVI void flash_fwd(const FlashParams& p) {
  constexpr int D = T::kHeadDim, BM = T::kBlockM, BN = T::kBlockN, MR = T::kMRep, KS = T::KS;
  constexpr int NB = BN / 8;  // 8-key blocks of S per row group
  constexpr int DB = D / 8;   // 8-column blocks of O
  extern __shared__ __align__(128) unsigned char smem_raw[];
  const u32 sQ = smem_u32(smem_raw);
  const u32 sK = sQ + BM * D * 2;
  const u32 sV = sK + BN * D * 2;

  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;
  const int g = lane >> 2;
  const int t = lane & 3;

  // heavy (causal) blocks first
  const int m_block = gridDim.x - 1 - blockIdx.x;
  const i64 bh = blockIdx.y;
  const i64 b = bh / p.heads;
  const i64 h = bh % p.heads;
  const i64 hk = h / p.kv_group;
  const int Lq = (int)p.seqlen_q;
  const int Lk = (int)p.seqlen_k;
  const int E = kEvenD ? D : (int)p.head_dim;
  const int m0 = m_block * BM;

  const u16* gQ = reinterpret_cast<const u16*>(p.q) + b * p.q_batch_stride + h * p.q_head_stride + (i64)m0 * p.q_row_stride;
  const u16* gK = reinterpret_cast<const u16*>(p.k) + b * p.k_batch_stride + hk * p.k_head_stride;
  const u16* gV = reinterpret_cast<const u16*>(p.v) + b * p.v_batch_stride + hk * p.v_head_stride;

  // key tiles to visit: [n_min, n_max)
  int n_max = (Lk + BN - 1) / BN;
  if (p.causal) {
    const int last_row = min(m0 + BM, Lq) - 1;
    const i64 last_key = (i64)last_row + p.causal_offset;  // keys <= last_key are visible to some row
    const int lim = last_key < 0 ? 0 : (int)min((i64)n_max, (last_key + BN) / BN);
    n_max = lim;
  }
  const int n_min = 0;

  float acc_o[MR][DB][4];
  float row_max[MR][2];
  float row_sum[MR][2];
#pragma unroll
  for (int r = 0; r < MR; ++r) {
#pragma unroll
    for (int d = 0; d < DB; ++d) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc_o[r][d][e] = 0.f;
    }
    row_max[r][0] = row_max[r][1] = NEG_INF;
    row_sum[r][0] = row_sum[r][1] = 0.f;
  }

  if (n_max > n_min) {
    load_tile<D, BM, T::kThreads, KS, kEvenD>(sQ, gQ, p.q_row_stride, Lq - m0, E, tid);
    load_tile<D, BN, T::kThreads, KS, kEvenD>(sK, gK + (i64)(n_max - 1) * BN * p.k_row_stride, p.k_row_stride,
                                              Lk - (n_max - 1) * BN, E, tid);
    cp_async_commit();
  }

  // a negative scale is applied as |scale| to negated scores, so that the running maximum stays a maximum
  const float sl2 = fabsf(p.scale_log2);
  const bool negate = p.scale_log2 < 0.f;
  // ldmatrix row/col of this lane within a 16x16 operand
  const int lm_row = (lane & 7) + ((lane >> 3) & 1) * 8;  // A (Q) and V^T: matrices 0,1 stacked in rows
  const int lm_col = (lane >> 4) * 8;
  const int lk_row = (lane & 7) + (lane >> 4) * 8;         // K: matrices 0,1 side by side in k
  const int lk_col = ((lane >> 3) & 1) * 8;
  const LdsmAddr<KS, BM> aQ(sQ, warp * MR * 16 + lm_row, lm_col);
  const LdsmAddr<KS, BN> aK(sK, lk_row, lk_col);
  const LdsmAddr<KS, BN> aV(sV, lm_row, lm_col);

  // with one 16-row group per warp and a head dim up to 128, the warp's Q fragments stay in registers
  constexpr bool kQRegs = MR == 1 && D <= 128;
  u32 qf[kQRegs ? D / 16 : 1][4];
  if (kQRegs && n_max > n_min) {
    cp_async_wait_all();
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < (kQRegs ? D / 16 : 0); ++kk) {
      ldsm_x4(aQ.at(0, kk * 16), qf[kk][0], qf[kk][1], qf[kk][2], qf[kk][3]);
    }
  }

  for (int n = n_max - 1; n >= n_min; --n) {
    const int n0 = n * BN;
    cp_async_wait_all();
    __syncthreads();
    load_tile<D, BN, T::kThreads, KS, kEvenD>(sV, gV + (i64)n0 * p.v_row_stride, p.v_row_stride, Lk - n0, E, tid);
    cp_async_commit();

    float acc_s[MR][NB][4];
#pragma unroll
    for (int r = 0; r < MR; ++r)
#pragma unroll
      for (int j = 0; j < NB; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc_s[r][j][e] = 0.f;

#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      u32 a[MR][4];
#pragma unroll
      for (int r = 0; r < MR; ++r) {
        if (kQRegs) {
#pragma unroll
          for (int x = 0; x < 4; ++x) a[r][x] = qf[kQRegs ? kk : 0][x];
        } else {
          ldsm_x4(aQ.at(r * 16, kk * 16), a[r][0], a[r][1], a[r][2], a[r][3]);
        }
      }
#pragma unroll
      for (int jp = 0; jp < NB / 2; ++jp) {
        u32 b0, b1, b2, b3;
        ldsm_x4(aK.at(jp * 16, kk * 16), b0, b1, b2, b3);
#pragma unroll
        for (int r = 0; r < MR; ++r) {
          mma16816<kBf16>(acc_s[r][2 * jp], a[r], b0, b1);
          mma16816<kBf16>(acc_s[r][2 * jp + 1], a[r], b2, b3);
        }
      }
    }

    if (negate) {
#pragma unroll
      for (int r = 0; r < MR; ++r)
#pragma unroll
        for (int j = 0; j < NB; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) acc_s[r][j][e] = -acc_s[r][j][e];
    }

    // masking: only tiles crossing the key end or the causal diagonal
    const bool need_mask = n0 + BN > Lk || (p.causal && (i64)n0 + BN - 1 > (i64)m0 + p.causal_offset);
    if (need_mask) {
#pragma unroll
      for (int r = 0; r < MR; ++r) {
#pragma unroll
        for (int j = 0; j < NB; ++j) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int row = m0 + (warp * MR + r) * 16 + g + (e >= 2 ? 8 : 0);
            const int col = n0 + j * 8 + 2 * t + (e & 1);
            if (col >= Lk || (p.causal && (i64)col > (i64)row + p.causal_offset)) acc_s[r][j][e] = NEG_INF;
          }
        }
      }
    }

    cp_async_wait_all();
    __syncthreads();
    if (n > n_min) {
      load_tile<D, BN, T::kThreads, KS, kEvenD>(sK, gK + (i64)(n0 - BN) * p.k_row_stride, p.k_row_stride,
                                                Lk - (n0 - BN), E, tid);
      cp_async_commit();
    }

    // online softmax
#pragma unroll
    for (int r = 0; r < MR; ++r) {
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        float mx = row_max[r][hh];
#pragma unroll
        for (int j = 0; j < NB; ++j) mx = fmaxf(mx, fmaxf(acc_s[r][j][2 * hh], acc_s[r][j][2 * hh + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 2));
        const float base = mx == NEG_INF ? 0.f : mx * sl2;
        const float corr = fast_exp2(row_max[r][hh] * sl2 - base);
        row_max[r][hh] = mx;
        float sum = 0.f;
#pragma unroll
        for (int j = 0; j < NB; ++j) {
          const float p0 = fast_exp2(acc_s[r][j][2 * hh] * sl2 - base);
          const float p1 = fast_exp2(acc_s[r][j][2 * hh + 1] * sl2 - base);
          acc_s[r][j][2 * hh] = p0;
          acc_s[r][j][2 * hh + 1] = p1;
          sum += p0 + p1;
        }
        row_sum[r][hh] = row_sum[r][hh] * corr + sum;
#pragma unroll
        for (int d = 0; d < DB; ++d) {
          acc_o[r][d][2 * hh] *= corr;
          acc_o[r][d][2 * hh + 1] *= corr;
        }
      }
    }

    // dropout: dropped probabilities become 0 after they entered the row sum. WORD in place (one Philox call per
    // four elements; drawing the bits before the S GEMM, to interleave the integer work with the tensor
    // instructions, measured 2-3% slower: KERNEL_NOTES.md, v3); BYTE as keep words applied to the packed P fragments
    u32 keep[MR][kDropBytes ? NB : 1];
    if constexpr (kDropout) {
      const DropoutDraw dd(p, (u32)(b * p.heads + h));
#pragma unroll
      for (int r = 0; r < MR; ++r) {
        const int row_g = m0 + (warp * MR + r) * 16 + g;
        if constexpr (kDropBytes) {
          dropout_byte_keep<NB>(keep[r], row_g, n0, t, dd);
        } else {
          dropout_word_apply<NB>(&acc_s[r][0][0], row_g, n0, t, dd);
        }
      }
    }

    // O += P V
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      u32 a[MR][4];
#pragma unroll
      for (int r = 0; r < MR; ++r) {
        a[r][0] = pack2<kBf16>(acc_s[r][2 * kk][0], acc_s[r][2 * kk][1]);
        a[r][1] = pack2<kBf16>(acc_s[r][2 * kk][2], acc_s[r][2 * kk][3]);
        a[r][2] = pack2<kBf16>(acc_s[r][2 * kk + 1][0], acc_s[r][2 * kk + 1][1]);
        a[r][3] = pack2<kBf16>(acc_s[r][2 * kk + 1][2], acc_s[r][2 * kk + 1][3]);
        if constexpr (kDropout && kDropBytes) dropout_keep_fragment(a[r], keep[r][2 * kk], keep[r][2 * kk + 1]);
      }
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        u32 b0, b1, b2, b3;
        ldsm_x4_t(aV.at(kk * 16, dp * 16), b0, b1, b2, b3);
#pragma unroll
        for (int r = 0; r < MR; ++r) {
          mma16816<kBf16>(acc_o[r][2 * dp], a[r], b0, b1);
          mma16816<kBf16>(acc_o[r][2 * dp + 1], a[r], b2, b3);
        }
      }
    }
  }

  // epilogue: normalise, write O and LSE
#pragma unroll
  for (int r = 0; r < MR; ++r) {
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      float s = row_sum[r][hh];
      s += __shfl_xor_sync(0xffffffff, s, 1);
      s += __shfl_xor_sync(0xffffffff, s, 2);
      const float inv = s > 0.f ? (kDropout ? p.keep_scale : 1.f) / s : 0.f;
      const float lse = s > 0.f ? row_max[r][hh] * fabsf(p.scale) + fast_log2(s) * 0.6931471805599453f : NEG_INF;
      const int row = m0 + (warp * MR + r) * 16 + g + hh * 8;
      if (row < Lq && t == 0 && p.lse != 0) {
        reinterpret_cast<float*>(p.lse)[b * p.lse_batch_stride + h * p.lse_head_stride + (i64)row * p.lse_row_stride] = lse;
      }
      // stage the 16-bit output tile in shared memory (the Q tile's place) for 16-byte stores
      const int lrow = (warp * MR + r) * 16 + g + hh * 8;
#pragma unroll
      for (int d = 0; d < DB; ++d) {
        const u32 v2 = pack2<kBf16>(acc_o[r][d][2 * hh] * inv, acc_o[r][d][2 * hh + 1] * inv);
        asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(sQ + 2 * swz<KS, BM>(lrow, d * 8 + 2 * t)), "r"(v2));
      }
    }
  }
  // every warp's S GEMM read of sQ finished before the last tile's second barrier; now the staged tile
  __syncthreads();
  u16* o = reinterpret_cast<u16*>(p.o) + b * p.o_batch_stride + h * p.o_head_stride + (i64)m0 * p.o_row_stride;
  constexpr int kCpr = D / 8;
#pragma unroll 4
  for (int c = tid; c < BM * kCpr; c += T::kThreads) {
    const int row = c / kCpr;
    const int col = (c % kCpr) * 8;
    if (m0 + row < Lq && col < E) {
      uint4 v;
      asm volatile("ld.shared.v4.b32 {%0,%1,%2,%3}, [%4];\n"
                   : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(sQ + 2 * swz<KS, BM>(row, col)));
      *reinterpret_cast<uint4*>(o + (i64)row * p.o_row_stride + col) = v;
    }
  }
}

// ---- decode: flash-decoding with the split merge in the same launch ----
//
// For short query blocks (Lq <= 16 after GQA packing). A block owns 16 query rows of one (batch, head) and a slice
// of the key tiles (blockIdx.z of num_splits). Its warps take the slice's kBlockN-key tiles in turn (warp w: tiles
// w, w + W, ...), each warp with its own kStages-deep cp.async ring of K and V tiles and no block barrier in the
// loop, so a block keeps W x (kStages - 1) tiles in flight. Q fragments come straight from global memory (16 rows,
// mostly one). At the end the warps merge their (max, sum, O) through shared memory; with one split the block writes
// O and the LSE, else an fp32 partial, and the block that finishes last for its (m-block, batch, head) (a counter,
// zero before the launch) merges every split's partial into O and the LSE, then returns its counter to zero
// (counters the caller keeps need no memset before the next launch).
template <int kHeadDim_, int kBlockN_, int kNWarps_, int kStages_>
struct DecodeTraits {
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kBlockM = 16;
  static constexpr int kBlockN = kBlockN_;  // keys per warp tile
  static constexpr int kNWarps = kNWarps_;
  static constexpr int kStages = kStages_;
  static constexpr int kThreads = kNWarps * 32;
  static constexpr int KS = kHeadDim % 64 == 0 ? 64 : 32;
  static constexpr int kTileBytes = kBlockN * kHeadDim * 2;
  static constexpr int kStageBytes = 2 * kTileBytes;  // K then V
  static constexpr int kSmemBytes = kNWarps * kStages * kStageBytes;
  static constexpr int kORow = kHeadDim + 8;  // fp32 pitch of the epilogue's O rows (conflict-free float2 stores)
  static constexpr int kMaxSplits = 128;
  static_assert(kBlockN % 16 == 0 && kHeadDim % 16 == 0 && kStages >= 2, "decode tile sizes");
  static_assert((kNWarps * 16 * kORow + 3 * kNWarps * 16 + 2 * 16 + 4 + kMaxSplits * 16) * 4 <= kSmemBytes,
                "the epilogue's scratch must fit in the stage buffers");
};

// Thread-block clusters (sm_90 and later): the _cl decode kernels merge their splits through distributed shared
// memory. FLASH_CLUSTERS is 0 in the device passes for older architectures, whose cubins omit those kernels.
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
#define FLASH_CLUSTERS 1
DEVI u32 cluster_rank() {
  u32 r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
}
// every thread of every block of the cluster arrives; shared-memory writes before it are visible to the cluster after
DEVI void cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
}
// the address of the same shared-memory location in block `rank` of the cluster
DEVI u32 cluster_map(u32 addr, u32 rank) {
  u32 r;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(r) : "r"(addr), "r"(rank));
  return r;
}
DEVI float cluster_ld(u32 addr) {
  float v;
  asm volatile("ld.shared::cluster.f32 %0, [%1];\n" : "=f"(v) : "r"(addr) : "memory");
  return v;
}
DEVI float4 cluster_ld4(u32 addr) {
  float4 v;
  asm volatile("ld.shared::cluster.v4.f32 {%0,%1,%2,%3}, [%4];\n" : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "r"(addr)
               : "memory");
  return v;
}
#else
#define FLASH_CLUSTERS 0
#endif

// Key tiles of one (m-block, batch, head) row block before the causal diagonal ends them (all of them without a mask).
DEVI int decode_tiles_total(const FlashParams& p, int m_block, int block_n) {
  const int n_total = ((int)p.seqlen_k + block_n - 1) / block_n;
  if (!p.causal) return n_total;
  const i64 last_key = (i64)min(m_block * 16 + 16, (int)p.seqlen_q) - 1 + p.causal_offset;
  return last_key < 0 ? 0 : (int)min((i64)n_total, (last_key + block_n) / block_n);
}

// Q of the block's 16 rows as m16n8k16 A fragments: rows g, g + 8, columns 2t (+1) and 2t + 8 (+1) of each
// 16-column step; rows past Lq and columns past E are zero.
template <int D, bool kEvenD>
DEVI void decode_load_q(const FlashParams& p, const u16* gQ, int m0, int E, int g, int t, u32 (&qf)[D / 16][4]) {
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
    for (int x = 0; x < 4; ++x) {
      const int row = m0 + g + (x & 1) * 8;
      const int col = kk * 16 + 2 * t + (x >> 1) * 8;
      qf[kk][x] = row < (int)p.seqlen_q && (kEvenD || col < E)
                      ? *reinterpret_cast<const u32*>(gQ + (i64)row * p.q_row_stride + col) : 0u;
    }
  }
}

// A warp's running state over its key tiles: the unnormalised O of its 16 rows (m16n8 accumulator fragments), and
// per row half (g, g + 8) the running maximum score and the sum of exponentials.
template <int D>
struct DecodeAcc {
  float o[D / 8][4];
  float row_max[2];
  float row_sum[2];
  DEVI void clear() {
#pragma unroll
    for (int d = 0; d < D / 8; ++d)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[d][e] = 0.f;
    row_max[0] = row_max[1] = NEG_INF;
    row_sum[0] = row_sum[1] = 0.f;
  }
};

// One key tile of a warp (its K and V at shared-memory offset `st` from the warp's ring): S = Q K^T, the Lk and causal
// masks where the tile crosses them, the online softmax and O += P V. A padded head dim runs every k-step on the
// zero-filled columns, as the main kernel does (KERNEL_NOTES.md v21: 1.1-1.9x the k-step branches, on an H200).
template <typename T, bool kBf16>
DEVI void decode_tile(const FlashParams& p, const u32 (&qf)[T::kHeadDim / 16][4], DecodeAcc<T::kHeadDim>& acc,
                      const LdsmAddr<T::KS, T::kBlockN>& aK, const LdsmAddr<T::KS, T::kBlockN>& aV, u32 st, int n0,
                      int m0, float sl2, bool negate, int g, int t) {
  constexpr int D = T::kHeadDim, BN = T::kBlockN, NB = BN / 8, DB = D / 8;
  const int Lk = (int)p.seqlen_k;
  float acc_s[NB][4];
#pragma unroll
  for (int j = 0; j < NB; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc_s[j][e] = 0.f;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
    for (int jp = 0; jp < NB / 2; ++jp) {
      u32 b0, b1, b2, b3;
      ldsm_x4(aK.at(jp * 16, kk * 16) + st, b0, b1, b2, b3);
      mma16816<kBf16>(acc_s[2 * jp], qf[kk], b0, b1);
      mma16816<kBf16>(acc_s[2 * jp + 1], qf[kk], b2, b3);
    }
  }
  if (negate) {
#pragma unroll
    for (int j = 0; j < NB; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc_s[j][e] = -acc_s[j][e];
  }
  if (n0 + BN > Lk || (p.causal && (i64)n0 + BN - 1 > (i64)m0 + p.causal_offset)) {
#pragma unroll
    for (int j = 0; j < NB; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int row = m0 + g + (e >= 2 ? 8 : 0);
        const int col = n0 + j * 8 + 2 * t + (e & 1);
        if (col >= Lk || (p.causal && (i64)col > (i64)row + p.causal_offset)) acc_s[j][e] = NEG_INF;
      }
    }
  }
  // online softmax
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    float mx = acc.row_max[hh];
#pragma unroll
    for (int j = 0; j < NB; ++j) mx = fmaxf(mx, fmaxf(acc_s[j][2 * hh], acc_s[j][2 * hh + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 2));
    const float base = mx == NEG_INF ? 0.f : mx * sl2;
    const float corr = fast_exp2(acc.row_max[hh] * sl2 - base);
    acc.row_max[hh] = mx;
    float sum = 0.f;
#pragma unroll
    for (int j = 0; j < NB; ++j) {
      const float p0 = fast_exp2(acc_s[j][2 * hh] * sl2 - base);
      const float p1 = fast_exp2(acc_s[j][2 * hh + 1] * sl2 - base);
      acc_s[j][2 * hh] = p0;
      acc_s[j][2 * hh + 1] = p1;
      sum += p0 + p1;
    }
    acc.row_sum[hh] = acc.row_sum[hh] * corr + sum;
#pragma unroll
    for (int d = 0; d < DB; ++d) {
      acc.o[d][2 * hh] *= corr;
      acc.o[d][2 * hh + 1] *= corr;
    }
  }
  // O += P V
#pragma unroll
  for (int kk = 0; kk < BN / 16; ++kk) {
    u32 a[4];
    a[0] = pack2<kBf16>(acc_s[2 * kk][0], acc_s[2 * kk][1]);
    a[1] = pack2<kBf16>(acc_s[2 * kk][2], acc_s[2 * kk][3]);
    a[2] = pack2<kBf16>(acc_s[2 * kk + 1][0], acc_s[2 * kk + 1][1]);
    a[3] = pack2<kBf16>(acc_s[2 * kk + 1][2], acc_s[2 * kk + 1][3]);
#pragma unroll
    for (int dp = 0; dp < D / 16; ++dp) {
      u32 b0, b1, b2, b3;
      ldsm_x4_t(aV.at(kk * 16, dp * 16) + st, b0, b1, b2, b3);
      mma16816<kBf16>(acc.o[2 * dp], a, b0, b1);
      mma16816<kBf16>(acc.o[2 * dp + 1], a, b2, b3);
    }
  }
}

// The epilogue's scratch, laid over the stage buffers once every warp has left its ring: [W][16][kORow] unnormalised
// warp outputs, [W][16] warp row maxima, row sums and weights, [16] block LSEs, and a flag.
template <typename T>
struct DecodeScratch {
  float* sO;
  float* sM;
  float* sL;
  float* sF;
  float* sLse;
  int* sFlag;
  DEVI explicit DecodeScratch(unsigned char* smem) {
    constexpr int W = T::kNWarps;
    sO = reinterpret_cast<float*>(smem);
    sM = sO + W * 16 * T::kORow;
    sL = sM + W * 16;
    sF = sL + W * 16;
    sLse = sF + W * 16;
    sFlag = reinterpret_cast<int*>(sLse + 16);
  }
};

// Merges the block's warps after their key loops (only empty cp.async groups may be pending): on return, after a
// block barrier, sO holds every warp's unnormalised rows, sF each warp's weight in the block's normalised output and
// sLse the block's LSE per row (-inf for a row that saw no key).
template <typename T>
DEVI void decode_merge_warps(const FlashParams& p, const DecodeScratch<T>& s, DecodeAcc<T::kHeadDim>& acc, float sl2,
                             int tid) {
  constexpr int W = T::kNWarps, DB = T::kHeadDim / 8;
  const int warp = tid >> 5, g = (tid & 31) >> 2, t = tid & 3;
  cp_async_wait<0>();
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    acc.row_sum[hh] += __shfl_xor_sync(0xffffffff, acc.row_sum[hh], 1);
    acc.row_sum[hh] += __shfl_xor_sync(0xffffffff, acc.row_sum[hh], 2);
  }
  __syncthreads();
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    const int r = g + hh * 8;
#pragma unroll
    for (int d = 0; d < DB; ++d) {
      *reinterpret_cast<float2*>(s.sO + (warp * 16 + r) * T::kORow + d * 8 + 2 * t) =
          make_float2(acc.o[d][2 * hh], acc.o[d][2 * hh + 1]);
    }
    if (t == 0) {
      s.sM[warp * 16 + r] = acc.row_max[hh];
      s.sL[warp * 16 + r] = acc.row_sum[hh];
    }
  }
  __syncthreads();
  if (tid < 16) {
    float mx = NEG_INF;
#pragma unroll
    for (int w = 0; w < W; ++w) mx = fmaxf(mx, s.sM[w * 16 + tid]);
    float f[W];
    float l = 0.f;
#pragma unroll
    for (int w = 0; w < W; ++w) {
      const float m = s.sM[w * 16 + tid];
      f[w] = m == NEG_INF ? 0.f : fast_exp2((m - mx) * sl2);
      l += f[w] * s.sL[w * 16 + tid];
    }
    const float inv = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
    for (int w = 0; w < W; ++w) s.sF[w * 16 + tid] = f[w] * inv;
    s.sLse[tid] = l > 0.f ? mx * fabsf(p.scale) + fast_log2(l) * 0.6931471805599453f : NEG_INF;
  }
  __syncthreads();
}

DEVI void fma4(float4& acc, float f, const float4& v) {
  acc.x += f * v.x;
  acc.y += f * v.y;
  acc.z += f * v.z;
  acc.w += f * v.w;
}

// The block's normalised output of row r, columns [col, col + 4): its warps' rows weighted by sF
template <typename T>
DEVI float4 decode_block_out(const DecodeScratch<T>& s, int r, int col) {
  float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
  for (int w = 0; w < T::kNWarps; ++w) {
    fma4(acc, s.sF[w * 16 + r], *reinterpret_cast<const float4*>(s.sO + (w * 16 + r) * T::kORow + col));
  }
  return acc;
}

// Where a decode block writes: O, the LSE and the split workspace of its (m-block, batch, head). Workspace:
// o_accum = fp32 partial outputs [slots][B*H][Lq][E], then partial LSEs [slots][B*H][Lq] (slots = num_splits).
struct DecodeOut {
  u16* o;              // row 0 of the block's (batch, head) in O
  float* lse;          // its LSE row 0, or null
  float* o_acc;        // row 0 of its partial outputs in slot 0
  float* lse_acc;      // its partial LSE row 0 in slot 0
  i64 o_row, lse_row;  // row strides of O and the LSE
  i64 slot_o, slot_l;  // slot strides of the partial outputs and LSEs
  DEVI DecodeOut(const FlashParams& p, i64 bh, int E) {
    const i64 b = bh / p.heads, h = bh % p.heads, BH = p.batch * p.heads, Lq = p.seqlen_q;
    o = reinterpret_cast<u16*>(p.o) + b * p.o_batch_stride + h * p.o_head_stride;
    lse = p.lse != 0 ? reinterpret_cast<float*>(p.lse) + b * p.lse_batch_stride + h * p.lse_head_stride : nullptr;
    float* acc0 = reinterpret_cast<float*>(p.o_accum);
    o_acc = acc0 + bh * Lq * E;
    lse_acc = acc0 + p.num_splits * BH * Lq * E + bh * Lq;
    o_row = p.o_row_stride;
    lse_row = p.lse_row_stride;
    slot_o = BH * Lq * E;
    slot_l = BH * Lq;
  }
};

// Writes the merged row `row`, columns [col, col + 4) of O (acc / total) and, from column 0, its LSE (mx + log total;
// -inf for a row that saw no key)
template <bool kBf16>
DEVI void decode_write_merged(const DecodeOut& out, int row, int col, const float4& acc, float total, float mx) {
  const float inv = total > 0.f ? 1.f / total : 0.f;
  *reinterpret_cast<uint2*>(out.o + (i64)row * out.o_row + col) =
      make_uint2(pack2<kBf16>(acc.x * inv, acc.y * inv), pack2<kBf16>(acc.z * inv, acc.w * inv));
  if (col == 0 && out.lse != nullptr) out.lse[(i64)row * out.lse_row] = total > 0.f ? mx + __logf(total) : NEG_INF;
}

// The block's output: O and the LSE (slot < 0), else an fp32 partial and its LSE in workspace slot `slot`
template <typename T, bool kBf16, bool kEvenD>
DEVI void decode_write_block(const FlashParams& p, const DecodeScratch<T>& s, const DecodeOut& out, int m0, int E,
                             int slot, int tid) {
  constexpr int kC4 = T::kHeadDim / 4;  // 4-column groups per row
  const int Lq = (int)p.seqlen_q;
  for (int c = tid; c < 16 * kC4; c += T::kThreads) {
    const int r = c / kC4;
    const int col = (c % kC4) * 4;
    if (m0 + r < Lq && (kEvenD || col < E)) {
      const float4 acc = decode_block_out(s, r, col);
      if (slot < 0) {
        *reinterpret_cast<uint2*>(out.o + (i64)(m0 + r) * out.o_row + col) =
            make_uint2(pack2<kBf16>(acc.x, acc.y), pack2<kBf16>(acc.z, acc.w));
      } else {
        *reinterpret_cast<float4*>(out.o_acc + slot * out.slot_o + (i64)(m0 + r) * E + col) = acc;
      }
    }
  }
  if (tid < 16 && m0 + tid < Lq) {
    if (slot >= 0) {
      out.lse_acc[slot * out.slot_l + m0 + tid] = s.sLse[tid];
    } else if (out.lse != nullptr) {
      out.lse[(i64)(m0 + tid) * out.lse_row] = s.sLse[tid];
    }
  }
}

// The last block of an (m-block, batch, head) merges the partials of workspace slots [0, nslots) into O and the LSE
// (of the first 32 slots only those whose bit is set in `mask`); every split's LSE and partial of one output group
// are in flight at once (8 slots a round), merged online
template <typename T, bool kBf16, bool kEvenD>
DEVI void decode_merge_slots(const FlashParams& p, const DecodeOut& out, int m0, int E, int nslots, u32 mask,
                             int tid) {
  constexpr int kC4 = T::kHeadDim / 4;
  const int rows = min(16, (int)p.seqlen_q - m0);
  for (int c = tid; c < rows * kC4; c += T::kThreads) {
    const int r = c / kC4;
    const int col = (c % kC4) * 4;
    if (kEvenD || col < E) {
      const float* lsrc = out.lse_acc + m0 + r;
      const float* osrc = out.o_acc + (i64)(m0 + r) * E + col;
      float mx = NEG_INF;
      float total = 0.f;
      float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
      for (int s0 = 0; s0 < nslots; s0 += 8) {
        float l[8];
        float4 v[8];
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const bool live = s0 + j < nslots && ((mask >> ((s0 + j) & 31)) & 1u);
          l[j] = live ? __ldcg(lsrc + (s0 + j) * out.slot_l) : NEG_INF;
          v[j] = live ? __ldcg(reinterpret_cast<const float4*>(osrc + (s0 + j) * out.slot_o))
                      : make_float4(0.f, 0.f, 0.f, 0.f);
        }
        float m2 = mx;
#pragma unroll
        for (int j = 0; j < 8; ++j) m2 = fmaxf(m2, l[j]);
        if (m2 == NEG_INF) continue;
        const float corr = mx == NEG_INF ? 0.f : __expf(mx - m2);
        total *= corr;
        acc.x *= corr;
        acc.y *= corr;
        acc.z *= corr;
        acc.w *= corr;
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const float f = l[j] == NEG_INF ? 0.f : __expf(l[j] - m2);
          total += f;
          fma4(acc, f, v[j]);
        }
        mx = m2;
      }
      decode_write_merged<kBf16>(out, m0 + r, col, acc, total, mx);
    }
  }
}

DEVI u32 atom_add_acq_rel(u32* addr, u32 v) {
  u32 old;
  asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], %2;\n" : "=r"(old) : "l"(addr), "r"(v) : "memory");
  return old;
}

DEVI u64 atom_add_acq_rel(u64* addr, u64 v) {
  u64 old;
  asm volatile("atom.acq_rel.gpu.global.add.u64 %0, [%1], %2;\n" : "=l"(old) : "l"(addr), "l"(v) : "memory");
  return old;
}

// Nanoseconds of the device's global timer.
DEVI u64 global_ns() {
  u64 t;
  asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t));
  return t;
}

// Bench only (bench/trace.py, on a harness built with -DFLASH_DECODE_TRACE; the provider's builds leave it out): each
// flash_decode block of the first kTraceBlocks records its timeline in g_decode_trace, 8 words per block (linear block
// index): 0 its start, 1-4 the end of warps 0-3's key tiles, 5 its output or partial written, 6 its merge of the splits
// done (0 for a block that did not merge), 7 its SM; times in %globaltimer nanoseconds.
#ifdef FLASH_DECODE_TRACE
constexpr bool kDecodeTrace = true;
constexpr int kTraceBlocks = 8192;
__device__ u64 g_decode_trace[kTraceBlocks * 8];
#else
constexpr bool kDecodeTrace = false;
#endif

DEVI void decode_trace(int word, u64 value) {
#ifdef FLASH_DECODE_TRACE
  const u64 block = ((u64)blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  if (block < kTraceBlocks) g_decode_trace[block * 8 + word] = value;
#endif
}

DEVI u32 sm_id() {
  u32 r;
  asm volatile("mov.u32 %0, %%smid;\n" : "=r"(r));
  return r;
}

// kCluster: the blocks of one (m-block, batch, head) form a thread-block cluster along z (cluster size = num_splits,
// at most 16) and merge through distributed shared memory: no workspace, no counters, no second pass over global
// memory. Otherwise the splits merge through the fp32 workspace and the counters (the last block merges).
//
// Fair-share pacing (p.decode_pace_ps > 0: FlashPlan's paced plans, grids resident at once): a warp does not load
// its i-th key tile before i x decode_pace_ps after it started, the pace at which every block of the grid together
// reads K and V at the device's sustained DRAM bandwidth. Left free, blocks on SMs that read faster run ahead and the
// grid ends on its slowest blocks; paced, they yield that bandwidth to the slow ones and the blocks end together
// (KERNEL_NOTES.md, v12, v13). A warp that falls behind loads without waiting.
//
// Staggered start (p.decode_stagger: FlashPlan's plans where the streams are stack-aligned): the block takes its
// split's key tiles from a hashed tile on, wrapping at the split's end, so that streams whose starts lie a multiple of
// the memory's stack interleave apart do not read the same stacks in step (KERNEL_NOTES.md, v19). Each warp keeps its
// share of the tiles; the online softmax does not depend on their order.
template <typename T, bool kBf16, bool kEvenD, bool kCluster = false>
DEVI void flash_decode(const FlashParams& p) {
  constexpr int D = T::kHeadDim, BN = T::kBlockN, W = T::kNWarps, S = T::kStages, KS = T::KS;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  const u32 sBase = smem_u32(smem_raw);

  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;
  const int g = lane >> 2;
  const int t = lane & 3;
  const int m_block = blockIdx.x;
  const i64 bh = blockIdx.y;
  const int split = blockIdx.z;
  const int nsplit = (int)p.num_splits;
  const i64 b = bh / p.heads;
  const i64 h = bh % p.heads;
  const i64 hk = h / p.kv_group;
  const int Lk = (int)p.seqlen_k;
  const int E = kEvenD ? D : (int)p.head_dim;
  const int m0 = m_block * 16;
  const u64 trace_start = kDecodeTrace ? global_ns() : 0;

  const u16* gQ = reinterpret_cast<const u16*>(p.q) + b * p.q_batch_stride + h * p.q_head_stride;
  const u16* gK = reinterpret_cast<const u16*>(p.k) + b * p.k_batch_stride + hk * p.k_head_stride;
  const u16* gV = reinterpret_cast<const u16*>(p.v) + b * p.v_batch_stride + hk * p.v_head_stride;

  // key tiles of this split: [t_begin, t_end); this warp's: t_begin + warp + i * W
  const int n_total = decode_tiles_total(p, m_block, BN);
  const int per = (n_total + nsplit - 1) / nsplit;
  const int t_begin = min(n_total, split * per);
  const int t_end = min(n_total, t_begin + per);
  const int n_split = t_end - t_begin;
  const int my_tiles = n_split > warp ? (n_split - warp + W - 1) / W : 0;
  const int rot = p.decode_stagger && n_split > 0
                      ? (int)(((u64)bh * 2654435761ull + (u64)split * 40503ull + (u64)m_block * 97ull) % (u64)n_split)
                      : 0;
  // the key tile of the warp's i-th load
  auto tile_of = [&](int i) {
    const int j = warp + i * W + rot;
    return t_begin + (j >= n_split ? j - n_split : j);
  };

  const u32 sW = sBase + warp * S * T::kStageBytes;
  auto load_kv = [&](int i) {
    const int n0 = tile_of(i) * BN;
    const u32 st = sW + (i % S) * T::kStageBytes;
    load_tile<D, BN, 32, KS, kEvenD>(st, gK + (i64)n0 * p.k_row_stride, p.k_row_stride, Lk - n0, E, lane);
    load_tile<D, BN, 32, KS, kEvenD>(st + T::kTileBytes, gV + (i64)n0 * p.v_row_stride, p.v_row_stride, Lk - n0, E,
                                     lane);
  };
#pragma unroll
  for (int i = 0; i < S - 1; ++i) {
    if (i < my_tiles) load_kv(i);
    cp_async_commit();
  }

  u32 qf[D / 16][4];
  decode_load_q<D, kEvenD>(p, gQ, m0, E, g, t, qf);
  DecodeAcc<D> acc;
  acc.clear();

  const float sl2 = fabsf(p.scale_log2);
  const bool negate = p.scale_log2 < 0.f;
  const LdsmAddr<KS, BN> aK(sW, (lane & 7) + (lane >> 4) * 8, ((lane >> 3) & 1) * 8);
  const LdsmAddr<KS, BN> aV(sW + T::kTileBytes, (lane & 7) + ((lane >> 3) & 1) * 8, (lane >> 4) * 8);

  const u64 pace = (u64)p.decode_pace_ps;
  const u64 t0 = pace ? global_ns() : 0;
  for (int i = 0; i < my_tiles; ++i) {
    if (pace) {
      const u64 due = t0 + (u64)i * pace / 1000u;
      while (global_ns() < due) __nanosleep(64);
    }
    // every lane has finished reading tile i - 1's stage, which the load of tile i + S - 1 overwrites
    __syncwarp();
    if (i + S - 1 < my_tiles) load_kv(i + S - 1);
    cp_async_commit();
    cp_async_wait<S - 1>();
    __syncwarp();
    decode_tile<T, kBf16>(p, qf, acc, aK, aV, (i % S) * T::kStageBytes, tile_of(i) * BN, m0, sl2, negate, g, t);
  }

  if (kDecodeTrace && lane == 0 && warp < 4) decode_trace(1 + warp, global_ns());

  // merge the warps: shared memory is reused once every warp has left its ring
  const DecodeScratch<T> s(smem_raw);
  decode_merge_warps<T>(p, s, acc, sl2, tid);
  const DecodeOut out(p, bh, E);
#if FLASH_CLUSTERS
  if constexpr (kCluster) {
    constexpr int kC4 = D / 4;  // 4-column groups per row
    const int Lq = (int)p.seqlen_q;
    // the block's normalised partial O into warp 0's rows of sO (each thread rewrites only the elements it reads)
    for (int c = tid; c < 16 * kC4; c += T::kThreads) {
      const int r = c / kC4;
      const int col = (c % kC4) * 4;
      if (m0 + r < Lq && (kEvenD || col < E)) *reinterpret_cast<float4*>(s.sO + r * T::kORow + col) = decode_block_out(s, r, col);
    }
    cluster_sync();
    // the cluster's blocks share the merge: block `rank` takes every nsplit-th group of 4 output columns
    constexpr int kMaxCluster = 16;  // Hopper's largest (non-portable) cluster
    const u32 rank = cluster_rank();
    const u32 aO = smem_u32(s.sO);
    const u32 aL = smem_u32(s.sLse);
    const int rows = min(16, Lq - m0);
    for (int c = (int)rank * T::kThreads + tid; c < rows * kC4; c += nsplit * T::kThreads) {
      const int r = c / kC4;
      const int col = (c % kC4) * 4;
      if (kEvenD || col < E) {
        // every remote load of a round is issued before the first use: two round trips through the cluster, not
        // one per split
        float l[kMaxCluster];
#pragma unroll
        for (int q = 0; q < kMaxCluster; ++q) l[q] = q < nsplit ? cluster_ld(cluster_map(aL + 4 * r, q)) : NEG_INF;
        float mx = NEG_INF;
#pragma unroll
        for (int q = 0; q < kMaxCluster; ++q) mx = fmaxf(mx, l[q]);
        float4 v[kMaxCluster];
#pragma unroll
        for (int q = 0; q < kMaxCluster; ++q) {
          v[q] = q < nsplit && l[q] != NEG_INF ? cluster_ld4(cluster_map(aO + 4 * (r * T::kORow + col), q))
                                               : make_float4(0.f, 0.f, 0.f, 0.f);
        }
        float total = 0.f;
        float4 acc4 = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
        for (int q = 0; q < kMaxCluster; ++q) {
          const float f = l[q] == NEG_INF ? 0.f : __expf(l[q] - mx);
          total += f;
          fma4(acc4, f, v[q]);
        }
        decode_write_merged<kBf16>(out, m0 + r, col, acc4, total, mx);
      }
    }
    // no block leaves (and frees its shared memory) while another may still read it
    cluster_sync();
  } else
#endif
  {
    const bool whole = nsplit == 1;
    decode_write_block<T, kBf16, kEvenD>(p, s, out, m0, E, whole ? -1 : split, tid);
    if (kDecodeTrace && tid == 0) {
      decode_trace(0, trace_start);
      decode_trace(5, global_ns());
      decode_trace(6, 0);
      decode_trace(7, sm_id());
    }
    if (whole) return;

    // publish the partial, then count this block in (one release-acquire atomic after the block's barrier: the
    // barrier orders every thread's partial stores before thread 0's release); the last block of the (m-block,
    // batch, head) merges the splits
    __syncthreads();
    u32* counter = reinterpret_cast<u32*>(p.lse_accum) + bh * gridDim.x + m_block;
    if (tid == 0) *s.sFlag = atom_add_acq_rel(counter, 1u) == (u32)nsplit - 1;
    __syncthreads();
    if (!*s.sFlag) return;
    decode_merge_slots<T, kBf16, kEvenD>(p, out, m0, E, nsplit, ~0u, tid);
    if (kDecodeTrace) {
      __syncthreads();
      if (tid == 0) decode_trace(6, global_ns());
    }
    // leave the counter at zero, so that counters kept by the caller (FlashDevice's per-stream merge slabs) or a
    // graph replay need no memset
    if (tid == 0) *counter = 0u;
  }
}

// ---- decode with work stealing (the _ws kernels): a persistent grid balanced across the SMs ----
//
// With a fixed split, SMs that read memory faster finish early and idle (on an H100 at B=8, H=16, one block per
// (batch, head), a quarter of the blocks finished 25% before the rest), a grid just over a wave runs a nearly empty
// last wave, and one below a wave leaves SMs without work. Here the grid has at most one block per SM. A unit is one
// (m-block, batch, head); block i starts as the owner of unit i, or, where the grid has more blocks than units, as a
// helper of unit i - units (mod units). A block that finishes takes the next unstarted unit as its owner (a counter)
// and, once none is left, helps the started unit with the most tiles left per block on it, while one has at least
// kMinStealTiles left. The warps of every block on a unit take its key tiles one at a time from the unit's counter:
// the owner's warp w takes tiles w + j W (j < stages) unclaimed, the c-th claim is tile W stages + c, and each claim
// is made one ring position before its tile is loaded. A block that did all of a unit's tiles writes O and the LSE;
// otherwise each block that did some writes a partial into its workspace slot (the owner slot 0, the n-th helper
// admitted slot n, so a unit takes at most num_splits - 1 helpers) and adds its tiles and its slot's bit to the
// unit's done word in one atomic; the block that completes the tile count merges the slots whose bits it reads. Which
// block computes which tile depends on timing, so the output's last bits may vary from call to call (FlashPlan steals
// only where determinism was not asked for). Counters (u32 words in lse_accum, zero before the launch): per unit a
// 64-bit done word (tiles published in the low half, slots written in the high half), then per unit next (claims)
// and joined (helpers admitted), then the next unstarted unit and the blocks finished. The last block to finish
// returns them all to zero, so counters kept by the caller need no memset.
constexpr int kMinStealTiles = 8;

// a counter other blocks update (no memory clobber: several loads may be in flight before the first use)
DEVI u32 ld_relaxed(const u32* addr) {
  u32 v;
  asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(addr));
  return v;
}

// One thread admits its block as a helper of unit u: true while the unit has fewer than max_slots - 1 helpers (so
// that its partials fit the workspace), the block's workspace slot in `slot` (the owner's is 0, helpers' 1 on).
DEVI bool decode_join(u32* joined, int u, int max_slots, int& slot) {
  const u32 helpers = atomicAdd(joined + u, 1u);
  slot = (int)helpers + 1;
  return helpers < (u32)max_slots - 1;
}

// Warp 0 picks the unit a block joins next: the most tiles left per block working on it, at least kMinStealTiles left
// and fewer than max_slots - 1 helpers (so that its partials fit the workspace); -1 when none, else the unit, with
// the block's workspace slot in `slot` (lane 0's). Every unit's counters are read at once (8 per lane a round).
template <int W, int S, int BN>
DEVI int decode_pick_unit(const FlashParams& p, const u32* next, u32* joined, int u_lo, int units, int m_blocks,
                          int max_slots, int lane, int& slot) {
  constexpr int kScan = 8;
  for (int attempt = 0; attempt < 4; ++attempt) {
    float best = 0.f;
    int victim = -1;
    for (int u0 = u_lo; u0 < units; u0 += 32 * kScan) {
      u32 nx[kScan], jn[kScan];
#pragma unroll
      for (int k = 0; k < kScan; ++k) {
        const int u = u0 + lane + 32 * k;
        nx[k] = u < units ? ld_relaxed(next + u) : 0u;
        jn[k] = u < units ? ld_relaxed(joined + u) : 0u;
      }
#pragma unroll
      for (int k = 0; k < kScan; ++k) {
        const int u = u0 + lane + 32 * k;
        const int left = u < units ? decode_tiles_total(p, u % m_blocks, BN) - W * S - (int)nx[k] : 0;
        const float score = (float)left / (float)(2 + jn[k]);
        if (left >= kMinStealTiles && jn[k] < (u32)max_slots - 1 && score > best) {
          best = score;
          victim = u;
        }
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ob = __shfl_xor_sync(0xffffffff, best, o);
      const int ov = __shfl_xor_sync(0xffffffff, victim, o);
      if (ob > best || (ob == best && ov > victim)) {
        best = ob;
        victim = ov;
      }
    }
    if (victim < 0) return -1;
    const bool admitted = lane == 0 && decode_join(joined, victim, max_slots, slot);
    if (__shfl_sync(0xffffffff, admitted, 0)) return victim;
  }
  return -1;
}

template <typename T, bool kBf16, bool kEvenD>
DEVI void flash_decode_steal(const FlashParams& p) {
  constexpr int D = T::kHeadDim, BN = T::kBlockN, W = T::kNWarps, S = T::kStages, KS = T::KS;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  __shared__ int sTiles[W];
  __shared__ int sNext, sSlot;
  const u32 sBase = smem_u32(smem_raw);
  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;
  const int g = lane >> 2;
  const int t = lane & 3;
  const int Lk = (int)p.seqlen_k;
  const int E = kEvenD ? D : (int)p.head_dim;
  const int m_blocks = ((int)p.seqlen_q + 15) / 16;
  const int units = m_blocks * (int)(p.batch * p.heads);
  const int max_slots = (int)p.num_splits;
  u64* done = reinterpret_cast<u64*>(p.lse_accum);
  u32* next = reinterpret_cast<u32*>(done + units);
  u32* joined = next + units;
  u32* fresh = joined + units;
  u32* finished = fresh + 1;
  const float sl2 = fabsf(p.scale_log2);
  const bool negate = p.scale_log2 < 0.f;
  const u32 sW = sBase + warp * S * T::kStageBytes;
  const LdsmAddr<KS, BN> aK(sW, (lane & 7) + (lane >> 4) * 8, ((lane >> 3) & 1) * 8);
  const LdsmAddr<KS, BN> aV(sW + T::kTileBytes, (lane & 7) + ((lane >> 3) & 1) * 8, (lane >> 4) * 8);
  const DecodeScratch<T> s(smem_raw);
  const int grid = (int)gridDim.x;
  // units started last have the most left: helpers look at the last two grids' worth
  const int u_lo = max(0, units - 2 * grid);

  // block i starts as the owner of unit i, or as a helper of unit i - units (mod units)
  int unit = (int)blockIdx.x;
  int slot = 0;
  bool owner = unit < units;
  if (!owner) {
    if (tid == 0) {
      const int u = (unit - units) % units;
      sNext = decode_join(joined, u, max_slots, sSlot) ? u : -1;
    }
    __syncthreads();
    unit = sNext;
    slot = sSlot;
  }
  bool fresh_left = units > grid;
  while (unit >= 0) {
    const int m_block = unit % m_blocks;
    const i64 bh = unit / m_blocks;
    const i64 b = bh / p.heads;
    const i64 h = bh % p.heads;
    const i64 hk = h / p.kv_group;
    const int m0 = m_block * 16;
    const u16* gK = reinterpret_cast<const u16*>(p.k) + b * p.k_batch_stride + hk * p.k_head_stride;
    const u16* gV = reinterpret_cast<const u16*>(p.v) + b * p.v_batch_stride + hk * p.v_head_stride;
    const int n_total = decode_tiles_total(p, m_block, BN);
    u32* ctr = next + unit;
    auto load_kv = [&](int slot, int tile) {
      const int n0 = tile * BN;
      const u32 st = sW + slot * T::kStageBytes;
      load_tile<D, BN, 32, KS, kEvenD>(st, gK + (i64)n0 * p.k_row_stride, p.k_row_stride, Lk - n0, E, lane);
      load_tile<D, BN, 32, KS, kEvenD>(st + T::kTileBytes, gV + (i64)n0 * p.v_row_stride, p.v_row_stride, Lk - n0, E,
                                       lane);
    };
    // An owner's warp w takes tiles w + j W (j < S) unclaimed; every other tile is claimed (tile W S + c for the c-th
    // claim). Lane 0 claims; the warp waits for the atomic only when the tile is broadcast, a ring position later.
    auto own_tile = [&](int j) -> int { return warp + j * W < n_total ? warp + j * W : -1; };
    auto claim = [&]() -> u32 { return lane == 0 ? atomicAdd(ctr, 1u) : 0u; };
    auto tile_of = [&](u32 c) -> int {
      const u32 tile = (u32)(W * S) + __shfl_sync(0xffffffff, c, 0);
      return tile < (u32)n_total ? (int)tile : -1;
    };
    // ids[j]: the tile at ring position i + j (-1: none, and none after it)
    int ids[S - 1];
#pragma unroll
    for (int j = 0; j < S - 1; ++j) ids[j] = owner ? own_tile(j) : j > 0 && ids[j - 1] < 0 ? -1 : tile_of(claim());
#pragma unroll
    for (int j = 0; j < S - 1; ++j) {
      if (ids[j] >= 0) load_kv(j, ids[j]);
      cp_async_commit();
    }
    bool more = ids[S - 2] >= 0;
    u32 pending = more ? claim() : 0u;

    u32 qf[D / 16][4];
    decode_load_q<D, kEvenD>(p, reinterpret_cast<const u16*>(p.q) + b * p.q_batch_stride + h * p.q_head_stride, m0, E,
                             g, t, qf);
    DecodeAcc<D> acc;
    acc.clear();
    int tiles = 0;
    for (int i = 0; ids[0] >= 0; ++i) {
      __syncwarp();
      int nid = -1;
      if (more) {
        if (owner && i == 0) {
          nid = own_tile(S - 1);
        } else {
          nid = tile_of(pending);
          if (nid >= 0) pending = claim();
        }
        more = nid >= 0;
      }
      if (nid >= 0) load_kv((i + S - 1) % S, nid);
      cp_async_commit();
      cp_async_wait<S - 1>();
      __syncwarp();
      decode_tile<T, kBf16>(p, qf, acc, aK, aV, (i % S) * T::kStageBytes, ids[0] * BN, m0, sl2, negate, g, t);
      ++tiles;
#pragma unroll
      for (int j = 0; j < S - 2; ++j) ids[j] = ids[j + 1];
      ids[S - 2] = nid;
    }
    if (lane == 0) sTiles[warp] = tiles;
    decode_merge_warps<T>(p, s, acc, sl2, tid);
    int block_tiles = 0;
#pragma unroll
    for (int w = 0; w < W; ++w) block_tiles += sTiles[w];
    const DecodeOut out(p, bh, E);
    if (block_tiles == n_total) {
      decode_write_block<T, kBf16, kEvenD>(p, s, out, m0, E, -1, tid);
    } else if (block_tiles > 0) {
      decode_write_block<T, kBf16, kEvenD>(p, s, out, m0, E, slot, tid);
      __syncthreads();
      if (tid == 0) {
        // tiles in the low half, the slot's bit in the high half: the block completing the count reads every slot
        // written before it (the partials are ordered before each release by the barrier)
        const u64 add = (1ull << (32 + slot)) + (u64)block_tiles;
        const u64 now = atom_add_acq_rel(done + unit, add) + add;
        *s.sFlag = (u32)now == (u32)n_total ? (int)(now >> 32) : 0;
      }
      __syncthreads();
      if (*s.sFlag) decode_merge_slots<T, kBf16, kEvenD>(p, out, m0, E, max_slots, (u32)*s.sFlag, tid);
    }
    if (warp == 0) {
      int u = -1;
      if (fresh_left) {
        u = __shfl_sync(0xffffffff, lane == 0 ? (int)atomicAdd(fresh, 1u) + grid : 0, 0);
        if (u >= units) u = -1;
        fresh_left = u >= 0;
      }
      int helper_slot = 0;
      if (u < 0) u = -2 - decode_pick_unit<W, S, BN>(p, next, joined, u_lo, units, m_blocks, max_slots, lane, helper_slot);
      if (lane == 0) {
        sNext = u;
        sSlot = u >= 0 ? 0 : helper_slot;
      }
    }
    __syncthreads();
    // sNext: a fresh unit to own (>= 0), a unit to help (-2 - unit) or none (-1)
    const int pick = sNext;
    owner = pick >= 0;
    unit = owner ? pick : -2 - pick;
    slot = sSlot;
    fresh_left = owner;
  }
  // the last block to finish returns every counter to zero (no block reads or claims any more)
  __syncthreads();
  if (tid == 0) *s.sFlag = atom_add_acq_rel(finished, 1u) == gridDim.x - 1;
  __syncthreads();
  if (*s.sFlag) {
    u32* words = reinterpret_cast<u32*>(p.lse_accum);
    for (int i = tid; i < 4 * units + 2; i += T::kThreads) words[i] = 0u;
  }
}

// ---- entry points: flash_fwd_<dtype>_d<D>[_pad][_drop], flash_decode_<dtype>_d<D>_<traits>[_cl][_pad] ----
// Traits (head dim, kBlockM, kBlockN, warps); FlashPlan.java holds the same table.
typedef Traits<32, 128, 128, 4> T32;
typedef Traits<64, 128, 128, 4> T64;
typedef Traits<96, 128, 64, 4> T96;
typedef Traits<128, 128, 64, 4> T128;
typedef Traits<192, 128, 64, 8> T192;
typedef Traits<256, 64, 64, 4> T256;
// decode: DecodeTraits<head dim, keys per warp tile, warps, stages>, each named n<keys>w<warps>s<stages> in its entry
// points; FlashPlan.DECODE (devices with >= 128 KB of shared memory per block: sm_80, sm_90; head dims 64, 128 and
// 256 in 8 KB warp tiles of K, four warps, two stages) and FlashPlan.DECODE_COMPACT (<= 96 KB: sm_86, sm_89) pick them
// per head-dim class; FlashPlan.NARROW (n32w2s2) and
// FlashPlan.SHORT_TILES (n16w4s2) serve one-split grids of head dim 128 just over and just under a wave, and
// FlashPlan.SLIM (n16w2s2, four resident per SM) paced one-split grids of two to four waves; FlashPlan.PACED_WIDE
// runs paced one-split grids of one to two waves on 128's NARROW, 64's n64w2s2 (three per SM) and 256's compact traits
typedef DecodeTraits<32, 64, 4, 3> S32_n64w4s3;
typedef DecodeTraits<64, 64, 4, 2> S64_n64w4s2;
typedef DecodeTraits<64, 64, 2, 2> S64_n64w2s2;
typedef DecodeTraits<64, 32, 4, 3> S64_n32w4s3;
typedef DecodeTraits<96, 16, 4, 4> S96_n16w4s4;
typedef DecodeTraits<128, 32, 4, 2> S128_n32w4s2;
typedef DecodeTraits<128, 32, 2, 2> S128_n32w2s2;
typedef DecodeTraits<128, 16, 4, 2> S128_n16w4s2;
typedef DecodeTraits<128, 16, 2, 2> S128_n16w2s2;
typedef DecodeTraits<128, 16, 4, 3> S128_n16w4s3;
typedef DecodeTraits<192, 16, 4, 2> S192_n16w4s2;
typedef DecodeTraits<256, 16, 4, 2> S256_n16w4s2;
typedef DecodeTraits<256, 16, 2, 3> S256_n16w2s3;

// Two entry points per traits: <name> for a head dim equal to the specialisation's (no column predicates) and
// <name>_pad for a smaller one (predicated loads and stores). Separate kernels, so that the predicated path's code
// does not share the hot path's register allocation: inlined together they pushed the D=128 kernel into 140 bytes of
// spills; alone its hot path spills 12.
#define FLASH_ENTRY(NAME, T, BF16)                                                                 \
  extern "C" __global__ void __launch_bounds__(T::kThreads, 1) NAME(const FlashParams p) {        \
    flash_fwd<T, BF16, true>(p);                                                                 \
  }                                                                                              \
  extern "C" __global__ void __launch_bounds__(T::kThreads, 1) NAME##_pad(const FlashParams p) { \
    flash_fwd<T, BF16, false>(p);                                                                \
  }
// The joint form keeps both paths in <name> behind a runtime branch (<name>_pad is the predicated path alone). Used
// for the D=256 training kernel only, where it measured 2-7% faster than the separate one on the same H100 in the
// same process (KERNEL_NOTES.md, v4/v5); neither form spills there.
#define FLASH_ENTRY_JOINT(NAME, T, BF16)                                                           \
  extern "C" __global__ void __launch_bounds__(T::kThreads, 1) NAME(const FlashParams p) {        \
    if (p.head_dim == T::kHeadDim) flash_fwd<T, BF16, true>(p);                                  \
    else flash_fwd<T, BF16, false>(p);                                                           \
  }                                                                                              \
  extern "C" __global__ void __launch_bounds__(T::kThreads, 1) NAME##_pad(const FlashParams p) { \
    flash_fwd<T, BF16, false>(p);                                                                \
  }
// <name>_drop and <name>_pad_drop: the training kernels with dropout (plain kernels only: no split-KV), one body per
// mask resolution behind a uniform branch (one body with the branch inside the key loop made the WORD mask 19%
// slower on an H100: KERNEL_NOTES.md, training v8 forward)
#define FLASH_ENTRY_DROP(NAME, T, BF16)                                                                  \
  extern "C" __global__ void __launch_bounds__(T::kThreads, 1) NAME##_drop(const FlashParams p) {       \
    if (p.dropout_bytes) flash_fwd<T, BF16, true, true, true>(p);                                      \
    else flash_fwd<T, BF16, true, true, false>(p);                                                     \
  }                                                                                                    \
  extern "C" __global__ void __launch_bounds__(T::kThreads, 1) NAME##_pad_drop(const FlashParams p) {   \
    if (p.dropout_bytes) flash_fwd<T, BF16, false, true, true>(p);                                     \
    else flash_fwd<T, BF16, false, true, false>(p);                                                    \
  }
// decode kernels (at most two resident blocks per SM: no register cap below 255)
#define FLASH_DECODE_ENTRY(NAME, T, BF16)                                                          \
  extern "C" __global__ void __launch_bounds__(T::kThreads, 2) NAME(const FlashParams p) {        \
    flash_decode<T, BF16, true>(p);                                                              \
  }                                                                                              \
  extern "C" __global__ void __launch_bounds__(T::kThreads, 2) NAME##_pad(const FlashParams p) { \
    flash_decode<T, BF16, false>(p);                                                             \
  }
// <name>_ws[_pad]: the work-stealing decode kernels (one block per (m-block, batch, head) unit, one wave)
#define FLASH_DECODE_STEAL_ENTRY(NAME, T, BF16)                                                    \
  extern "C" __global__ void __launch_bounds__(T::kThreads, 2) NAME##_ws(const FlashParams p) {       \
    flash_decode_steal<T, BF16, true>(p);                                                            \
  }                                                                                                  \
  extern "C" __global__ void __launch_bounds__(T::kThreads, 2) NAME##_ws_pad(const FlashParams p) {   \
    flash_decode_steal<T, BF16, false>(p);                                                           \
  }
// <name>_cl[_pad]: the same decode kernels for a cluster launch (cluster dims 1 x 1 x num_splits; sm_90 and later)
#if FLASH_CLUSTERS
#define FLASH_DECODE_CLUSTER_ENTRY(NAME, T, BF16)                                                      \
  extern "C" __global__ void __launch_bounds__(T::kThreads, 2) NAME##_cl(const FlashParams p) {       \
    flash_decode<T, BF16, true, true>(p);                                                            \
  }                                                                                                  \
  extern "C" __global__ void __launch_bounds__(T::kThreads, 2) NAME##_cl_pad(const FlashParams p) {   \
    flash_decode<T, BF16, false, true>(p);                                                           \
  }
#else
#define FLASH_DECODE_CLUSTER_ENTRY(NAME, T, BF16)
#endif
#define FLASH_DIM(D, ENTRY)                                  \
  ENTRY(flash_fwd_f16_d##D, T##D, false)                     \
  ENTRY(flash_fwd_bf16_d##D, T##D, true)                     \
  FLASH_ENTRY_DROP(flash_fwd_f16_d##D, T##D, false)          \
  FLASH_ENTRY_DROP(flash_fwd_bf16_d##D, T##D, true)
// flash_decode_<dtype>_d<D>_<traits>[_cl][_pad]
#define FLASH_DECODE(D, TR)                                                  \
  FLASH_DECODE_ENTRY(flash_decode_f16_d##D##_##TR, S##D##_##TR, false)       \
  FLASH_DECODE_ENTRY(flash_decode_bf16_d##D##_##TR, S##D##_##TR, true)       \
  FLASH_DECODE_STEAL_ENTRY(flash_decode_f16_d##D##_##TR, S##D##_##TR, false) \
  FLASH_DECODE_STEAL_ENTRY(flash_decode_bf16_d##D##_##TR, S##D##_##TR, true) \
  FLASH_DECODE_CLUSTER_ENTRY(flash_decode_f16_d##D##_##TR, S##D##_##TR, false) \
  FLASH_DECODE_CLUSTER_ENTRY(flash_decode_bf16_d##D##_##TR, S##D##_##TR, true)

FLASH_DIM(32, FLASH_ENTRY)
FLASH_DIM(64, FLASH_ENTRY)
FLASH_DIM(96, FLASH_ENTRY)
FLASH_DIM(128, FLASH_ENTRY)
FLASH_DIM(192, FLASH_ENTRY)
FLASH_DIM(256, FLASH_ENTRY_JOINT)
FLASH_DECODE(32, n64w4s3)
FLASH_DECODE(64, n64w4s2)
FLASH_DECODE(64, n32w4s3)
FLASH_DECODE(96, n16w4s4)
FLASH_DECODE(128, n32w4s2)
FLASH_DECODE(128, n16w4s3)
// FlashPlan.NARROW (a one-split grid just over a wave, three blocks per SM), FlashPlan.SHORT_TILES (a one-split
// grid of 0.7 to 0.9 waves), FlashPlan.SLIM (a paced one-split grid, four blocks per SM) and head dim 64's paced
// one-split traits of one to two waves (three blocks per SM): no split, so no _ws or _cl kernels
FLASH_DECODE_ENTRY(flash_decode_f16_d64_n64w2s2, S64_n64w2s2, false)
FLASH_DECODE_ENTRY(flash_decode_bf16_d64_n64w2s2, S64_n64w2s2, true)
FLASH_DECODE_ENTRY(flash_decode_f16_d128_n32w2s2, S128_n32w2s2, false)
FLASH_DECODE_ENTRY(flash_decode_bf16_d128_n32w2s2, S128_n32w2s2, true)
FLASH_DECODE_ENTRY(flash_decode_f16_d128_n16w4s2, S128_n16w4s2, false)
FLASH_DECODE_ENTRY(flash_decode_bf16_d128_n16w4s2, S128_n16w4s2, true)
FLASH_DECODE_ENTRY(flash_decode_f16_d128_n16w2s2, S128_n16w2s2, false)
FLASH_DECODE_ENTRY(flash_decode_bf16_d128_n16w2s2, S128_n16w2s2, true)
FLASH_DECODE(192, n16w4s2)
FLASH_DECODE(256, n16w4s2)
FLASH_DECODE(256, n16w2s3)

// ---- strided copies for device tensors whose pointers or strides do not allow 16-byte loads ----
// Copies a rank-4 view [n0, n1, n2, n3] from src (element strides ss*) to dst (element strides ds*); element size
// 2 (u16) or 4 (float). One thread per element.
struct CopyParams {
  i64 src, dst;
  i64 n0, n1, n2, n3;
  i64 ss0, ss1, ss2, ss3;
  i64 ds0, ds1, ds2, ds3;
};

template <typename E>
DEVI void strided_copy(const CopyParams& c) {
  const i64 total = c.n0 * c.n1 * c.n2 * c.n3;
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) {
    i64 r = i;
    const i64 i3 = r % c.n3; r /= c.n3;
    const i64 i2 = r % c.n2; r /= c.n2;
    const i64 i1 = r % c.n1;
    const i64 i0 = r / c.n1;
    reinterpret_cast<E*>(c.dst)[i0 * c.ds0 + i1 * c.ds1 + i2 * c.ds2 + i3 * c.ds3] =
        reinterpret_cast<const E*>(c.src)[i0 * c.ss0 + i1 * c.ss1 + i2 * c.ss2 + i3 * c.ss3];
  }
}

extern "C" __global__ void __launch_bounds__(256) strided_copy_b16(const CopyParams c) { strided_copy<u16>(c); }
extern "C" __global__ void __launch_bounds__(256) strided_copy_b32(const CopyParams c) { strided_copy<float>(c); }
