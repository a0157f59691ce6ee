// sdpa4j cuda-flash: FlashAttention-2 backward on tensor cores (mma.sync m16n8k16, fp32 accumulation).
//
// Its one include, flash_bwd_common.cuh (packaged beside it, handed to NVRTC), holds what it shares with
// flash_bwd_sm90.cu. Every kernel takes one BwdParams by value; FlashDevice.java (runBackward) writes the same layout
// (8-byte fields, then four floats); launch rules in FlashBackwardPlan.java.
//
// Kernels (Dao, FlashAttention-2, 2023, section 3.2):
//   flash_bwd_preprocess_<dt>  D = rowsum(dO o O) in fp32 (one warp per query row); zeroes the fp32 dQ accumulator
//                              when there is one.
//   flash_bwd_<dt>_d<D>[_pad][_drop][_det]
//                              a block owns kBlockN keys of one (batch, kv head), keeps K and V tiles in shared
//                              memory and dK, dV in registers, and loops over the query heads of its grouped-query
//                              group and their query tiles (Q, dO double-buffered with cp.async). Per tile, each warp
//                              owns 16 keys: S^T = K Q^T and dP^T = V dO^T, P = exp2(S*scale*log2e - LSE*log2e)
//                              from the forward's LSE (no stored P), the dropout mask regenerated from seed and
//                              offset (dev.sdpa4j.Dropout), dV += (dropped P)^T dO, dS = P o (dropped dP - D),
//                              dK += dS^T Q (P and dS packed to 16 bits once, as the A fragments). Without _det,
//                              dS^T goes to one of two shared-memory buffers and the next tile's span adds
//                              dQ += dS K to the fp32 accumulator with atomics (one barrier per tile); with _det dQ
//                              is left to flash_bwd_dq_*.
//   flash_bwd_dq_<dt>_d<D>[_drop]
//                              deterministic dQ: a block owns query rows of one (batch, head) and loops over the key
//                              tiles in a fixed order (no atomics, the same bits run to run).
//   flash_bwd_convert_<dt>     dQ fp32 -> 16-bit (times the scale), into the caller's strides.
// Query rows past Lq are zero-filled (Q, dO, LSE, D), so their dS is 0 and they meet only zero rows of dO; rows whose
// LSE is -inf (every key masked) get P = 0; keys past Lk are zero-filled tiles whose dK, dV rows are never stored
// (their exponent is clamped at 0 so that P cannot overflow there). With dropout, the block draws each tile's kept
// bits one tile ahead into shared memory (one Philox call per four elements, or per sixteen with the BYTE resolution:
// p.dropout_bytes, a uniform runtime branch), between the tensor instructions of the tile before.

#include "flash_bwd_common.cuh"

// ---- traits ----
// kHeadDim: specialisation (E <= kHeadDim run with predicated loads); kBlockM queries per tile; kBlockN keys per
// block; kDSplit: warps sharing one 16-key group, each accumulating kHeadDim / kDSplit columns of dK and dV;
// kDqMW: 16-row query groups per warp in the dQ = dS K product (1: warp tiles of 16 queries x D / (NW / (BM / 16))
// columns; 2: 32 queries x half as many columns, fewer shared-memory reads when D / columns > 2)
// kKVRegs: the warp's K and V rows (the A fragments of S^T and dP^T) loaded into registers once per block instead of
// from shared memory every tile (32 registers at D=64)
template <int kHeadDim_, int kBlockM_, int kBlockN_, int kDSplit_, int kDqMW_ = 1, bool kKVRegs_ = false>
struct BwdTraits {
  static constexpr bool kKVRegs = kKVRegs_;
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kBlockM = kBlockM_;
  static constexpr int kBlockN = kBlockN_;
  static constexpr int kDSplit = kDSplit_;
  static constexpr int kDqMW = kDqMW_;
  static constexpr int kNWarps = kBlockN / 16 * kDSplit;
  static constexpr int kThreads = kNWarps * 32;
  static constexpr int KS = kHeadDim % 64 == 0 ? 64 : 32;
  static constexpr int KSM = kBlockM % 64 == 0 ? 64 : 32;  // the dS^T tile's column blocks (queries)
  // 16-bit tiles (K, V, two Q, two dO, two dS^T); then LSE and D (fp32, two buffers each) and, in the _drop kernels,
  // two buffers of kept bits: FlashBackwardPlan.Traits.sharedBytes is the dynamic shared memory launched with
  static constexpr int kTileBytes = (2 * kBlockN * kHeadDim + 4 * kBlockM * kHeadDim + 2 * kBlockN * kBlockM) * 2;
  static_assert(kBlockM <= KSM, "dS^T tile: one column block");
  static_assert(kBlockM % (16 * kDqMW) == 0 && kNWarps % (kBlockM / (16 * kDqMW)) == 0, "dQ warp grid");
  static_assert((kHeadDim / kDSplit) % 16 == 0, "dK/dV columns per warp");
};

