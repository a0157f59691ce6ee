// sdpa4j cuda-flash: FlashAttention-2 forward on tensor cores (mma.sync m16n8k16, fp32 accumulation).
//
// Self-contained (no #include) so that NVRTC compiles it with no include path. Every kernel takes one
// FlashParams by value; the Java side (FlashKernels.java) writes the same layout: 8-byte fields, then two floats.
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
// Split-KV (flash-decoding): kSplit kernels process a slice of the key tiles (blockIdx.z) and write fp32 partial
// outputs and LSEs; flash_combine_* merges them.

typedef unsigned short u16;
typedef unsigned int u32;
typedef long long i64;

struct FlashParams {
  i64 q, k, v, o, lse;          // device pointers of element 0 (lse: 0 when not wanted)
  i64 o_accum, lse_accum;       // split-KV workspace: fp32 [splits][B*Hq][Lq][E], fp32 [splits][B*Hq][Lq]
  i64 q_batch_stride, q_head_stride, q_row_stride;  // element strides; the head dim has stride 1
  i64 k_batch_stride, k_head_stride, k_row_stride;
  i64 v_batch_stride, v_head_stride, v_row_stride;
  i64 o_batch_stride, o_head_stride, o_row_stride;
  i64 lse_batch_stride, lse_head_stride, lse_row_stride;
  i64 batch, heads, kv_group;   // B, Hq, Hq / Hkv
  i64 seqlen_q, seqlen_k, head_dim;
  i64 causal;                   // 0: none; 1: key j visible to query i iff j <= i + causal_offset
  i64 causal_offset;            // 0 (top-left) or Lk - Lq (bottom-right)
  i64 num_splits;               // split-KV slices (1 for the plain kernels)
  float scale;                  // softmax scale
  float scale_log2;             // scale * log2(e)
  i64 seed;                     // dropout (the _drop kernels): Philox key, k0 = low word, k1 = high word
  i64 offset;                   // Philox counter word c3
  i64 dropout_threshold;        // floor(p * 2^32), compared unsigned
  float keep_scale;             // 1 / (1 - p)
  float pad_;
};

#define DEVI __device__ __forceinline__

DEVI u32 smem_u32(const void* p) {
  u32 r;
  asm volatile("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }\n" : "=r"(r) : "l"(p));
  return r;
}

DEVI void cp_async16(u32 dst, const void* src, bool pred) {
  int n = pred ? 16 : 0;  // 0: zero-fill, nothing read
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(n));
}
DEVI void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
DEVI void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }

DEVI void ldsm_x4(u32 addr, u32& r0, u32& r1, u32& r2, u32& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}
DEVI void ldsm_x4_t(u32 addr, u32& r0, u32& r1, u32& r2, u32& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}

