/*
 * sdpa4j: FlashAttention-2-shaped scaled dot-product attention for any OpenCL 1.2+ device.
 *
 * A work-group owns a tile of TILE_M rows (query rows in attn_fwd and attn_bwd_dq, key rows in attn_bwd_dkdv) and
 * streams tiles of TILE_N rows of the other side through local memory. Scores are kept in base-2 units
 * (scale * log2(e) folded in), softmax is online (running max and sum), every product accumulates in fp32, and
 * every reduction runs in a fixed order, so results are bit-reproducible. Tensors are read and written through
 * element strides (offset + b*s0 + h*s1 + row*s2 + col*s3), so any strided view works with no copy.
 *
 * Build options, all required (the host chooses them from device queries):
 *   STORAGE   element type of q, k, v, o and the gradients: 0 fp32, 1 fp16, 2 bf16
 *   HAS_FP16  1 when the device has cl_khr_fp16 (fp16 converts natively), else 0 (vload_half / vstore_half)
 *   TM, TN    rows and columns of a work-item's score micro-tile; multiples of 4
 *   NTY, NTX  work-items along the tile's rows and columns; a work-group has NTY * NTX work-items
 *   BK        head-dim chunk staged in local memory for each score product
 *   BKV       rows staged per step of the P * V-like products
 *   DMAX      largest head dim (E and Ev) this program serves
 *
 * Dropout reproduces dev.sdpa4j.Dropout bit for bit: Philox4x32-10 of the counter (j >> 2, i, b * Hq + h, offset)
 * under the key (seed low, seed high); element (i, j) is kept iff word (j & 3) >= threshold.
 */
#if HAS_FP16
#pragma OPENCL EXTENSION cl_khr_fp16 : enable
#endif

#define WG (NTY * NTX)
#define TILE_M (NTY * TM)
#define TILE_N (NTX * TN)
#define OC4 ((DMAX + 4 * NTX - 1) / (4 * NTX))
#define OC (OC4 * 4)
#define DPAD (OC4 * 4 * NTX)
#define XS_STRIDE (TILE_M + 4)
#define YS_STRIDE (TILE_N + 4)
#define PS_STRIDE (TILE_N + 4)
#define AREA_S (BK * (XS_STRIDE + YS_STRIDE))
#define AREA_G (BKV * DPAD)
#define AREA ((AREA_S) > (AREA_G) ? (AREA_S) : (AREA_G))
#define LOG2E 1.4426950408889634f
#define LN2 0.6931471805599453f

#if (TM % 4) != 0 || (TN % 4) != 0 || (BKV % 4) != 0
#error "TM, TN and BKV must be multiples of 4"
#endif

/* The head-dim column of a work-item's output accumulator element c: float4 chunks of 4 * NTX columns. */
#define OUT_COL(c, tx) (((c) >> 2) * (4 * NTX) + (tx) * 4 + ((c) & 3))

