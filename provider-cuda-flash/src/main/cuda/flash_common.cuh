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
  i64 o_accum, lse_accum;       // split-KV workspace: fp32 [splits][B*Hq][Lq][E] followed by fp32 [splits][B*Hq][Lq]
                                // (partial LSEs); u32 merge counters [B*Hq][m-blocks], zero before the launch (the
                                // _ws decode kernels: 4 per (m-block, batch, head) unit and 2 more, see flash_fwd.cu)
  i64 q_batch_stride, q_head_stride, q_row_stride;  // element strides; the head dim has stride 1
  i64 k_batch_stride, k_head_stride, k_row_stride;
  i64 v_batch_stride, v_head_stride, v_row_stride;
  i64 o_batch_stride, o_head_stride, o_row_stride;
  i64 lse_batch_stride, lse_head_stride, lse_row_stride;
  i64 batch, heads, kv_group;   // B, Hq, Hq / Hkv
  i64 seqlen_q, seqlen_k, head_dim;
  i64 causal;                   // 0: none; 1: key j visible to query i iff j <= i + causal_offset
  i64 causal_offset;            // 0 (top-left) or Lk - Lq (bottom-right)
  i64 num_splits;               // split-KV slices (decode kernels; 1 for the plain kernels); the _ws decode kernels:
                                // workspace slots per unit
  float scale;                  // softmax scale
  float scale_log2;             // scale * log2(e)
  i64 seed;                     // dropout (the _drop kernels): Philox key, k0 = low word, k1 = high word
  i64 offset;                   // Philox counter word c3
  i64 dropout_threshold;        // t: floor(p * 2^32) (WORD, compared unsigned) or min(255, round(p * 256)) (BYTE)
  float keep_scale;             // 1 / (1 - p) (WORD) or 256 / (256 - t) (BYTE)
  u32 dropout_bytes;            // dev.sdpa4j.DropoutResolution: 0 WORD (one Philox call per 4 keys), 1 BYTE (per 16)
  i64 decode_pace_ps;           // decode kernels: 0, or picoseconds between a warp's key tiles (fair-share pacing, see
                                // flash_decode in flash_fwd.cu)
  i64 decode_stagger;           // decode kernels without stealing: 0, or 1 to start each block's keys at a hashed tile
                                // of its split (see flash_decode in flash_fwd.cu)
};
static_assert(sizeof(FlashParams) == 304, "FlashDevice.FWD_PARAMS_BYTES writes this block");

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

// ---- dev.sdpa4j.Dropout's mask on one warp's 16-row score fragment (the forward's _drop kernels) ----
// The fragment is the mma.sync m16n8 accumulator layout, which is also each warp's share of a wgmma m64 accumulator:
// for lane 4g + t, s[4j + e] (j < NB) is row row_g + 8 (e >> 1), key n0 + 8j + 2t + (e & 1).
// Keep words: keep[2kk + hh] (kk < NB / 2, hh < 2) holds in the top bit of byte b whether the element of row
// row_g + 8hh at key n0 + 16kk + 2t + (b & 1) + 8 (b >> 1) is kept, i.e. s[8kk + 2hh + (b & 1) + 4 (b >> 1)]: the
// bytes in the order in which the P values pack into the 16-bit A fragment of k-step kk (dropout_keep_fragment).
struct DropoutDraw {
  u32 k0, k1;  // Philox key: the seed's low and high words
  u32 c2, c3;  // counter words: b * Hq + h, offset
  u32 thr;     // t
  DEVI DropoutDraw(const FlashParams& p, u32 bh)
      : k0((u32)p.seed), k1((u32)((u64)p.seed >> 32)), c2(bh), c3((u32)p.offset), thr((u32)p.dropout_threshold) {}
};

DEVI u32 prmt(u32 a, u32 b, u32 sel) {
  u32 r;
  asm("prmt.b32 %0, %1, %2, %3;\n" : "=r"(r) : "r"(a), "r"(b), "r"(sel));
  return r;
}

// WORD, applied in place: dropped elements of s become 0. Lanes t and t^1 hold the four keys of one Philox group
// (4 * (t / 2) .. + 3) in rows g and g + 8: the even lane draws row g, the odd lane row g + 8, and each passes the
// other the two words it needs - one Philox call per four elements.
template <int NB>
DEVI void dropout_word_apply(float* s, int row_g, int n0, int t, const DropoutDraw& d) {
  const bool odd = t & 1;
  const u32 row = (u32)(row_g + (odd ? 8 : 0));
#pragma unroll
  for (int j = 0; j < NB; ++j) {
    const int grp = (n0 + j * 8) / 4 + (t >> 1);
    const uint4 x = philox((u32)grp, row, d.c2, d.c3, d.k0, d.k1);
    // even lane: own row g is x.x, x.y; it sends x.z, x.w (row g, the odd lane's keys)
    // odd lane: own row g + 8 is x.z, x.w; it sends x.x, x.y (row g + 8, the even lane's keys)
    const u32 s0 = __shfl_xor_sync(0xffffffff, odd ? x.x : x.z, 1);
    const u32 s1 = __shfl_xor_sync(0xffffffff, odd ? x.y : x.w, 1);
    const u32 g0 = odd ? s0 : x.x, g1 = odd ? s1 : x.y;  // row g
    const u32 h0 = odd ? x.z : s0, h1 = odd ? x.w : s1;  // row g + 8
    if (g0 < d.thr) s[4 * j + 0] = 0.f;
    if (g1 < d.thr) s[4 * j + 1] = 0.f;
    if (h0 < d.thr) s[4 * j + 2] = 0.f;
    if (h1 < d.thr) s[4 * j + 3] = 0.f;
  }
}