template <bool kBf16>
DEVI void mma16816(float* c, const u32* a, u32 b0, u32 b1) {
  if (kBf16) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// packs (lo, hi) into a 16-bit pair, round to nearest even
template <bool kBf16>
DEVI u32 pack2(float lo, float hi) {
  u32 r;
  if (kBf16) {
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  } else {
    asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  }
  return r;
}

DEVI float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}
DEVI float fast_log2(float x) {
  float y;
  asm("lg2.approx.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

#define NEG_INF (-__int_as_float(0x7f800000))

// ---- Philox4x32-10, as dev.sdpa4j.Philox4x32 (the same function as cuda-memeff's forward and flash_bwd.cu) ----
DEVI uint4 philox(u32 c0, u32 c1, u32 c2, u32 c3, u32 k0, u32 k1) {
#pragma unroll
  for (int r = 0; r < 10; ++r) {
    // one 32x32 -> 64-bit multiply gives both halves (mul.hi and mul.lo of the same operands)
    unsigned long long p0, p1;
    asm("mul.wide.u32 %0, %1, %2;\n" : "=l"(p0) : "r"(c0), "r"(0xD2511F53u));
    asm("mul.wide.u32 %0, %1, %2;\n" : "=l"(p1) : "r"(c2), "r"(0xCD9E8D57u));
    const u32 n0 = (u32)(p1 >> 32) ^ c1 ^ k0;
    const u32 n2 = (u32)(p0 >> 32) ^ c3 ^ k1;
    c0 = n0;
    c1 = (u32)p1;
    c2 = n2;
    c3 = (u32)p0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return make_uint4(c0, c1, c2, c3);
}

// element offset of (row, col) in a swizzled tile of `rows` rows; col % 8 == 0 for chunk addresses
template <int KS, int kRows>
DEVI int swz(int row, int col) {
  const int blk = col / KS;
  const int c = col % KS;
  const int chunk = c >> 3;
  const int sw = KS == 64 ? (chunk ^ (row & 7)) : (chunk ^ ((row >> 1) & 3));
  return blk * kRows * KS + row * KS + (sw << 3) + (c & 7);
}

// loads a kRows x kD tile (rows >= nrows or cols >= ncols zero-filled) with cp.async
template <int kD, int kRows, int kThreads, int KS>
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
    // columns do not divide among the threads (head dims 96, 192): a rolled loop keeps registers free
#pragma unroll 1
    for (int i = 0; i < kChunks / kThreads; ++i) {
      const int c = tid + i * kThreads;
      const int row = c / kChunksPerRow;
      const int col = (c % kChunksPerRow) * 8;
      const bool pred = row < nrows && col < ncols;
      const u16* src = pred ? g + (i64)row * row_stride + col : g;
      cp_async16(smem + 2 * swz<KS, kRows>(row, col), src, pred);
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

// kEvenD: the head dim equals the specialisation's, so no column predicates or skipped k-steps are needed.
// kDropout: dev.sdpa4j.Dropout's mask on the normalised probabilities (the row sums, hence the LSE, see every key);
// the split-KV kernels never run with dropout.
template <typename T, bool kBf16, bool kSplit, bool kEvenD, bool kDropout = false>
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
  const int split = kSplit ? blockIdx.z : 0;
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
  int n_min = 0;
  if (kSplit) {
    const int per = ((Lk + BN - 1) / BN + (int)p.num_splits - 1) / (int)p.num_splits;
    n_min = split * per;
    n_max = min(n_max, n_min + per);
  }

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
    load_tile<D, BM, T::kThreads, KS>(sQ, gQ, p.q_row_stride, Lq - m0, E, tid);
    load_tile<D, BN, T::kThreads, KS>(sK, gK + (i64)(n_max - 1) * BN * p.k_row_stride, p.k_row_stride,
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
      if (kEvenD || kk * 16 < E) ldsm_x4(aQ.at(0, kk * 16), qf[kk][0], qf[kk][1], qf[kk][2], qf[kk][3]);
    }
  }

  for (int n = n_max - 1; n >= n_min; --n) {
    const int n0 = n * BN;
    cp_async_wait_all();
    __syncthreads();
    load_tile<D, BN, T::kThreads, KS>(sV, gV + (i64)n0 * p.v_row_stride, p.v_row_stride, Lk - n0, E, tid);
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
      if (kEvenD || kk * 16 < E) {
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
      load_tile<D, BN, T::kThreads, KS>(sK, gK + (i64)(n0 - BN) * p.k_row_stride, p.k_row_stride, Lk - (n0 - BN), E,
                                        tid);
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

    if (kDropout) {
      // Dropped probabilities become 0 after they entered the row sum. Lanes t and t^1 hold the four keys of one
      // Philox group (4 * (t / 2) .. + 3) in rows g and g + 8: the even lane draws row g, the odd lane row g + 8,
      // and each passes the other the two words it needs - one Philox call per four elements. (Drawing the bits
      // before the S GEMM, to interleave the integer work with the tensor instructions, measured 2-3% slower:
      // KERNEL_NOTES.md, v3.)
      const u32 seed_lo = (u32)p.seed;
      const u32 seed_hi = (u32)((unsigned long long)p.seed >> 32);
      const u32 thr = (u32)p.dropout_threshold;
      const u32 c2 = (u32)(b * p.heads + h);
      const bool odd = t & 1;
#pragma unroll
      for (int r = 0; r < MR; ++r) {
        const int row = m0 + (warp * MR + r) * 16 + g + (odd ? 8 : 0);
#pragma unroll
        for (int j = 0; j < NB; ++j) {
          const int grp = (n0 + j * 8) / 4 + (t >> 1);
          const uint4 x = philox((u32)grp, (u32)row, c2, (u32)p.offset, seed_lo, seed_hi);
          // even lane: own row g is x.x, x.y; it sends x.z, x.w (row g, the odd lane's keys)
          // odd lane: own row g + 8 is x.z, x.w; it sends x.x, x.y (row g + 8, the even lane's keys)
          const u32 s0 = __shfl_xor_sync(0xffffffff, odd ? x.x : x.z, 1);
          const u32 s1 = __shfl_xor_sync(0xffffffff, odd ? x.y : x.w, 1);
          const u32 g0 = odd ? s0 : x.x, g1 = odd ? s1 : x.y;  // row g
          const u32 h0 = odd ? x.z : s0, h1 = odd ? x.w : s1;  // row g + 8
          if (g0 < thr) acc_s[r][j][0] = 0.f;
          if (g1 < thr) acc_s[r][j][1] = 0.f;
          if (h0 < thr) acc_s[r][j][2] = 0.f;
          if (h1 < thr) acc_s[r][j][3] = 0.f;
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
      }
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        if (kEvenD || dp * 16 < E) {
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
  }

  // epilogue: normalise, write O and LSE (or the split's partials)
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
      if (row < Lq) {
        if (kSplit) {
          const i64 prow = ((i64)split * p.batch * p.heads + bh) * Lq + row;
          float* o = reinterpret_cast<float*>(p.o_accum) + prow * E;
#pragma unroll
          for (int d = 0; d < DB; ++d) {
            const int col = d * 8 + 2 * t;
            if (col < E) {
              float2 v2;
              v2.x = acc_o[r][d][2 * hh] * inv;
              v2.y = acc_o[r][d][2 * hh + 1] * inv;
              *reinterpret_cast<float2*>(o + col) = v2;
            }
          }
          if (t == 0) reinterpret_cast<float*>(p.lse_accum)[prow] = lse;
        } else if (t == 0 && p.lse != 0) {
          reinterpret_cast<float*>(p.lse)[b * p.lse_batch_stride + h * p.lse_head_stride + (i64)row * p.lse_row_stride] = lse;
        }
      }
      if (!kSplit) {
        // stage the 16-bit output tile in shared memory (the Q tile's place) for 16-byte stores
        const int lrow = (warp * MR + r) * 16 + g + hh * 8;
#pragma unroll
        for (int d = 0; d < DB; ++d) {
          const u32 v2 = pack2<kBf16>(acc_o[r][d][2 * hh] * inv, acc_o[r][d][2 * hh + 1] * inv);
          asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(sQ + 2 * swz<KS, BM>(lrow, d * 8 + 2 * t)), "r"(v2));
        }
      }
    }
  }
  if (!kSplit) {
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
}

// Merges split-KV partials: one warp per query row.
template <bool kBf16>
DEVI void flash_combine(const FlashParams& p) {
  const int lane = threadIdx.x & 31;
  const i64 rows = p.batch * p.heads * p.seqlen_q;
  const i64 row = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= rows) return;
  const i64 Lq = p.seqlen_q;
  const i64 bh = row / Lq;
  const i64 i = row % Lq;
  const i64 b = bh / p.heads;
  const i64 h = bh % p.heads;
  const int S = (int)p.num_splits;
  const int E = (int)p.head_dim;
  const i64 split_stride = p.batch * p.heads * Lq;
  const float* lse_acc = reinterpret_cast<const float*>(p.lse_accum);
  const float* o_acc = reinterpret_cast<const float*>(p.o_accum);
  float mx = NEG_INF;
  for (int s = lane; s < S; s += 32) mx = fmaxf(mx, lse_acc[s * split_stride + row]);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, o));
  float total = 0.f;
  for (int s = lane; s < S; s += 32) {
    const float l = lse_acc[s * split_stride + row];
    total += l == NEG_INF ? 0.f : __expf(l - mx);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) total += __shfl_xor_sync(0xffffffff, total, o);
  const bool empty = !(total > 0.f);
  u16* out = reinterpret_cast<u16*>(p.o) + b * p.o_batch_stride + h * p.o_head_stride + i * p.o_row_stride;
  for (int c = lane * 2; c < E; c += 64) {
    float a0 = 0.f, a1 = 0.f;
    if (!empty) {
      for (int s = 0; s < S; ++s) {
        const float l = lse_acc[s * split_stride + row];
        if (l == NEG_INF) continue;
        const float w = __expf(l - mx) / total;
        const float2 v = *reinterpret_cast<const float2*>(o_acc + (s * split_stride + row) * E + c);
        a0 += w * v.x;
        a1 += w * v.y;
      }
    }
    *reinterpret_cast<u32*>(out + c) = pack2<kBf16>(a0, a1);
  }
  if (lane == 0 && p.lse != 0) {
    reinterpret_cast<float*>(p.lse)[b * p.lse_batch_stride + h * p.lse_head_stride + i * p.lse_row_stride] =
        empty ? NEG_INF : mx + __logf(total);
  }
}

// ---- entry points: flash_fwd_[split_]<dtype>_d<D>[_pad], flash_combine_<dtype> ----
// Traits (head dim, kBlockM, kBlockN, warps); FlashKernels.java holds the same table.
typedef Traits<32, 128, 128, 4> T32;
typedef Traits<64, 128, 128, 4> T64;
typedef Traits<96, 128, 64, 4> T96;
typedef Traits<128, 128, 64, 4> T128;
typedef Traits<192, 128, 64, 8> T192;
typedef Traits<256, 64, 64, 4> T256;
// split-KV (decode): 16 query rows, one warp, so that short query blocks waste no tensor-core work and many
// blocks share an SM
typedef Traits<32, 16, 128, 1> S32;
typedef Traits<64, 16, 128, 1> S64;
typedef Traits<96, 16, 64, 1> S96;
typedef Traits<128, 16, 64, 1> S128;
typedef Traits<192, 16, 64, 1> S192;
typedef Traits<256, 16, 64, 1> S256;

// Two entry points per traits: <name> for a head dim equal to the specialisation's (no column predicates) and
// <name>_pad for a smaller one (predicated loads, skipped k-steps). Separate kernels, so that the predicated path's
// code does not share the hot path's register allocation: inlined together they pushed the D=128 kernel into
// 140 bytes of spills; alone its hot path spills 12.
#define FLASH_ENTRY(NAME, T, BF16, SPLIT)                                                          \
  extern "C" __global__ void __launch_bounds__(T::kThreads, 1) NAME(const FlashParams p) {        \
    flash_fwd<T, BF16, SPLIT, true>(p);                                                          \
  }                                                                                              \
  extern "C" __global__ void __launch_bounds__(T::kThreads, 1) NAME##_pad(const FlashParams p) { \
    flash_fwd<T, BF16, SPLIT, false>(p);                                                         \
  }
