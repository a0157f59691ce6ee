// sdpa4j cuda-flash: what the two backward kernel files share (flash_bwd.cu: mma.sync, every architecture;
// flash_bwd_sm90.cu: wgmma, sm_90a) beyond flash_common.cuh: the BwdParams block that FlashDevice.java (runBackward)
// writes, the backward's helpers (4-byte cp.async, 16-bit to float, vector reductions), the loader and ldmatrix
// addressing of its swizzled shared-memory tiles, and the per-tile steps both main kernels take alike (query-tile
// loads, the dropout mask draw, the P / dropout / dS elementwise step).
#pragma once

#include "flash_common.cuh"

struct Strides {
  i64 b, h, r;  // element strides of batch, head and row; the head dim has stride 1
};

struct BwdParams {
  i64 q, k, v, o, dout, lse, dq, dk, dv;  // device pointers of element 0 (lse fp32, others 16-bit)
  i64 dq_accum;                          // fp32 [B*Hq][Lq][E] (atomic mode), else 0
  i64 dsum;                              // fp32 [B*Hq][Lq]: rowsum(dO o O)
  Strides sq, sk, sv, so, sdo, slse, sdq, sdk, sdv;
  i64 batch, heads, kv_group;            // B, Hq, Hq / Hkv
  i64 seqlen_q, seqlen_k, head_dim;
  i64 causal;                            // 0: none; 1: key j visible to query i iff j <= i + causal_offset
  i64 causal_offset;                     // 0 (top-left) or Lk - Lq (bottom-right)
  i64 seed;                              // Philox key: k0 = low word, k1 = high word
  i64 offset;                            // Philox counter word c3
  i64 dropout_threshold;                 // t: floor(p * 2^32) (WORD) or min(255, round(p * 256)) (BYTE), unsigned
  float scale;                           // softmax scale
  float scale_log2;                      // scale * log2(e)
  float keep_scale;                      // 1 / (1 - p) (WORD) or 256 / (256 - t) (BYTE)
  u32 dropout_bytes;                     // the mask's resolution (dev.sdpa4j.DropoutResolution): 0 WORD, 1 BYTE
};

template <bool B>
struct BoolC {
  static constexpr bool value = B;
};
#define LOG2E_F 1.4426950408889634f
#define POS_INF (__int_as_float(0x7f800000))

DEVI void cp_async4(u32 dst, const void* src, bool pred) {
  int n = pred ? 4 : 0;
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(n));
}
DEVI void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }

template <bool kBf16>
DEVI float to_float(u16 h) {
  if (kBf16) return __uint_as_float(static_cast<u32>(h) << 16);
  float f;
  asm("{ .reg .b16 t; mov.b16 t, %1; cvt.f32.f16 %0, t; }" : "=f"(f) : "h"(h));
  return f;
}

// adds (a, b) to addr[0], addr[1] (8-byte aligned): one vector reduction on sm_90, two scalar ones before
DEVI void red_add2(float* addr, float a, float b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("red.global.add.v2.f32 [%0], {%1, %2};\n" ::"l"(addr), "f"(a), "f"(b) : "memory");
#else
  asm volatile("red.global.add.f32 [%0], %1;\n" ::"l"(addr), "f"(a) : "memory");
  asm volatile("red.global.add.f32 [%0], %1;\n" ::"l"(addr + 1), "f"(b) : "memory");
#endif
}

// loads a kRows x kD tile (rows >= nrows or cols >= ncols zero-filled) with cp.async
template <int kD, int kRows, int kThreads, int KS>
DEVI void load_tile(u32 smem, const u16* g, i64 row_stride, int nrows, int ncols, int tid) {
  constexpr int kChunksPerRow = kD / 8;
  constexpr int kChunks = kRows * kChunksPerRow;
  static_assert(kChunks % kThreads == 0, "tile chunks must divide among threads");
  static_assert(kThreads % kChunksPerRow == 0, "threads must cover whole rows");
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
    cp_async16(smem + 2 * swz<KS, kRows>(row, col), pred ? src : g, pred);
    src += step;
  }
}

// Per-thread ldmatrix addresses in a swizzled tile of kRows rows: the lane reads row (R0 + trow) and the 16-byte
// chunk at column (cb + C0 + tcol), tcol in {0, 8}, for compile-time R0 and C0 (multiples of 16) and a runtime column
// base cb (a multiple of 16) such that either cb % KS == 0 or every used C0 stays inside cb's column block.
template <int KS, int kRows>
struct LdsmAddr {
  u32 base;
  u32 off[KS / 16];
  DEVI LdsmAddr(u32 tile, int trow, int tcol, int cb) {
    base = tile + trow * KS * 2 + (cb / KS) * kRows * KS * 2;
#pragma unroll
    for (int q = 0; q < KS / 16; ++q) {
      const int chunk = ((cb % KS) >> 3) + 2 * q + (tcol >> 3);
      const int sw = KS == 64 ? (chunk ^ (trow & 7)) : (chunk ^ ((trow >> 1) & 3));
      off[q] = sw * 16;
    }
  }
  DEVI u32 at(int R0, int C0) const {
    return base + (C0 / KS) * kRows * KS * 2 + R0 * KS * 2 + off[(C0 % KS) / 16];
  }
};