template <int kHeadDim_, int kBlockM_, int kBlockN_>
struct DqTraits {
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kBlockM = kBlockM_;
  static constexpr int kBlockN = kBlockN_;
  static constexpr int kNWarps = kBlockM / 16;
  static constexpr int kThreads = kNWarps * 32;
  static constexpr int KS = kHeadDim % 64 == 0 ? 64 : 32;
};

// ---- preprocess: D = rowsum(dO o O), one warp per query row; zeroes the row of the fp32 dQ accumulator ----
template <bool kBf16>
DEVI void bwd_preprocess(const BwdParams& p) {
  const int lane = threadIdx.x & 31;
  const i64 rows = p.batch * p.heads * p.seqlen_q;
  const i64 row = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= rows) return;
  const i64 bh = row / p.seqlen_q;
  const i64 i = row % p.seqlen_q;
  const i64 b = bh / p.heads;
  const i64 h = bh % p.heads;
  const int E = (int)p.head_dim;
  const u16* o = reinterpret_cast<const u16*>(p.o) + b * p.so.b + h * p.so.h + i * p.so.r;
  const u16* d = reinterpret_cast<const u16*>(p.dout) + b * p.sdo.b + h * p.sdo.h + i * p.sdo.r;
  float acc = 0.f;
  for (int c = lane * 2; c < E; c += 64) {
    const u32 ov = *reinterpret_cast<const u32*>(o + c);
    const u32 dv = *reinterpret_cast<const u32*>(d + c);
    acc += to_float<kBf16>((u16)(ov & 0xffff)) * to_float<kBf16>((u16)(dv & 0xffff));
    acc += to_float<kBf16>((u16)(ov >> 16)) * to_float<kBf16>((u16)(dv >> 16));
  }
#pragma unroll
  for (int s = 16; s > 0; s >>= 1) acc += __shfl_xor_sync(0xffffffff, acc, s);
  if (lane == 0) reinterpret_cast<float*>(p.dsum)[row] = acc;
  if (p.dq_accum != 0) {
    float* a = reinterpret_cast<float*>(p.dq_accum) + row * E;
    for (int c = lane; c < E; c += 32) a[c] = 0.f;
  }
}

// ---- dQ fp32 (unscaled sum of dS K) -> scale * dQ in 16-bit, in the caller's strides, one warp per query row ----
template <bool kBf16>
DEVI void bwd_convert(const BwdParams& p) {
  const int lane = threadIdx.x & 31;
  const i64 rows = p.batch * p.heads * p.seqlen_q;
  const i64 row = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= rows) return;
  const i64 bh = row / p.seqlen_q;
  const i64 i = row % p.seqlen_q;
  const i64 b = bh / p.heads;
  const i64 h = bh % p.heads;
  const int E = (int)p.head_dim;
  const float* a = reinterpret_cast<const float*>(p.dq_accum) + row * E;
  u16* dq = reinterpret_cast<u16*>(p.dq) + b * p.sdq.b + h * p.sdq.h + i * p.sdq.r;
  for (int c = lane * 2; c < E; c += 64) {
    const float2 v = *reinterpret_cast<const float2*>(a + c);
    *reinterpret_cast<u32*>(dq + c) = pack2<kBf16>(v.x * p.scale, v.y * p.scale);
  }
}