// WORD as keep words (the same draw as dropout_word_apply), for a kernel that draws before it has the scores
template <int NB>
DEVI void dropout_word_keep(u32* keep, int row_g, int n0, int t, const DropoutDraw& d) {
  const bool odd = t & 1;
  const u32 row = (u32)(row_g + (odd ? 8 : 0));
#pragma unroll
  for (int j = 0; j < NB; ++j) {
    const int grp = (n0 + j * 8) / 4 + (t >> 1);
    const uint4 x = philox((u32)grp, row, d.c2, d.c3, d.k0, d.k1);
    const u32 s0 = __shfl_xor_sync(0xffffffff, odd ? x.x : x.z, 1);
    const u32 s1 = __shfl_xor_sync(0xffffffff, odd ? x.y : x.w, 1);
    const u32 g0 = odd ? s0 : x.x, g1 = odd ? s1 : x.y;  // row g
    const u32 h0 = odd ? x.z : s0, h1 = odd ? x.w : s1;  // row g + 8
    const int sh = (j & 1) * 16;
    const u32 kg = ((g0 >= d.thr ? 0x80u : 0u) | (g1 >= d.thr ? 0x8000u : 0u)) << sh;
    const u32 kh = ((h0 >= d.thr ? 0x80u : 0u) | (h1 >= d.thr ? 0x8000u : 0u)) << sh;
    keep[2 * (j >> 1)] = (j & 1) ? keep[2 * (j >> 1)] | kg : kg;
    keep[2 * (j >> 1) + 1] = (j & 1) ? keep[2 * (j >> 1) + 1] | kh : kh;
  }
}

// picks a[i], i < 4, without indexing a register array
DEVI u32 pick4(u32 a0, u32 a1, u32 a2, u32 a3, int i) {
  const u32 lo = (i & 1) ? a1 : a0;
  const u32 hi = (i & 1) ? a3 : a2;
  return (i & 2) ? hi : lo;
}

// BYTE as keep words: one Philox call per (row, 16 keys). The quad's four lanes draw the four calls of two 16-key
// groups x rows g, g + 8 (lane t: row g + 8 (t & 1), group 2m + (t >> 1)); each call's lane packs, for every lane u
// of the quad, the four bytes u needs (half (u & 1) of words r[u >> 1] and r[2 + (u >> 1)]: keys 2u, 2u + 1, 8 + 2u,
// 9 + 2u of the group) into one word with prmt, and three xor shuffles exchange them. A byte x is kept iff
// x >= t, i.e. iff x + (256 - t) carries out of the byte: the majority of the top bits of x, 256 - t and the sum of
// their low seven bits (no carry crosses a byte) - three instructions per four elements. Needs 1 <= t <= 255 (p > 0).
template <int NB>
DEVI void dropout_byte_keep(u32* keep, int row_g, int n0, int t, const DropoutDraw& d) {
  static_assert(NB % 4 == 0, "two 16-key groups per draw");
  const u32 c = (256u - d.thr) * 0x01010101u;
  const u32 c7 = c & 0x7f7f7f7fu;
  const u32 row = (u32)(row_g + ((t & 1) ? 8 : 0));
  const u32 grp0 = (u32)(n0 >> 4) + (u32)(t >> 1);
#pragma unroll
  for (int m = 0; m < NB / 4; ++m) {
    const uint4 x = philox(grp0 + 2 * m, row, d.c2, d.c3, d.k0, d.k1);
    u32 v[4];
#pragma unroll
    for (int dd = 0; dd < 4; ++dd) {
      const int u = t ^ dd;  // the lane this word is for
      const u32 w = prmt((u & 2) ? x.y : x.x, (u & 2) ? x.w : x.z, (u & 1) ? 0x7632u : 0x5410u);
      v[dd] = dd ? __shfl_xor_sync(0xffffffff, w, dd) : w;  // from lane t ^ dd: its call's bytes for this lane
    }
#pragma unroll
    for (int kq = 0; kq < 2; ++kq) {
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const u32 w = pick4(v[0], v[1], v[2], v[3], (hh + 2 * kq) ^ t);  // lane hh + 2kq drew (row hh, group 2m + kq)
        const u32 lo = (w & 0x7f7f7f7fu) + c7;
        u32 k;
        asm("lop3.b32 %0, %1, %2, %3, 0xE8;\n" : "=r"(k) : "r"(w), "r"(c), "r"(lo));  // majority
        keep[2 * (2 * m + kq) + hh] = k;
      }
    }
  }
}

// applies keep words keep[2kk], keep[2kk + 1] to the packed A fragment a[0..3] of k-step kk: each dropped 16-bit
// value becomes +0 (prmt's sign-replicating selectors spread each byte's top bit over its half)
DEVI void dropout_keep_fragment(u32* a, u32 kg, u32 kh) {
  a[0] &= prmt(kg, 0, 0x9988u);
  a[1] &= prmt(kh, 0, 0x9988u);
  a[2] &= prmt(kg, 0, 0xBBAAu);
  a[3] &= prmt(kh, 0, 0xBBAAu);
}
