// sdpa4j cuda-flash: what the two backward kernel files share (flash_bwd.cu: mma.sync, every architecture;
// flash_bwd_sm90.cu: wgmma, sm_90a): the BwdParams block that FlashDevice.java (runBackward) writes, the inline-PTX
// helpers (cp.async, ldmatrix, mma.sync m16n8k16, 16-bit packing, exp2, vector reductions), dev.sdpa4j.Dropout's
// Philox4x32-10, and the swizzled shared-memory tile layout with its loader and ldmatrix addressing.
// No system headers: NVRTC compiles the kernel files with this header as their only include (KernelSource.headers).
#pragma once

typedef unsigned short u16;
typedef unsigned int u32;
typedef long long i64;

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

#define DEVI __device__ __forceinline__

template <bool B>
struct BoolC {
  static constexpr bool value = B;
};
#define LOG2E_F 1.4426950408889634f
#define POS_INF (__int_as_float(0x7f800000))
#define NEG_INF (-__int_as_float(0x7f800000))

DEVI u32 smem_u32(const void* ptr) {
  u32 r;
  asm volatile("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }\n" : "=r"(r) : "l"(ptr));
  return r;
}

DEVI void cp_async16(u32 dst, const void* src, bool pred) {
  int n = pred ? 16 : 0;  // 0: zero-fill, nothing read
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(n));
}
DEVI void cp_async4(u32 dst, const void* src, bool pred) {
  int n = pred ? 4 : 0;
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(n));
}
DEVI void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
DEVI void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }

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

template <bool kBf16>
DEVI float to_float(u16 h) {
  if (kBf16) return __uint_as_float(static_cast<u32>(h) << 16);
  float f;
  asm("{ .reg .b16 t; mov.b16 t, %1; cvt.f32.f16 %0, t; }" : "=f"(f) : "h"(h));
  return f;
}

DEVI float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
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

// ---- Philox4x32-10, as dev.sdpa4j.Philox4x32 (the same function as cuda-memeff's forward) ----
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

// element offset of (row, col) in a swizzled tile of `rows` rows stored in column blocks of KS halves
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