// ---- main kernel: dK, dV (and dQ through atomics unless kDet) for one key tile ----
template <typename T, bool kBf16, bool kEvenD, bool kDropout, bool kDet>
DEVI void flash_bwd(const BwdParams& p) {
  constexpr int D = T::kHeadDim, BM = T::kBlockM, BN = T::kBlockN, DS = T::kDSplit, KS = T::KS, KSM = T::KSM;
  constexpr int NT = T::kThreads, NW = T::kNWarps;
  constexpr int NBM = BM / 8;   // 8-query blocks of S^T per warp
  constexpr int DW = D / DS;    // dK/dV columns per warp
  constexpr int MW = T::kDqMW;  // dQ: 16-row query groups per warp
  constexpr int MG = BM / (16 * MW);  // dQ: warp rows
  constexpr int NG = NW / MG;   // dQ: column groups
  constexpr int DQW = D / NG;   // dQ columns per warp
  static_assert(DQW % 16 == 0, "dQ columns per warp");
  extern __shared__ __align__(128) unsigned char smem_raw[];
  const u32 sK = smem_u32(smem_raw);
  const u32 sV = sK + BN * D * 2;
  const u32 sQ0 = sV + BN * D * 2;         // two buffers of BM x D
  const u32 sdO0 = sQ0 + 2 * BM * D * 2;   // two buffers of BM x D
  const u32 sdS = sdO0 + 2 * BM * D * 2;   // two buffers of BN x BM (keys x queries)
  float* sLse = reinterpret_cast<float*>(smem_raw + T::kTileBytes);  // [2][BM]: the forward's LSE (0 past Lq)
  float* sDsum = sLse + 2 * BM;                                      // [2][BM]: D (0 past Lq)
  unsigned char* sMask = reinterpret_cast<unsigned char*>(sDsum + 2 * BM);  // [2][BM][BN / 4]: kept bits

  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;
  const int g = lane >> 2;
  const int t = lane & 3;
  const int kg = warp / DS;  // this warp's 16-key group
  const int cp = warp % DS;  // and its dK/dV column part

  const int n_block = blockIdx.x;
  const i64 hkv = p.heads / p.kv_group;
  const i64 b = blockIdx.y / hkv;
  const i64 hk = blockIdx.y % hkv;
  const int G = (int)p.kv_group;
  const int Lq = (int)p.seqlen_q;
  const int Lk = (int)p.seqlen_k;
  const int E = kEvenD ? D : (int)p.head_dim;
  const int n0 = n_block * BN;

  const u16* gK = reinterpret_cast<const u16*>(p.k) + b * p.sk.b + hk * p.sk.h + (i64)n0 * p.sk.r;
  const u16* gV = reinterpret_cast<const u16*>(p.v) + b * p.sv.b + hk * p.sv.h + (i64)n0 * p.sv.r;

  // query tiles that see some key of this tile
  const int m_tiles = (Lq + BM - 1) / BM;
  int m_begin = 0;
  if (p.causal) {
    const i64 first = (i64)n0 - p.causal_offset;  // the first query row that sees key n0
    if (first >= Lq) m_begin = m_tiles;
    else if (first > 0) m_begin = (int)(first / BM);
  }
  const int nm = m_tiles - m_begin;
  const int count = G * nm;

  float acc_dk[DW / 8][4];
  float acc_dv[DW / 8][4];
#pragma unroll
  for (int d = 0; d < DW / 8; ++d)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc_dk[d][e] = acc_dv[d][e] = 0.f;

  // tiles are visited head by head (the GQA group's query heads), query tiles m_begin.. within each; the loop keeps
  // (query head, first row) of the previous, current and next tile (no division per tile)
  auto issue = [&](i64 hq, int m0, int buf) {
    load_query_tile<D, BM, NT, KS>(p, b, hq, m0, Lq, E, sQ0 + buf * BM * D * 2, sdO0 + buf * BM * D * 2,
                                   sLse + buf * BM, sDsum + buf * BM, tid);
  };

  const float sl2 = p.scale_log2;
  const u32 seed_lo = (u32)p.seed;
  const u32 seed_hi = (u32)((unsigned long long)p.seed >> 32);
  const u32 drop_thr = (u32)p.dropout_threshold;
  const float ks = p.keep_scale;

  const bool bytes = p.dropout_bytes != 0;

  // the kept bits of the tile (query head hq, rows m0..) x this block's keys (4 or 16 keys per Philox call) into
  // sMask[buf]
  auto draw_mask = [&](i64 hq, int m0, int buf) {
    draw_mask_words<BM, BN, NT, 1>(sMask + buf * BM * (BN / 4), 0, tid, n0, m0, (u32)(b * p.heads + hq),
                                   (u32)p.offset, seed_lo, seed_hi, drop_thr, bytes);
  };

  load_tile<D, BN, NT, KS>(sK, gK, p.sk.r, Lk - n0, E, tid);
  load_tile<D, BN, NT, KS>(sV, gV, p.sv.r, Lk - n0, E, tid);
  i64 cur_hq = hk * G, prev_hq = 0;  // tile it's query head and first row; tile it-1's
  int cur_m0 = m_begin * BM, prev_m0 = 0;
  if (count > 0) issue(cur_hq, cur_m0, 0);
  cp_async_commit();
  if (kDropout && count > 0) draw_mask(cur_hq, cur_m0, 0);

  // ldmatrix lane patterns: "R" reads an A operand stored [m][k] or a B operand stored [k][n] (with .trans);
  // "C" reads a B operand stored [n][k] or an A operand stored [k][m] (with .trans)
  const int r_row = (lane & 7) + ((lane >> 3) & 1) * 8;
  const int r_col = (lane >> 4) * 8;
  const int c_row = (lane & 7) + (lane >> 4) * 8;
  const int c_col = ((lane >> 3) & 1) * 8;
  const LdsmAddr<KS, BN> aK(sK, kg * 16 + r_row, r_col, 0);    // A = K rows of this warp (S^T)
  const LdsmAddr<KS, BN> aV(sV, kg * 16 + r_row, r_col, 0);    // A = V rows of this warp (dP^T)
  const LdsmAddr<KS, BM> bQ(sQ0, c_row, c_col, 0);              // B = Q (S^T), + buffer offset
  const LdsmAddr<KS, BM> bdO(sdO0, c_row, c_col, 0);            // B = dO (dP^T)
  const LdsmAddr<KS, BM> tdO(sdO0, r_row, r_col, cp * DW);      // B = dO stored [k=query][n=d] (dV)
  const LdsmAddr<KS, BM> tQ(sQ0, r_row, r_col, cp * DW);        // B = Q stored [k=query][n=d] (dK)
  const int mg = warp % MG;
  const int ng = warp / MG;
  const LdsmAddr<KSM, BN> adS(sdS, c_row, c_col, mg * 16 * MW);  // A = dS stored [k=key][m=query] (dQ)
  const LdsmAddr<KS, BN> tK(sK, r_row, r_col, ng * DQW);        // B = K stored [k=key][n=d] (dQ)

  // dQ[BM x D] += dS K over this block's keys for the tile (query head hqj, rows mj..) whose dS^T is in sdS[dsbuf];
  // added to the fp32 accumulator (the convert kernel applies the scale)
  auto dq_tile = [&](i64 hqj, int mj, int dsbuf) {
    const u32 dsoff = dsbuf * BN * BM * 2;
    float acc_dq[MW][DQW / 8][4];
#pragma unroll
    for (int w = 0; w < MW; ++w)
#pragma unroll
      for (int d = 0; d < DQW / 8; ++d)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc_dq[w][d][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      u32 a[MW][4];
#pragma unroll
      for (int w = 0; w < MW; ++w) ldsm_x4_t(adS.at(kk * 16, w * 16) + dsoff, a[w][0], a[w][1], a[w][2], a[w][3]);
#pragma unroll
      for (int dp = 0; dp < DQW / 16; ++dp) {
        if (kEvenD || ng * DQW + dp * 16 < E) {
          u32 b0, b1, b2, b3;
          ldsm_x4_t(tK.at(kk * 16, dp * 16), b0, b1, b2, b3);
#pragma unroll
          for (int w = 0; w < MW; ++w) {
            mma16816<kBf16>(acc_dq[w][2 * dp], a[w], b0, b1);
            mma16816<kBf16>(acc_dq[w][2 * dp + 1], a[w], b2, b3);
          }
        }
      }
    }
    float* dqa = reinterpret_cast<float*>(p.dq_accum) + ((b * p.heads + hqj) * (i64)Lq + mj) * E;
#pragma unroll
    for (int w = 0; w < MW; ++w) {
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int row = (mg * MW + w) * 16 + g + hh * 8;
        if (mj + row < Lq) {
#pragma unroll
          for (int d = 0; d < DQW / 8; ++d) {
            const int col = ng * DQW + d * 8 + 2 * t;
            if (kEvenD || col < E) {
              red_add2(dqa + (i64)row * E + col, acc_dq[w][d][2 * hh], acc_dq[w][d][2 * hh + 1]);
            }
          }
        }
      }
    }
  };

  // One barrier per tile: after the top barrier (tile it's Q, dO, LSE, D and kept bits have arrived, and sdS[(it-1) & 1]
  // holds dS^T of tile it-1) each warp adds tile it-1's dQ, then computes tile it's S^T, dP^T, P, dS, runs the dV, dK
  // products and writes dS^T to sdS[it & 1]. Buffers [buf ^ 1] refilled after the top barrier (Q, dO, LSE, D, kept
  // bits, and dS^T, whose tile it-1 was read before it) were last read before that barrier.
  u32 kf[T::kKVRegs ? D / 16 : 1][4], vf[T::kKVRegs ? D / 16 : 1][4];  // with kKVRegs: K, V A fragments
  for (int it = 0; it < count; ++it) {
    const int buf = it & 1;
    const u32 boff = buf * BM * D * 2;
    const int m0 = cur_m0;
    i64 next_hq = cur_hq;
    int next_m0 = cur_m0 + BM;
    if (next_m0 >= m_tiles * BM) {
      next_m0 = m_begin * BM;
      ++next_hq;
    }
    cp_async_wait_all();
    __syncthreads();
    if (it + 1 < count) issue(next_hq, next_m0, buf ^ 1);
    cp_async_commit();
    // the next tile's mask, one tile ahead: its Philox integer work can issue between the tensor instructions below
    if (kDropout && it + 1 < count) draw_mask(next_hq, next_m0, buf ^ 1);
    if (!kDet && it > 0) dq_tile(prev_hq, prev_m0, buf ^ 1);

    if (T::kKVRegs && it == 0) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        ldsm_x4(aK.at(0, kk * 16), kf[kk][0], kf[kk][1], kf[kk][2], kf[kk][3]);
        ldsm_x4(aV.at(0, kk * 16), vf[kk][0], vf[kk][1], vf[kk][2], vf[kk][3]);
      }
    }

    // S^T = K Q^T and dP^T = V dO^T: 16 keys x BM queries per warp
    float acc_s[NBM][4];
    float acc_dp[NBM][4];
