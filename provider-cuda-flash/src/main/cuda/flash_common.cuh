// sdpa4j cuda-flash: what every flash kernel file shares (flash_fwd.cu, flash_fwd_sm90.cu, and through
// flash_bwd_common.cuh flash_bwd.cu and flash_bwd_sm90.cu): the integer types, the forward's FlashParams block that
// FlashDevice.java writes (8-byte fields, then two floats), the inline-PTX primitives (cp.async, ldmatrix, mma.sync
// m16n8k16, 16-bit packing, exp2/log2), dev.sdpa4j.Dropout's Philox4x32-10 and the swizzle of the mma.sync kernels'
// shared-memory tiles. No system headers: NVRTC compiles the kernel files with the headers packaged beside them as
// their only includes (KernelSource.headers).
#pragma once

typedef unsigned short u16;
typedef unsigned int u32;
typedef long long i64;
typedef unsigned long long u64;

struct FlashParams {
  i64 q, k, v, o, lse;          // device pointers of element 0 (lse: 0 when not wanted)
  i64 o_accum, lse_accum;       // split-KV workspace: fp32 [splits][B*Hq][Lq][E]; fp32 [splits][B*Hq][Lq] followed by
                                // u32 counters [B*Hq][m-blocks], zero before the launch
  i64 q_batch_stride, q_head_stride, q_row_stride;  // element strides; the head dim has stride 1
  i64 k_batch_stride, k_head_stride, k_row_stride;
  i64 v_batch_stride, v_head_stride, v_row_stride;
  i64 o_batch_stride, o_head_stride, o_row_stride;
  i64 lse_batch_stride, lse_head_stride, lse_row_stride;
  i64 batch, heads, kv_group;   // B, Hq, Hq / Hkv
  i64 seqlen_q, seqlen_k, head_dim;
  i64 causal;                   // 0: none; 1: key j visible to query i iff j <= i + causal_offset
  i64 causal_offset;            // 0 (top-left) or Lk - Lq (bottom-right)
  i64 num_splits;               // split-KV slices (decode kernels; 1 for the plain kernels)
  float scale;                  // softmax scale
  float scale_log2;             // scale * log2(e)
  i64 seed;                     // dropout (the _drop kernels): Philox key, k0 = low word, k1 = high word
  i64 offset;                   // Philox counter word c3
  i64 dropout_threshold;        // floor(p * 2^32), compared unsigned
  float keep_scale;             // 1 / (1 - p)
  float pad_;
};

#define DEVI __device__ __forceinline__
#define NEG_INF (-__int_as_float(0x7f800000))

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

template <int N>
DEVI void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

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

// ---- Philox4x32-10, as dev.sdpa4j.Philox4x32 (the same function as cuda-memeff's kernels) ----
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