// ---- the per-tile steps of both main kernels ----

// Issues the cp.async loads of query tile (head hq, rows m0..m0+BM) for batch b: Q and dO into the tiles sQ / sdO
// (rows past Lq and columns past ncols zero-filled), LSE and D into sLse / sDsum (zero past Lq: there Q and dO are zero
// too, so dS = 0 and P only meets zero rows of dO).
template <int D, int BM, int NT, int KS>
DEVI void load_query_tile(const BwdParams& p, i64 b, i64 hq, int m0, int Lq, int ncols, u32 sQ, u32 sdO, float* sLse,
                          float* sDsum, int tid) {
  const u16* gQ = reinterpret_cast<const u16*>(p.q) + b * p.sq.b + hq * p.sq.h + (i64)m0 * p.sq.r;
  const u16* gdO = reinterpret_cast<const u16*>(p.dout) + b * p.sdo.b + hq * p.sdo.h + (i64)m0 * p.sdo.r;
  load_tile<D, BM, NT, KS>(sQ, gQ, p.sq.r, Lq - m0, ncols, tid);
  load_tile<D, BM, NT, KS>(sdO, gdO, p.sdo.r, Lq - m0, ncols, tid);
  const float* lse = reinterpret_cast<const float*>(p.lse) + b * p.slse.b + hq * p.slse.h;
  const float* dsum = reinterpret_cast<const float*>(p.dsum) + (b * p.heads + hq) * (i64)Lq;
  for (int x = tid; x < 2 * BM; x += NT) {
    const int r = x % BM;
    const bool ok = m0 + r < Lq;
    if (x < BM) {
      cp_async4(smem_u32(sLse + r), ok ? lse + (i64)(m0 + r) * p.slse.r : lse, ok);
    } else {
      cp_async4(smem_u32(sDsum + r), ok ? dsum + m0 + r : dsum, ok);
    }
  }
}

// The kept bits of one Philox word under the BYTE resolution: bit k set iff byte k of x (little-endian) >= t, for
// t2 = t * 0x00010001, t in 0..255. Two bytes per 16-bit lane: (byte | 0x100) - t lies in [1, 511], so no borrow
// crosses lanes and bit 8 of the lane says byte >= t.
DEVI u32 keep_nibble_bytes(u32 x, u32 t2) {
  const u32 e = ((x & 0x00ff00ffu) | 0x01000100u) - t2;         // bytes 0 and 2 -> bits 8 and 24
  const u32 o = (((x >> 8) & 0x00ff00ffu) | 0x01000100u) - t2;  // bytes 1 and 3 -> bits 8 and 24
  const u32 c = (e & 0x01000100u) | ((o & 0x01000100u) << 1);   // keys 0, 1 at bits 8, 9; keys 2, 3 at 24, 25
  return ((c >> 8) & 3u) | ((c >> 22) & 12u);
}

// Draws kept bits of the BM x BN tile (queries m0.., keys n0..; Philox counter word c2 = batch * Hq + head) into mask,
// one byte per four keys (bit k: key 4 * byte + k), part `part` of kParts of this thread's share, in the request's
// resolution (dev.sdpa4j.Dropout; the branch is uniform):
//   WORD (bytes false): one Philox call per four keys, key j kept iff r[j & 3] >= thr; BM * (BN / 4) calls per tile;
//   BYTE (bytes true): one Philox call per sixteen keys, key j kept iff byte j & 3 of r[(j >> 2) & 3] >= thr; the call
//   fills four mask bytes at once (one 32-bit store); BM * (BN / 16) calls per tile (a quarter).
template <int BM, int BN, int NT, int kParts>
DEVI void draw_mask_words(unsigned char* mask, int part, int tid, int n0, int m0, u32 c2, u32 offset, u32 seed_lo,
                          u32 seed_hi, u32 drop_thr, bool bytes) {
  if (bytes) {
    constexpr int kCalls = BM * (BN / 16);
    const u32 t2 = drop_thr * 0x00010001u;
    u32* mask32 = reinterpret_cast<u32*>(mask);
    if constexpr (kCalls >= NT * kParts) {
      static_assert(kCalls % (NT * kParts) == 0, "mask calls per thread");
      constexpr int kPer = kCalls / (NT * kParts);
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        const int idx = tid + (part * kPer + i) * NT;
        const int r = idx / (BN / 16);
        const int q16 = idx % (BN / 16);
        const uint4 x = philox((u32)(n0 >> 4) + q16, (u32)(m0 + r), c2, offset, seed_lo, seed_hi);
        mask32[idx] = keep_nibble_bytes(x.x, t2) | (keep_nibble_bytes(x.y, t2) << 8) |
                      (keep_nibble_bytes(x.z, t2) << 16) | (keep_nibble_bytes(x.w, t2) << 24);
      }
    } else {
      static_assert(kParts == 1 && NT % kCalls == 0, "fewer mask calls than threads: one part");
      if (tid < kCalls) {
        const int r = tid / (BN / 16);
        const int q16 = tid % (BN / 16);
        const uint4 x = philox((u32)(n0 >> 4) + q16, (u32)(m0 + r), c2, offset, seed_lo, seed_hi);
        mask32[tid] = keep_nibble_bytes(x.x, t2) | (keep_nibble_bytes(x.y, t2) << 8) |
                      (keep_nibble_bytes(x.z, t2) << 16) | (keep_nibble_bytes(x.w, t2) << 24);
      }
    }
  } else {
    constexpr int kCalls = BM * (BN / 4);
    static_assert(kCalls % (NT * kParts) == 0, "mask words per thread");
    constexpr int kPer = kCalls / (NT * kParts);
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int idx = tid + (part * kPer + i) * NT;
      const int r = idx / (BN / 4);
      const int q4 = idx % (BN / 4);
      const uint4 x = philox((u32)(n0 >> 2) + q4, (u32)(m0 + r), c2, offset, seed_lo, seed_hi);
      mask[idx] = (unsigned char)((x.x >= drop_thr) | ((x.y >= drop_thr) << 1) | ((x.z >= drop_thr) << 2) |
                                  ((x.w >= drop_thr) << 3));
    }
  }
}