#pragma unroll
    for (int j = 0; j < NBM; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc_s[j][e] = acc_dp[j][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      if (kEvenD || kk * 16 < E) {
        u32 a[4], c[4];
        if (T::kKVRegs) {
#pragma unroll
          for (int x = 0; x < 4; ++x) a[x] = kf[kk][x], c[x] = vf[kk][x];
        } else {
          ldsm_x4(aK.at(0, kk * 16), a[0], a[1], a[2], a[3]);
          ldsm_x4(aV.at(0, kk * 16), c[0], c[1], c[2], c[3]);
        }
#pragma unroll
        for (int jp = 0; jp < NBM / 2; ++jp) {
          u32 b0, b1, b2, b3;
          ldsm_x4(bQ.at(jp * 16, kk * 16) + boff, b0, b1, b2, b3);
          mma16816<kBf16>(acc_s[2 * jp], a, b0, b1);
          mma16816<kBf16>(acc_s[2 * jp + 1], a, b2, b3);
          ldsm_x4(bdO.at(jp * 16, kk * 16) + boff, b0, b1, b2, b3);
          mma16816<kBf16>(acc_dp[2 * jp], c, b0, b1);
          mma16816<kBf16>(acc_dp[2 * jp + 1], c, b2, b3);
        }
      }
    }

    // P, dropout, dS packed to 16-bit pairs (bwd_elementwise), in two instances: tiles crossing the causal diagonal
    // (kMask) and the others
    u32 pk[NBM][2], ds16[NBM][2];
    auto elementwise = [&](auto mask_tag) {
      constexpr bool kMask = decltype(mask_tag)::value;
      bwd_elementwise<kBf16, kMask, kDropout, BM, BN, NBM>(&acc_s[0][0], &acc_dp[0][0], sLse, sDsum, sMask, buf, kg * 16, g, t,
          kMask ? (int)((i64)m0 - n0 + p.causal_offset) : 0, sl2, ks, pk, ds16);
    };
    if (p.causal && (i64)m0 < (i64)n0 + BN - 1 - p.causal_offset) {
      elementwise(BoolC<true>());
    } else {
      elementwise(BoolC<false>());
    }

    // dV += P^T dO, dK += dS^T Q (k = queries)
#pragma unroll
    for (int kq = 0; kq < BM / 16; ++kq) {
      const u32 ap[4] = {pk[2 * kq][0], pk[2 * kq][1], pk[2 * kq + 1][0], pk[2 * kq + 1][1]};
      const u32 as[4] = {ds16[2 * kq][0], ds16[2 * kq][1], ds16[2 * kq + 1][0], ds16[2 * kq + 1][1]};
#pragma unroll
      for (int dp = 0; dp < DW / 16; ++dp) {
        if (kEvenD || cp * DW + dp * 16 < E) {
          u32 b0, b1, b2, b3;
          ldsm_x4_t(tdO.at(kq * 16, dp * 16) + boff, b0, b1, b2, b3);
          mma16816<kBf16>(acc_dv[2 * dp], ap, b0, b1);
          mma16816<kBf16>(acc_dv[2 * dp + 1], ap, b2, b3);
          ldsm_x4_t(tQ.at(kq * 16, dp * 16) + boff, b0, b1, b2, b3);
          mma16816<kBf16>(acc_dk[2 * dp], as, b0, b1);
          mma16816<kBf16>(acc_dk[2 * dp + 1], as, b2, b3);
        }
      }
    }
    // dS^T of this tile to sdS[buf] for the dQ product in the next tile's span (after the products: stored before
    // them it cost 6% at D=64, KERNEL_NOTES.md training v6)
    if (!kDet && cp == 0) {
      const u32 sdSb = sdS + buf * BN * BM * 2;
#pragma unroll
      for (int j = 0; j < NBM; ++j) {
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(sdSb + 2 * swz<KSM, BN>(kg * 16 + g + hh * 8, j * 8 + 2 * t)),
                       "r"(ds16[j][hh]));
        }
      }
    }
    prev_hq = cur_hq;
    prev_m0 = cur_m0;
    cur_hq = next_hq;
    cur_m0 = next_m0;
  }
  if (!kDet && count > 0) {
    __syncthreads();
    dq_tile(prev_hq, prev_m0, (count - 1) & 1);
  }

  // epilogue: dK (times the scale) and dV (times the dropout keep scale: pk holds the kept P unscaled) of this warp's
  // keys and columns
  const float dvs = kDropout ? ks : 1.f;
  u16* dk = reinterpret_cast<u16*>(p.dk) + b * p.sdk.b + hk * p.sdk.h;
  u16* dv = reinterpret_cast<u16*>(p.dv) + b * p.sdv.b + hk * p.sdv.h;
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    const int key = n0 + kg * 16 + g + hh * 8;
    if (key < Lk) {
#pragma unroll
      for (int d = 0; d < DW / 8; ++d) {
        const int col = cp * DW + d * 8 + 2 * t;
        if (kEvenD || col < E) {
          *reinterpret_cast<u32*>(dk + (i64)key * p.sdk.r + col) =
              pack2<kBf16>(acc_dk[d][2 * hh] * p.scale, acc_dk[d][2 * hh + 1] * p.scale);
          *reinterpret_cast<u32*>(dv + (i64)key * p.sdv.r + col) =
              pack2<kBf16>(acc_dv[d][2 * hh] * dvs, acc_dv[d][2 * hh + 1] * dvs);
        }
      }
    }
  }
}

