// sdpa4j cuda-flash: what the two backward kernel files share (flash_bwd.cu: mma.sync, every architecture;
// flash_bwd_sm90.cu: wgmma, sm_90a) beyond flash_common.cuh: the BwdParams block that FlashDevice.java (runBackward)
// writes, the backward's helpers (4-byte cp.async, 16-bit to float, vector reductions), and the loader and ldmatrix
// addressing of its swizzled shared-memory tiles.
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
  i64 dropout_threshold;                 // floor(p * 2^32), compared unsigned
  float scale;                           // softmax scale
  float scale_log2;                      // scale * log2(e)
  float keep_scale;                      // 1 / (1 - p)
  float pad_;
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