// P, dropout and dS of this thread's slice of the tile, packed to 16-bit pairs along the queries (the A fragments of
// the dV and dK products and the dS^T store): pk the dropped P without the keep scale (the callers' dV epilogues apply
// it), ds16 dS. s and dp hold the S^T and dP^T accumulators as NBM groups of four (queries j * 8 + 2t (+1), keys
// key0 + g (+8)); buffer buf of sLse, sDsum and mask holds the tile's staged LSE, D and kept bits. With kMask (tiles
// crossing the causal diagonal) key kr is hidden from query qc iff kr - qc > lim = m0 - n0 + offset, which lies in
// (-BM, BN - 1) on such tiles (an int compare per element).
template <bool kBf16, bool kMask, bool kDropout, int BM, int BN, int NBM>
DEVI void bwd_elementwise(const float* s, const float* dp, const float* sLse, const float* sDsum,
                          const unsigned char* mask, int buf, int key0, int g, int t, int lim, float sl2, float ks,
                          u32 (&pk)[NBM][2], u32 (&ds16)[NBM][2]) {
#pragma unroll
  for (int j = 0; j < NBM; ++j) {
    // the thread's two query columns: LSE * log2(e) (+inf when every key of the row is masked, so that
    // P = exp2(-inf) = 0) and D
    const float2 lse = *reinterpret_cast<const float2*>(sLse + buf * BM + j * 8 + 2 * t);
    const float2 dsum = *reinterpret_cast<const float2*>(sDsum + buf * BM + j * 8 + 2 * t);
    const float l2[2] = {lse.x == NEG_INF ? POS_INF : lse.x * LOG2E_F, lse.y == NEG_INF ? POS_INF : lse.y * LOG2E_F};
    const float dd[2] = {dsum.x, dsum.y};
    float pdv[4], dsv[4];
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int qc = j * 8 + 2 * t + (e & 1);      // query within the tile
      const int kr = key0 + g + (e >= 2 ? 8 : 0);  // key within the tile
      // The exponent is clamped at 0 (P <= 1, as it is for every real key): keys past Lk are zero-filled, S = 0
      // there, and exp2(-LSE) could overflow to inf (inf * 0 = NaN in dS K); their P is otherwise harmless (V and K
      // rows are zero, their dK and dV are not stored). (Masking them per element instead cost 15-20%:
      // KERNEL_NOTES.md, training v3.)
      float pv = fast_exp2(fminf(s[4 * j + e] * sl2 - l2[e & 1], 0.f));
      if (kMask && kr - qc > lim) pv = 0.f;
      float pd = pv, dpd = dp[4 * j + e];
      if (kDropout) {
        const bool keep = (mask[buf * BM * (BN / 4) + qc * (BN / 4) + (kr >> 2)] >> (kr & 3)) & 1;
        pd = keep ? pv : 0.f;  // the keep scale is applied to dV in the epilogue (one multiply per element fewer)
        dpd = keep ? dpd * ks : 0.f;
      }
      pdv[e] = pd;
      dsv[e] = pv * (dpd - dd[e & 1]);
    }
    pk[j][0] = pack2<kBf16>(pdv[0], pdv[1]);
    pk[j][1] = pack2<kBf16>(pdv[2], pdv[3]);
    ds16[j][0] = pack2<kBf16>(dsv[0], dsv[1]);
    ds16[j][1] = pack2<kBf16>(dsv[2], dsv[3]);
  }
}