// ---- deterministic dQ: a block owns BM query rows of one (batch, head), key tiles in a fixed order ----
template <typename T, bool kBf16, bool kDropout>
DEVI void flash_bwd_dq(const BwdParams& p) {
  constexpr int D = T::kHeadDim, BM = T::kBlockM, BN = T::kBlockN, KS = T::KS, NT = T::kThreads;
  constexpr int NB = BN / 8;
  constexpr int DB = D / 8;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  const u32 sQ = smem_u32(smem_raw);
  const u32 sdO = sQ + BM * D * 2;
  const u32 sK = sdO + BM * D * 2;
  const u32 sV = sK + BN * D * 2;

  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;
  const int g = lane >> 2;
  const int t = lane & 3;
  const int m_block = gridDim.x - 1 - blockIdx.x;
  const i64 bh = blockIdx.y;
  const i64 b = bh / p.heads;
  const i64 h = bh % p.heads;
  const i64 hk = h / p.kv_group;
  const int Lq = (int)p.seqlen_q;
  const int Lk = (int)p.seqlen_k;
  const int E = (int)p.head_dim;
  const int m0 = m_block * BM;

  const u16* gQ = reinterpret_cast<const u16*>(p.q) + b * p.sq.b + h * p.sq.h + (i64)m0 * p.sq.r;
  const u16* gdO = reinterpret_cast<const u16*>(p.dout) + b * p.sdo.b + h * p.sdo.h + (i64)m0 * p.sdo.r;
  const u16* gK = reinterpret_cast<const u16*>(p.k) + b * p.sk.b + hk * p.sk.h;
  const u16* gV = reinterpret_cast<const u16*>(p.v) + b * p.sv.b + hk * p.sv.h;

  int n_max = (Lk + BN - 1) / BN;
  if (p.causal) {
    const int last_row = min(m0 + BM, Lq) - 1;
    const i64 last_key = (i64)last_row + p.causal_offset;
    n_max = last_key < 0 ? 0 : (int)min((i64)n_max, (last_key + BN) / BN);
  }

  // this thread's rows: LSE * log2(e) (+inf: no row or every key masked) and D
  float lse2[2], dsum[2];
  int rows[2];
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    rows[hh] = m0 + warp * 16 + g + hh * 8;
    lse2[hh] = POS_INF;
    dsum[hh] = 0.f;
    if (rows[hh] < Lq) {
      const float x = reinterpret_cast<const float*>(p.lse)[b * p.slse.b + h * p.slse.h + (i64)rows[hh] * p.slse.r];
      lse2[hh] = x == NEG_INF ? POS_INF : x * LOG2E_F;
      dsum[hh] = reinterpret_cast<const float*>(p.dsum)[bh * Lq + rows[hh]];
    }
  }

  float acc_dq[DB][4];