/* ---- storage types ---- */
#if STORAGE == 0
typedef float store_t;
inline float ldx(__global const float* p, long i) { return p[i]; }
inline void stx(__global float* p, long i, float v) { p[i] = v; }
#elif STORAGE == 1
typedef half store_t;
#if HAS_FP16
inline float ldx(__global const half* p, long i) { return convert_float(p[i]); }
inline void stx(__global half* p, long i, float v) { p[i] = convert_half_rte(v); }
#else
inline float ldx(__global const half* p, long i) { return vload_half((size_t) i, p); }
inline void stx(__global half* p, long i, float v) { vstore_half_rte(v, (size_t) i, p); }
#endif
#elif STORAGE == 2
typedef ushort store_t;
inline float ldx(__global const ushort* p, long i) { return as_float(((uint) p[i]) << 16); }
inline void stx(__global ushort* p, long i, float v) {
  uint bits = as_uint(v);
  p[i] = isnan(v) ? (ushort) ((bits >> 16) | 0x40u) : (ushort) ((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}
#else
#error "STORAGE must be 0 (fp32), 1 (fp16) or 2 (bf16)"
#endif

/* mask_kind: 0 none, 1 boolean (uchar, non-zero takes part), 2 additive fp32, 3 additive in the storage type */
inline float mask_add(__global const uchar* m, int kind, long idx) {
  if (kind == 1) {
    return m[idx] != 0 ? 0.0f : -INFINITY;
  }
  if (kind == 2) {
    return ((__global const float*) m)[idx];
  }
  return ldx((__global const store_t*) m, idx);
}

/* Philox4x32-10, as dev.sdpa4j.Philox4x32. */
inline uint4 philox(uint4 c, uint k0, uint k1) {
  for (int r = 0; r < 10; r++) {
    uint hi0 = mul_hi(0xD2511F53u, c.x);
    uint lo0 = 0xD2511F53u * c.x;
    uint hi1 = mul_hi(0xCD9E8D57u, c.z);
    uint lo1 = 0xCD9E8D57u * c.z;
    c = (uint4) (hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0);
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c;
}

/*
 * acc[TM][TN] = X[x0 + ty*TM + i, :D] . Y[y0 + tx*TN + c, :D], staging BK-wide head-dim chunks of both tiles in
 * local memory (transposed, so each work-item reads float4s). Rows at or past xn / yn read as zero.
 */
inline void dot_tile(float acc[TM][TN],
    __global const store_t* X, long xb, long xrs, long xcs, int x0, int xn,
    __global const store_t* Y, long yb, long yrs, long ycs, int y0, int yn,
    int D, __local float* stage, int lid, int ty, int tx) {
  __local float* xs = stage;
  __local float* ys = stage + BK * XS_STRIDE;
  __local const float4* xs4 = (__local const float4*) xs;
  __local const float4* ys4 = (__local const float4*) ys;
#pragma unroll
  for (int i = 0; i < TM; i++) {
#pragma unroll
    for (int c = 0; c < TN; c++) {
      acc[i][c] = 0.0f;
    }
  }
  for (int d0 = 0; d0 < D; d0 += BK) {
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int t = lid; t < TILE_M * BK; t += WG) {
      int r = t / BK;
      int d = t % BK;
      int row = x0 + r;
      int dd = d0 + d;
      xs[d * XS_STRIDE + r] = (row < xn && dd < D) ? ldx(X, xb + row * xrs + dd * xcs) : 0.0f;
    }
    for (int t = lid; t < TILE_N * BK; t += WG) {
      int r = t / BK;
      int d = t % BK;
      int row = y0 + r;
      int dd = d0 + d;
      ys[d * YS_STRIDE + r] = (row < yn && dd < D) ? ldx(Y, yb + row * yrs + dd * ycs) : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
    for (int d = 0; d < BK; d++) {
      float a[TM];
      float b[TN];
#pragma unroll
      for (int i = 0; i < TM; i += 4) {
        float4 v = xs4[(d * XS_STRIDE + ty * TM + i) / 4];
        a[i] = v.x;
        a[i + 1] = v.y;
        a[i + 2] = v.z;
        a[i + 3] = v.w;
      }
#pragma unroll
      for (int c = 0; c < TN; c += 4) {
        float4 v = ys4[(d * YS_STRIDE + tx * TN + c) / 4];
        b[c] = v.x;
        b[c + 1] = v.y;
        b[c + 2] = v.z;
        b[c + 3] = v.w;
      }
#pragma unroll
      for (int i = 0; i < TM; i++) {
#pragma unroll
        for (int c = 0; c < TN; c++) {
          acc[i][c] = fma(a[i], b[c], acc[i][c]);
        }
      }
    }
  }
}

/*
 * o[i][c] += sum_k ps[ty*TM + i, k] * G[g0 + k, OUT_COL(c, tx)] for k < TILE_N, staging BKV rows of G at a time;
 * each work-item reads float4s of P (4 keys) and of G (4 columns). Columns at or past D and rows at or past gn
 * read as zero.
 */
inline void pv_tile(float o[TM][OC], __local const float* ps,
    __global const store_t* G, long gb, long grs, long gcs, int g0, int gn, int D,
    __local float* stage, int lid, int ty, int tx) {
  __local const float4* st4 = (__local const float4*) stage;
  __local const float4* ps4 = (__local const float4*) ps;
  int oc4 = (D + 4 * NTX - 1) / (4 * NTX);
  int dp = oc4 * 4 * NTX;
  for (int k0 = 0; k0 < TILE_N; k0 += BKV) {
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int t = lid; t < BKV * dp; t += WG) {
      int k = t / dp;
      int col = t - k * dp;
      int row = g0 + k0 + k;
      stage[k * DPAD + col] = (row < gn && col < D) ? ldx(G, gb + row * grs + col * gcs) : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int k = 0; k < BKV; k += 4) {
      float4 p4[TM];
#pragma unroll
      for (int i = 0; i < TM; i++) {
        p4[i] = ps4[((ty * TM + i) * PS_STRIDE + k0 + k) / 4];
      }
#pragma unroll
      for (int kk = 0; kk < 4; kk++) {
#pragma unroll
        for (int c4 = 0; c4 < OC4; c4++) {
          if (c4 < oc4) {
            float4 g = st4[((k + kk) * DPAD + c4 * 4 * NTX + tx * 4) / 4];
#pragma unroll
            for (int i = 0; i < TM; i++) {
              float p = kk == 0 ? p4[i].x : kk == 1 ? p4[i].y : kk == 2 ? p4[i].z : p4[i].w;
              o[i][c4 * 4] = fma(p, g.x, o[i][c4 * 4]);
              o[i][c4 * 4 + 1] = fma(p, g.y, o[i][c4 * 4 + 1]);
              o[i][c4 * 4 + 2] = fma(p, g.z, o[i][c4 * 4 + 2]);
              o[i][c4 * 4 + 3] = fma(p, g.w, o[i][c4 * 4 + 3]);
            }
          }
        }
      }
    }
  }
}

/* Writes a TM x TN micro-tile to the work-group's P tile (row-major, PS_STRIDE). */
inline void put_tile(__local float* ps, float t[TM][TN], int ty, int tx) {
  __local float4* ps4 = (__local float4*) ps;
#pragma unroll
  for (int i = 0; i < TM; i++) {
#pragma unroll
    for (int c = 0; c < TN; c += 4) {
      ps4[((ty * TM + i) * PS_STRIDE + tx * TN + c) / 4] = (float4) (t[i][c], t[i][c + 1], t[i][c + 2], t[i][c + 3]);
    }
  }
}

/* The causal limit of key blocks for query rows [m0, m0 + TILE_M): keys below the returned bound can take part. */
inline int causal_key_end(int causal, long causal_off, int m0, int Lk) {
  if (!causal) {
    return Lk;
  }
  long lim = (long) m0 + TILE_M + causal_off;
  return (int) clamp(lim, 0L, (long) Lk);
}

/*
 * Forward: O = softmax(scale * Q K^T + mask) V (dropout on the normalised probabilities), LSE in natural log.
 * Grid: (ceil(Lq / TILE_M) * WG, Hq, B), work-group (WG, 1, 1).
 */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void attn_fwd(
    __global const store_t* q, long q_off, long4 q_st,
    __global const store_t* k, long k_off, long4 k_st,
    __global const store_t* v, long v_off, long4 v_st,
    __global store_t* o, long o_off, long4 o_st,
    __global float* lse, long lse_off, long4 lse_st, int has_lse,
    __global const uchar* mask, long mask_off, long4 mask_st, int mask_kind,
    int Lq, int Lk, int E, int Ev, int Hq, int group,
    int causal, long causal_off, float scale_log2,
    int drop, uint drop_thresh, float keep_scale, uint seed_k0, uint seed_k1, uint seed_c3) {
  __local float4 stage4[AREA / 4];
  __local float4 ps4[TILE_M * PS_STRIDE / 4];
  __local float red[TILE_M * NTX];
  __local float* stage = (__local float*) stage4;
  __local float* ps = (__local float*) ps4;

  int lid = get_local_id(0);
  int ty = lid / NTX;
  int tx = lid % NTX;
  int m0 = get_group_id(0) * TILE_M;
  int h = get_group_id(1);
  int b = get_group_id(2);
  int hk = h / group;
  long qb = q_off + b * q_st.s0 + h * q_st.s1;
  long kb = k_off + b * k_st.s0 + hk * k_st.s1;
  long vb = v_off + b * v_st.s0 + hk * v_st.s1;
  long mb = mask_off + b * mask_st.s0 + h * mask_st.s1;
  uint bh = (uint) (b * Hq + h);

  float m[TM];
  float l[TM];
  float acc[TM][OC];
#pragma unroll
  for (int i = 0; i < TM; i++) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
#pragma unroll
    for (int c = 0; c < OC; c++) {
      acc[i][c] = 0.0f;
    }
  }

  int n_end = causal_key_end(causal, causal_off, m0, Lk);
  for (int n0 = 0; n0 < n_end; n0 += TILE_N) {
    float s[TM][TN];
    dot_tile(s, q, qb, q_st.s2, q_st.s3, m0, Lq, k, kb, k_st.s2, k_st.s3, n0, Lk, E, stage, lid, ty, tx);
#pragma unroll
    for (int i = 0; i < TM; i++) {
      int row = m0 + ty * TM + i;
      float mx = -INFINITY;
#pragma unroll
      for (int c = 0; c < TN; c++) {
        int col = n0 + tx * TN + c;
        bool ok = col < Lk && row < Lq && !(causal && (long) col > (long) row + causal_off);
        float x = s[i][c] * scale_log2;
        if (ok && mask_kind != 0) {
          x += mask_add(mask, mask_kind, mb + row * mask_st.s2 + col * mask_st.s3) * LOG2E;
        }
        s[i][c] = ok ? x : -INFINITY;
        mx = fmax(mx, s[i][c]);
      }
      red[(ty * TM + i) * NTX + tx] = mx;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
    for (int i = 0; i < TM; i++) {
      float mn = m[i];
      for (int t = 0; t < NTX; t++) {
        mn = fmax(mn, red[(ty * TM + i) * NTX + t]);
      }
      float msafe = mn == -INFINITY ? 0.0f : mn;
      float alpha = exp2(m[i] - msafe);
      m[i] = mn;
      l[i] *= alpha;
#pragma unroll
      for (int c = 0; c < OC; c++) {
        acc[i][c] *= alpha;
      }
#pragma unroll
      for (int c = 0; c < TN; c++) {
        float p = exp2(s[i][c] - msafe);
        l[i] += p;
        s[i][c] = p;
      }
    }
    if (drop) {
#pragma unroll
      for (int i = 0; i < TM; i++) {
        uint row = (uint) (m0 + ty * TM + i);
#pragma unroll
        for (int c = 0; c < TN; c += 4) {
          uint col = (uint) (n0 + tx * TN + c);
          uint4 r = philox((uint4) (col >> 2, row, bh, seed_c3), seed_k0, seed_k1);
          s[i][c] = r.x >= drop_thresh ? s[i][c] * keep_scale : 0.0f;
          s[i][c + 1] = r.y >= drop_thresh ? s[i][c + 1] * keep_scale : 0.0f;
          s[i][c + 2] = r.z >= drop_thresh ? s[i][c + 2] * keep_scale : 0.0f;
          s[i][c + 3] = r.w >= drop_thresh ? s[i][c + 3] * keep_scale : 0.0f;
        }
      }
    }
    put_tile(ps, s, ty, tx);
    pv_tile(acc, ps, v, vb, v_st.s2, v_st.s3, n0, Lk, Ev, stage, lid, ty, tx);
  }

#pragma unroll
  for (int i = 0; i < TM; i++) {
    red[(ty * TM + i) * NTX + tx] = l[i];
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  long ob = o_off + b * o_st.s0 + h * o_st.s1;
#pragma unroll
  for (int i = 0; i < TM; i++) {
    int row = m0 + ty * TM + i;
    float sum = 0.0f;
    for (int t = 0; t < NTX; t++) {
      sum += red[(ty * TM + i) * NTX + t];
    }
    if (row < Lq) {
#pragma unroll
      for (int c = 0; c < OC; c++) {
        int col = OUT_COL(c, tx);
        if (col < Ev) {
          stx(o, ob + row * o_st.s2 + col * o_st.s3, sum > 0.0f ? acc[i][c] / sum : 0.0f);
        }
      }
      if (has_lse && tx == 0) {
        lse[lse_off + b * lse_st.s0 + h * lse_st.s1 + row * lse_st.s2] =
            sum > 0.0f ? (m[i] + log2(sum)) * LN2 : -INFINITY;
      }
    }
  }
}

/*
 * Backward preprocessing: dsum[b, h, i] = sum_e dO[b, h, i, e] * O[b, h, i, e] (contiguous fp32 [B, Hq, Lq]).
 * Grid: (>= Lq, Hq, B).
 */
__kernel void attn_bwd_pre(
    __global const store_t* o, long o_off, long4 o_st,
    __global const store_t* dout, long do_off, long4 do_st,
    __global float* dsum, int Lq, int Ev, int Hq) {
  int i = get_global_id(0);
  int h = get_global_id(1);
  int b = get_global_id(2);
  if (i >= Lq) {
    return;
  }
  long ob = o_off + b * o_st.s0 + h * o_st.s1 + i * o_st.s2;
  long db = do_off + b * do_st.s0 + h * do_st.s1 + i * do_st.s2;
  float acc = 0.0f;
  for (int e = 0; e < Ev; e++) {
    acc = fma(ldx(o, ob + e * o_st.s3), ldx(dout, db + e * do_st.s3), acc);
  }
  dsum[((long) b * Hq + h) * Lq + i] = acc;
}

/*
 * Backward dK, dV: a work-group owns TILE_M keys of one key/value head and loops over every query head of its
 * group and every query tile, recomputing P from the LSE (no atomics: the group sum runs in a fixed order).
 * Grid: (ceil(Lk / TILE_M) * WG, Hkv, B), work-group (WG, 1, 1).
 */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void attn_bwd_dkdv(
    __global const store_t* q, long q_off, long4 q_st,
    __global const store_t* k, long k_off, long4 k_st,
    __global const store_t* v, long v_off, long4 v_st,
    __global const store_t* dout, long do_off, long4 do_st,
    __global const float* lse, long lse_off, long4 lse_st,
    __global const float* dsum,
    __global store_t* dk, long dk_off, long4 dk_st,
    __global store_t* dv, long dv_off, long4 dv_st,
    __global const uchar* mask, long mask_off, long4 mask_st, int mask_kind,
    int Lq, int Lk, int E, int Ev, int Hq, int group,
    int causal, long causal_off, float scale_log2, float scale,
    int drop, uint drop_thresh, float keep_scale, uint seed_k0, uint seed_k1, uint seed_c3) {
  __local float4 stage4[AREA / 4];
  __local float4 ps4[TILE_M * PS_STRIDE / 4];
  __local float colv[2 * TILE_N];
  __local float* stage = (__local float*) stage4;
  __local float* ps = (__local float*) ps4;

  int lid = get_local_id(0);
  int ty = lid / NTX;
  int tx = lid % NTX;
  int j0 = get_group_id(0) * TILE_M;
  int hk = get_group_id(1);
  int b = get_group_id(2);
  long kb = k_off + b * k_st.s0 + hk * k_st.s1;
  long vb = v_off + b * v_st.s0 + hk * v_st.s1;

  float adk[TM][OC];
  float adv[TM][OC];
#pragma unroll
  for (int i = 0; i < TM; i++) {
#pragma unroll
    for (int c = 0; c < OC; c++) {
      adk[i][c] = 0.0f;
      adv[i][c] = 0.0f;
    }
  }

  int i_start = 0;
  if (causal) {
    long first = (long) j0 - causal_off;
    i_start = first <= 0 ? 0 : (int) (min(first, (long) Lq) / TILE_N * TILE_N);
  }
  for (int g = 0; g < group; g++) {
    int h = hk * group + g;
    long qb = q_off + b * q_st.s0 + h * q_st.s1;
    long dob = do_off + b * do_st.s0 + h * do_st.s1;
    long lb = lse_off + b * lse_st.s0 + h * lse_st.s1;
    long mb = mask_off + b * mask_st.s0 + h * mask_st.s1;
    __global const float* dsh = dsum + ((long) b * Hq + h) * Lq;
    uint bh = (uint) (b * Hq + h);
    for (int i0 = i_start; i0 < Lq; i0 += TILE_N) {
      for (int t = lid; t < TILE_N; t += WG) {
        int i = i0 + t;
        colv[t] = i < Lq ? lse[lb + i * lse_st.s2] * LOG2E : -INFINITY;
        colv[TILE_N + t] = i < Lq ? dsh[i] : 0.0f;
      }
      float p[TM][TN];
      float z[TM][TN];
      dot_tile(p, k, kb, k_st.s2, k_st.s3, j0, Lk, q, qb, q_st.s2, q_st.s3, i0, Lq, E, stage, lid, ty, tx);
#pragma unroll
      for (int i = 0; i < TM; i++) {
        int j = j0 + ty * TM + i;
#pragma unroll
        for (int c = 0; c < TN; c++) {
          int qi = i0 + tx * TN + c;
          bool ok = j < Lk && qi < Lq && !(causal && (long) j > (long) qi + causal_off);
          float x = p[i][c] * scale_log2;
          if (ok && mask_kind != 0) {
            x += mask_add(mask, mask_kind, mb + qi * mask_st.s2 + j * mask_st.s3) * LOG2E;
          }
          float lv = colv[tx * TN + c];
          p[i][c] = (ok && lv != -INFINITY) ? exp2(x - lv) : 0.0f;
          z[i][c] = 1.0f;
        }
      }
      if (drop) {
#pragma unroll
        for (int c = 0; c < TN; c++) {
          uint qi = (uint) (i0 + tx * TN + c);
#pragma unroll
          for (int i = 0; i < TM; i += 4) {
            uint j = (uint) (j0 + ty * TM + i);
            uint4 r = philox((uint4) (j >> 2, qi, bh, seed_c3), seed_k0, seed_k1);
            z[i][c] = r.x >= drop_thresh ? keep_scale : 0.0f;
            z[i + 1][c] = r.y >= drop_thresh ? keep_scale : 0.0f;
            z[i + 2][c] = r.z >= drop_thresh ? keep_scale : 0.0f;
            z[i + 3][c] = r.w >= drop_thresh ? keep_scale : 0.0f;
          }
        }
      }
      float t[TM][TN];
#pragma unroll
      for (int i = 0; i < TM; i++) {
#pragma unroll
        for (int c = 0; c < TN; c++) {
          t[i][c] = p[i][c] * z[i][c];
        }
      }
      put_tile(ps, t, ty, tx);
      pv_tile(adv, ps, dout, dob, do_st.s2, do_st.s3, i0, Lq, Ev, stage, lid, ty, tx);
      dot_tile(t, v, vb, v_st.s2, v_st.s3, j0, Lk, dout, dob, do_st.s2, do_st.s3, i0, Lq, Ev, stage, lid, ty, tx);
#pragma unroll
      for (int i = 0; i < TM; i++) {
#pragma unroll
        for (int c = 0; c < TN; c++) {
          t[i][c] = p[i][c] * (t[i][c] * z[i][c] - colv[TILE_N + tx * TN + c]);
        }
      }
      put_tile(ps, t, ty, tx);
      pv_tile(adk, ps, q, qb, q_st.s2, q_st.s3, i0, Lq, E, stage, lid, ty, tx);
    }
  }

  long dkb = dk_off + b * dk_st.s0 + hk * dk_st.s1;
  long dvb = dv_off + b * dv_st.s0 + hk * dv_st.s1;
#pragma unroll
  for (int i = 0; i < TM; i++) {
    int j = j0 + ty * TM + i;
    if (j < Lk) {
#pragma unroll
      for (int c = 0; c < OC; c++) {
        int col = OUT_COL(c, tx);
        if (col < E) {
          stx(dk, dkb + j * dk_st.s2 + col * dk_st.s3, adk[i][c] * scale);
        }
        if (col < Ev) {
          stx(dv, dvb + j * dv_st.s2 + col * dv_st.s3, adv[i][c]);
        }
      }
    }
  }
}

/*
 * Backward dQ: a work-group owns TILE_M query rows of one head and loops over the key tiles, recomputing P from
 * the LSE. Grid: (ceil(Lq / TILE_M) * WG, Hq, B), work-group (WG, 1, 1).
 */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void attn_bwd_dq(
    __global const store_t* q, long q_off, long4 q_st,
    __global const store_t* k, long k_off, long4 k_st,
    __global const store_t* v, long v_off, long4 v_st,
    __global const store_t* dout, long do_off, long4 do_st,
    __global const float* lse, long lse_off, long4 lse_st,
    __global const float* dsum,
    __global store_t* dq, long dq_off, long4 dq_st,
    __global const uchar* mask, long mask_off, long4 mask_st, int mask_kind,
    int Lq, int Lk, int E, int Ev, int Hq, int group,
    int causal, long causal_off, float scale_log2, float scale,
    int drop, uint drop_thresh, float keep_scale, uint seed_k0, uint seed_k1, uint seed_c3) {
  __local float4 stage4[AREA / 4];
  __local float4 ps4[TILE_M * PS_STRIDE / 4];
  __local float* stage = (__local float*) stage4;
  __local float* ps = (__local float*) ps4;

  int lid = get_local_id(0);
  int ty = lid / NTX;
  int tx = lid % NTX;
  int m0 = get_group_id(0) * TILE_M;
  int h = get_group_id(1);
  int b = get_group_id(2);
  int hk = h / group;
  long qb = q_off + b * q_st.s0 + h * q_st.s1;
  long kb = k_off + b * k_st.s0 + hk * k_st.s1;
  long vb = v_off + b * v_st.s0 + hk * v_st.s1;
  long dob = do_off + b * do_st.s0 + h * do_st.s1;
  long mb = mask_off + b * mask_st.s0 + h * mask_st.s1;
  uint bh = (uint) (b * Hq + h);

  float lr[TM];
  float dr[TM];
  float adq[TM][OC];
#pragma unroll
  for (int i = 0; i < TM; i++) {
    int row = m0 + ty * TM + i;
    lr[i] = row < Lq ? lse[lse_off + b * lse_st.s0 + h * lse_st.s1 + row * lse_st.s2] * LOG2E : -INFINITY;
    dr[i] = row < Lq ? dsum[((long) b * Hq + h) * Lq + row] : 0.0f;
#pragma unroll
    for (int c = 0; c < OC; c++) {
      adq[i][c] = 0.0f;
    }
  }

  int n_end = causal_key_end(causal, causal_off, m0, Lk);
  for (int n0 = 0; n0 < n_end; n0 += TILE_N) {
    float p[TM][TN];
    float dp[TM][TN];
    dot_tile(p, q, qb, q_st.s2, q_st.s3, m0, Lq, k, kb, k_st.s2, k_st.s3, n0, Lk, E, stage, lid, ty, tx);
#pragma unroll
    for (int i = 0; i < TM; i++) {
      int row = m0 + ty * TM + i;
#pragma unroll
      for (int c = 0; c < TN; c++) {
        int col = n0 + tx * TN + c;
        bool ok = col < Lk && row < Lq && !(causal && (long) col > (long) row + causal_off);
        float x = p[i][c] * scale_log2;
        if (ok && mask_kind != 0) {
          x += mask_add(mask, mask_kind, mb + row * mask_st.s2 + col * mask_st.s3) * LOG2E;
        }
        p[i][c] = (ok && lr[i] != -INFINITY) ? exp2(x - lr[i]) : 0.0f;
      }
    }
    dot_tile(dp, dout, dob, do_st.s2, do_st.s3, m0, Lq, v, vb, v_st.s2, v_st.s3, n0, Lk, Ev, stage, lid, ty, tx);
    if (drop) {
#pragma unroll
      for (int i = 0; i < TM; i++) {
        uint row = (uint) (m0 + ty * TM + i);
#pragma unroll
        for (int c = 0; c < TN; c += 4) {
          uint col = (uint) (n0 + tx * TN + c);
          uint4 r = philox((uint4) (col >> 2, row, bh, seed_c3), seed_k0, seed_k1);
          dp[i][c] = r.x >= drop_thresh ? dp[i][c] * keep_scale : 0.0f;
          dp[i][c + 1] = r.y >= drop_thresh ? dp[i][c + 1] * keep_scale : 0.0f;
          dp[i][c + 2] = r.z >= drop_thresh ? dp[i][c + 2] * keep_scale : 0.0f;
          dp[i][c + 3] = r.w >= drop_thresh ? dp[i][c + 3] * keep_scale : 0.0f;
        }
      }
    }
#pragma unroll
    for (int i = 0; i < TM; i++) {
#pragma unroll
      for (int c = 0; c < TN; c++) {
        dp[i][c] = p[i][c] * (dp[i][c] - dr[i]);
      }
    }
    put_tile(ps, dp, ty, tx);
    pv_tile(adq, ps, k, kb, k_st.s2, k_st.s3, n0, Lk, E, stage, lid, ty, tx);
  }

  long dqb = dq_off + b * dq_st.s0 + h * dq_st.s1;
#pragma unroll
  for (int i = 0; i < TM; i++) {
    int row = m0 + ty * TM + i;
    if (row < Lq) {
#pragma unroll
      for (int c = 0; c < OC; c++) {
        int col = OUT_COL(c, tx);
        if (col < E) {
          stx(dq, dqb + row * dq_st.s2 + col * dq_st.s3, adq[i][c] * scale);
        }
      }
    }
  }
}