// The joint form keeps both paths in <name> behind a runtime branch (<name>_pad is the predicated path alone). Used
// for the D=256 training kernel only, where it measured 2-7% faster than the separate one on the same H100 in the
// same process (KERNEL_NOTES.md, v4/v5); neither form spills there.
#define FLASH_ENTRY_JOINT(NAME, T, BF16, SPLIT)                                                    \
  extern "C" __global__ void __launch_bounds__(T::kThreads, 1) NAME(const FlashParams p) {        \
    if (p.head_dim == T::kHeadDim) flash_fwd<T, BF16, SPLIT, true>(p);                           \
    else flash_fwd<T, BF16, SPLIT, false>(p);                                                    \
  }                                                                                              \
  extern "C" __global__ void __launch_bounds__(T::kThreads, 1) NAME##_pad(const FlashParams p) { \
    flash_fwd<T, BF16, SPLIT, false>(p);                                                         \
  }
// <name>_drop and <name>_pad_drop: the training kernels with dropout (plain kernels only: no split-KV)
#define FLASH_ENTRY_DROP(NAME, T, BF16)                                                                  \
  extern "C" __global__ void __launch_bounds__(T::kThreads, 1) NAME##_drop(const FlashParams p) {       \
    flash_fwd<T, BF16, false, true, true>(p);                                                          \
  }                                                                                                    \
  extern "C" __global__ void __launch_bounds__(T::kThreads, 1) NAME##_pad_drop(const FlashParams p) {   \
    flash_fwd<T, BF16, false, false, true>(p);                                                         \
  }
#define FLASH_DIM(D, ENTRY)                                \
  ENTRY(flash_fwd_f16_d##D, T##D, false, false)            \
  ENTRY(flash_fwd_bf16_d##D, T##D, true, false)            \
  FLASH_ENTRY_DROP(flash_fwd_f16_d##D, T##D, false)        \
  FLASH_ENTRY_DROP(flash_fwd_bf16_d##D, T##D, true)        \
  FLASH_ENTRY(flash_fwd_split_f16_d##D, S##D, false, true) \
  FLASH_ENTRY(flash_fwd_split_bf16_d##D, S##D, true, true)

FLASH_DIM(32, FLASH_ENTRY)
FLASH_DIM(64, FLASH_ENTRY)
FLASH_DIM(96, FLASH_ENTRY)
FLASH_DIM(128, FLASH_ENTRY)
FLASH_DIM(192, FLASH_ENTRY)
FLASH_DIM(256, FLASH_ENTRY_JOINT)

extern "C" __global__ void __launch_bounds__(128) flash_combine_f16(const FlashParams p) { flash_combine<false>(p); }
extern "C" __global__ void __launch_bounds__(128) flash_combine_bf16(const FlashParams p) { flash_combine<true>(p); }

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