#pragma unroll
  for (int d = 0; d < DB; ++d)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc_dq[d][e] = 0.f;

  load_tile<D, BM, NT, KS>(sQ, gQ, p.sq.r, Lq - m0, E, tid);
  load_tile<D, BM, NT, KS>(sdO, gdO, p.sdo.r, Lq - m0, E, tid);

  const int r_row = (lane & 7) + ((lane >> 3) & 1) * 8;
  const int r_col = (lane >> 4) * 8;
  const int c_row = (lane & 7) + (lane >> 4) * 8;
  const int c_col = ((lane >> 3) & 1) * 8;
  const LdsmAddr<KS, BM> aQ(sQ, warp * 16 + r_row, r_col, 0);
  const LdsmAddr<KS, BM> adO(sdO, warp * 16 + r_row, r_col, 0);
  const LdsmAddr<KS, BN> bK(sK, c_row, c_col, 0);
  const LdsmAddr<KS, BN> bV(sV, c_row, c_col, 0);
  const LdsmAddr<KS, BN> tK(sK, r_row, r_col, 0);
  const float sl2 = p.scale_log2;
  const u32 seed_lo = (u32)p.seed;
  const u32 seed_hi = (u32)((unsigned long long)p.seed >> 32);
  const u32 drop_thr = (u32)p.dropout_threshold;
  const u32 c2 = (u32)(b * p.heads + h);
  const float ks = p.keep_scale;
  const bool bytes = p.dropout_bytes != 0;

  for (int n = 0; n < n_max; ++n) {
    const int n0 = n * BN;
    load_tile<D, BN, NT, KS>(sK, gK + (i64)n0 * p.sk.r, p.sk.r, Lk - n0, E, tid);
    load_tile<D, BN, NT, KS>(sV, gV + (i64)n0 * p.sv.r, p.sv.r, Lk - n0, E, tid);
    cp_async_commit();
    cp_async_wait_all();
    __syncthreads();

    float acc_s[NB][4];
    float acc_dp[NB][4];
#pragma unroll
    for (int j = 0; j < NB; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc_s[j][e] = acc_dp[j][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      if (kk * 16 < E) {
        u32 a[4], c[4];
        ldsm_x4(aQ.at(0, kk * 16), a[0], a[1], a[2], a[3]);
        ldsm_x4(adO.at(0, kk * 16), c[0], c[1], c[2], c[3]);
#pragma unroll
        for (int jp = 0; jp < NB / 2; ++jp) {
          u32 b0, b1, b2, b3;
          ldsm_x4(bK.at(jp * 16, kk * 16), b0, b1, b2, b3);
          mma16816<kBf16>(acc_s[2 * jp], a, b0, b1);
          mma16816<kBf16>(acc_s[2 * jp + 1], a, b2, b3);
          ldsm_x4(bV.at(jp * 16, kk * 16), b0, b1, b2, b3);
          mma16816<kBf16>(acc_dp[2 * jp], c, b0, b1);
          mma16816<kBf16>(acc_dp[2 * jp + 1], c, b2, b3);
        }
      }
    }

    const bool need_mask = p.causal && (i64)n0 + BN - 1 > (i64)m0 + p.causal_offset;
    uint4 xb[2];  // BYTE: the Philox words of this thread's two rows for the current 16 keys
#pragma unroll
    for (int j = 0; j < NB; ++j) {
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int col0 = n0 + j * 8 + 2 * t;
        bool keep0 = true, keep1 = true;
        if (kDropout) {
          if (bytes) {
            // BYTE: one call per 16 keys (8-key blocks j and j + 1 share it); this thread's keys col0, col0 + 1 are
            // bytes 2t & 3, +1 of word (2 * (j & 1) + (t >> 1))
            if ((j & 1) == 0) xb[hh] = philox((u32)col0 >> 4, (u32)rows[hh], c2, (u32)p.offset, seed_lo, seed_hi);
            const u32 w = (t >> 1) ? ((j & 1) ? xb[hh].w : xb[hh].y) : ((j & 1) ? xb[hh].z : xb[hh].x);
            const u32 u = (t & 1) ? w >> 16 : w;
            keep0 = (u & 0xffu) >= drop_thr;
            keep1 = ((u >> 8) & 0xffu) >= drop_thr;
          } else {
            const uint4 x = philox((u32)col0 >> 2, (u32)rows[hh], c2, (u32)p.offset, seed_lo, seed_hi);
            keep0 = ((col0 & 3) == 0 ? x.x : x.z) >= drop_thr;
            keep1 = ((col0 & 3) == 0 ? x.y : x.w) >= drop_thr;
          }
        }
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int idx = 2 * hh + e;
          // clamped at 0 like the main kernel's: zero-filled keys past Lk must not overflow
          float pv = fast_exp2(fminf(acc_s[j][idx] * sl2 - lse2[hh], 0.f));
          if (need_mask && (i64)(col0 + e) > (i64)rows[hh] + p.causal_offset) pv = 0.f;
          float dpd = acc_dp[j][idx];
          if (kDropout) dpd = (e == 0 ? keep0 : keep1) ? dpd * ks : 0.f;
          acc_dp[j][idx] = pv * (dpd - dsum[hh]);
        }
      }
    }

    // dQ += dS K
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      u32 a[4];
      a[0] = pack2<kBf16>(acc_dp[2 * kk][0], acc_dp[2 * kk][1]);
      a[1] = pack2<kBf16>(acc_dp[2 * kk][2], acc_dp[2 * kk][3]);
      a[2] = pack2<kBf16>(acc_dp[2 * kk + 1][0], acc_dp[2 * kk + 1][1]);
      a[3] = pack2<kBf16>(acc_dp[2 * kk + 1][2], acc_dp[2 * kk + 1][3]);
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        if (dp * 16 < E) {
          u32 b0, b1, b2, b3;
          ldsm_x4_t(tK.at(kk * 16, dp * 16), b0, b1, b2, b3);
          mma16816<kBf16>(acc_dq[2 * dp], a, b0, b1);
          mma16816<kBf16>(acc_dq[2 * dp + 1], a, b2, b3);
        }
      }
    }
    __syncthreads();
  }

  u16* dq = reinterpret_cast<u16*>(p.dq) + b * p.sdq.b + h * p.sdq.h;
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    if (rows[hh] < Lq) {
#pragma unroll
      for (int d = 0; d < DB; ++d) {
        const int col = d * 8 + 2 * t;
        if (col < E) {
          *reinterpret_cast<u32*>(dq + (i64)rows[hh] * p.sdq.r + col) =
              pack2<kBf16>(acc_dq[d][2 * hh] * p.scale, acc_dq[d][2 * hh + 1] * p.scale);
        }
      }
    }
  }
}

// ---- entry points ----
// Traits (head dim, kBlockM, kBlockN, kDSplit[, kDqMW, kKVRegs]); FlashBackwardPlan.java holds the same tables (MAIN,
// MAIN_DROPOUT) for the launch (the last two are internal to the kernel: KERNEL_NOTES.md, training v6).
typedef BwdTraits<32, 64, 128, 1> B32;
typedef BwdTraits<64, 64, 128, 1, 1, true> B64;  // K, V fragments in registers
typedef BwdTraits<128, 64, 128, 1, 2> B128;      // dQ warp tiles of 32 queries x 32 columns
typedef BwdTraits<256, 32, 64, 2> B256;
// the _drop kernels: D=64 and D=128 with 32-query tiles (half the S^T/dP^T registers next to the kept bits)
typedef B32 B32_drop;
typedef BwdTraits<64, 32, 128, 1> B64_drop;
typedef BwdTraits<128, 32, 128, 1> B128_drop;
typedef B256 B256_drop;
typedef DqTraits<32, 64, 64> Q32;
typedef DqTraits<64, 64, 64> Q64;
typedef DqTraits<128, 64, 64> Q128;
typedef DqTraits<256, 64, 32> Q256;

// flash_bwd_<dt>_d<D>[_pad][_drop][_det]: _pad for a head dim below the specialisation's (predicated loads and
// k-steps; separate kernels so that the hot path keeps its own register allocation), _drop with dropout, _det
// without the dQ atomics (deterministic mode, dQ from flash_bwd_dq_*)
#define BWD_ONE(NAME, T, BF16, EVEN, DROP, DET)                                               \
  extern "C" __global__ void __launch_bounds__(T::kThreads, 1) NAME(const BwdParams p) {   \
    flash_bwd<T, BF16, EVEN, DROP, DET>(p);                                                 \
  }
#define BWD_VARIANTS(NAME, T, TD, BF16, EVEN)         \
  BWD_ONE(NAME, T, BF16, EVEN, false, false)          \
  BWD_ONE(NAME##_drop, TD, BF16, EVEN, true, false)   \
  BWD_ONE(NAME##_det, T, BF16, EVEN, false, true)     \
  BWD_ONE(NAME##_drop_det, TD, BF16, EVEN, true, true)
#define DQ_ONE(NAME, T, BF16, DROP)                                                          \
  extern "C" __global__ void __launch_bounds__(T::kThreads) NAME(const BwdParams p) {      \
    flash_bwd_dq<T, BF16, DROP>(p);                                                        \
  }
// head dims 64 and 128 get an exact kernel and a _pad kernel; 32 and 256 only the predicated one (named _pad)
#define BWD_DIM_EVEN(D)                                      \
  BWD_VARIANTS(flash_bwd_f16_d##D, B##D, B##D##_drop, false, true)        \
  BWD_VARIANTS(flash_bwd_bf16_d##D, B##D, B##D##_drop, true, true)
#define BWD_DIM_PAD(D)                                       \
  BWD_VARIANTS(flash_bwd_f16_d##D##_pad, B##D, B##D##_drop, false, false) \
  BWD_VARIANTS(flash_bwd_bf16_d##D##_pad, B##D, B##D##_drop, true, false)  \
  DQ_ONE(flash_bwd_dq_f16_d##D, Q##D, false, false)          \
  DQ_ONE(flash_bwd_dq_f16_d##D##_drop, Q##D, false, true)    \
  DQ_ONE(flash_bwd_dq_bf16_d##D, Q##D, true, false)          \
  DQ_ONE(flash_bwd_dq_bf16_d##D##_drop, Q##D, true, true)

BWD_DIM_EVEN(64)
BWD_DIM_EVEN(128)
BWD_DIM_PAD(32)
BWD_DIM_PAD(64)
BWD_DIM_PAD(128)
BWD_DIM_PAD(256)

extern "C" __global__ void __launch_bounds__(128) flash_bwd_preprocess_f16(const BwdParams p) { bwd_preprocess<false>(p); }
extern "C" __global__ void __launch_bounds__(128) flash_bwd_preprocess_bf16(const BwdParams p) { bwd_preprocess<true>(p); }
extern "C" __global__ void __launch_bounds__(128) flash_bwd_convert_f16(const BwdParams p) { bwd_convert<false>(p); }
extern "C" __global__ void __launch_bounds__(128) flash_bwd_convert_bf16(const BwdParams p) { bwd_convert<true>(p); }
