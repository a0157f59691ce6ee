// sdpa4j cuda-flash: the forward's main (training-shape) kernels for Hopper (sm_90a): wgmma + cp.async.
//
// Self-contained (no #include) so that NVRTC compiles it with no include path. The kernels take the same FlashParams
// block as flash_fwd.cu (FlashDevice.java writes it). The body is compiled only for sm_90a (wgmma needs the arch-
// specific target); for every other target (sm_80/86/89, compute_80 PTX) this file is an empty module, and
// FlashPlan runs flash_fwd.cu's mma.sync kernels there.
//
// Structure: a block owns kBlockM = 128 query rows of one (batch, head), split between two consumer warpgroups of 64
// rows. Q is loaded once into shared memory; K and V tiles of kBlockN keys stream through a kStages-deep ring of
// shared-memory stages with cp.async (every thread loads; one block barrier per key tile). Each warpgroup computes
// S = Q K^T with wgmma.mma_async m64n<kBlockN>k16 (A = Q and B = K from shared memory through matrix descriptors),
// the online softmax on the fp32 accumulators (exp2 with scale*log2(e) folded in), and O += P V with m64n<D>k16,
// A = P from registers (the accumulator layout is the A-fragment layout once packed to 16 bits) and B = V read
// MN-major (the descriptor's transpose bit). Tiles are stored as column blocks of 64 elements (128-byte rows) with
// the 16-byte chunk index XORed with (row & 7): exactly the hardware's 128-byte swizzle, so the same layout serves
// cp.async, the descriptors and the epilogue. Key tiles are visited from the last to the first; masking only on
// tiles crossing the key end or the causal diagonal; tiles wholly above the diagonal are never visited. Rows with
// every key masked give O = 0 and LSE = -inf.

#if !defined(__CUDA_ARCH__) || defined(__CUDA_ARCH_FEAT_SM90_ALL)

typedef unsigned short u16;
typedef unsigned int u32;
typedef long long i64;
typedef unsigned long long u64;

// the same layout as flash_fwd.cu's FlashParams (FlashDevice.FWD_PARAMS_BYTES)
struct FlashParams {
  i64 q, k, v, o, lse;
  i64 o_accum, lse_accum;
  i64 q_batch_stride, q_head_stride, q_row_stride;
  i64 k_batch_stride, k_head_stride, k_row_stride;
  i64 v_batch_stride, v_head_stride, v_row_stride;
  i64 o_batch_stride, o_head_stride, o_row_stride;
  i64 lse_batch_stride, lse_head_stride, lse_row_stride;
  i64 batch, heads, kv_group;
  i64 seqlen_q, seqlen_k, head_dim;
  i64 causal;
  i64 causal_offset;
  i64 num_splits;
  float scale;
  float scale_log2;
  i64 seed;
  i64 offset;
  i64 dropout_threshold;
  float keep_scale;
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

// ---- wgmma plumbing ----
// Shared-memory matrix descriptor, 128-byte swizzle: start address, leading and stride byte offsets (>> 4 each).
// K-major operands (Q, K): 8-row groups 1024 bytes apart (stride), the leading offset unused (1). MN-major (V):
// leading = distance between 64-column blocks, stride = 1024 (8 keys). Tiles start 1024-byte aligned, so the base
// offset field stays 0; a k-step inside a 128-byte row moves the start address by 32 bytes.
DEVI u64 desc_sw128(u32 addr, u32 lbo_bytes, u32 sbo_bytes) {
  return (u64)((addr & 0x3FFFF) >> 4) | ((u64)((lbo_bytes >> 4) & 0x3FFF) << 16) |
         ((u64)((sbo_bytes >> 4) & 0x3FFF) << 32) | (1ull << 62);
}
DEVI void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
DEVI void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
DEVI void wg_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory"); }
// keeps the compiler from moving accesses of wgmma registers across the fence / wait around them
template <int N>
DEVI void reg_fence(float* r) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
template <int N>
DEVI void reg_fence(u32* r) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+r"(r[i])::"memory");
}
// orders this thread's generic-proxy shared-memory writes (cp.async, st.shared) before async-proxy reads (wgmma)
DEVI void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// ---- generated by bench/gen_wgmma_sm90.py: wgmma.mma_async wrappers (m64nNk16, fp32 accumulators) ----
template <int N, bool kBf16> DEVI void wgmma_ss(float* d, u64 a, u64 b, int acc);
template <int N, bool kBf16> DEVI void wgmma_rs_tb(float* d, const u32* a, u64 b);
template <> DEVI void wgmma_ss<64, false>(float* d, u64 a, u64 b, int acc) {
  asm volatile(
      "{ .reg .pred p; setp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0; }\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(a), "l"(b), "r"(acc));
}
template <> DEVI void wgmma_ss<64, true>(float* d, u64 a, u64 b, int acc) {
  asm volatile(
      "{ .reg .pred p; setp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0; }\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(a), "l"(b), "r"(acc));
}
template <> DEVI void wgmma_ss<128, false>(float* d, u64 a, u64 b, int acc) {
  asm volatile(
      "{ .reg .pred p; setp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, 0; }\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(a), "l"(b), "r"(acc));
}
template <> DEVI void wgmma_ss<128, true>(float* d, u64 a, u64 b, int acc) {
  asm volatile(
      "{ .reg .pred p; setp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, 0; }\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(a), "l"(b), "r"(acc));
}
template <> DEVI void wgmma_rs_tb<64, false>(float* d, const u32* a, u64 b) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, 1, 1, 1, 1;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}
template <> DEVI void wgmma_rs_tb<64, true>(float* d, const u32* a, u64 b) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, 1, 1, 1, 1;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}
template <> DEVI void wgmma_rs_tb<128, false>(float* d, const u32* a, u64 b) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, 1, 1, 1, 1;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}
template <> DEVI void wgmma_rs_tb<128, true>(float* d, const u32* a, u64 b) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, 1, 1, 1, 1;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}
template <> DEVI void wgmma_rs_tb<256, false>(float* d, const u32* a, u64 b) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, {%128, %129, %130, %131}, %132, 1, 1, 1, 1;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}
template <> DEVI void wgmma_rs_tb<256, true>(float* d, const u32* a, u64 b) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, {%128, %129, %130, %131}, %132, 1, 1, 1, 1;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}
// ---- end of generated code ----

// element offset of (row, col) in a tile of kRows rows stored as 64-column blocks with the 128-byte swizzle
template <int kRows>
DEVI int swz(int row, int col) {
  return (col >> 6) * kRows * 64 + row * 64 + ((((col & 63) >> 3) ^ (row & 7)) << 3) + (col & 7);
}

// loads a kRows x kD tile (rows >= nrows zero-filled) with cp.async, kThreads threads
template <int kD, int kRows, int kThreads>
DEVI void load_tile(u32 smem, const u16* g, i64 row_stride, int nrows, int tid) {
  constexpr int kChunksPerRow = kD / 8;
  constexpr int kChunks = kRows * kChunksPerRow;
  constexpr int kStep = kThreads / kChunksPerRow;
  static_assert(kChunks % kThreads == 0 && kThreads % kChunksPerRow == 0 && kStep % 8 == 0, "tile chunks");
  const int col = (tid % kChunksPerRow) * 8;
  const int row0 = tid / kChunksPerRow;
  const u16* src = g + (i64)row0 * row_stride + col;
  const i64 step = (i64)kStep * row_stride;
  const u32 dst = smem + 2 * swz<kRows>(row0, col);
#pragma unroll
  for (int i = 0; i < kChunks / kThreads; ++i) {
    const bool pred = row0 + i * kStep < nrows;
    cp_async16(dst + i * kStep * 128, pred ? src : g, pred);
    src += step;
  }
}

// kHeadDim: 64, 128 or 256 (exact); kBlockN keys per tile; kStages K/V stages in the ring
template <int kHeadDim_, int kBlockN_, int kStages_>
struct Sm90Traits {
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kBlockM = 128;  // two consumer warpgroups of 64 rows
  static constexpr int kBlockN = kBlockN_;
  static constexpr int kStages = kStages_;
  static constexpr int kThreads = 256;
  static constexpr int kQBytes = kBlockM * kHeadDim * 2;
  static constexpr int kTileBytes = kBlockN * kHeadDim * 2;
  static constexpr int kSmemBytes = kQBytes + 2 * kStages * kTileBytes;
  static_assert(kHeadDim % 64 == 0 && kBlockN % 16 == 0 && kStages >= 2, "sm90 tile sizes");
};

template <typename T, bool kBf16>
DEVI void flash_fwd_sm90(const FlashParams& p) {
  constexpr int D = T::kHeadDim, BM = T::kBlockM, BN = T::kBlockN, S = T::kStages;
  constexpr int NS = BN / 2;  // S accumulators per thread
  constexpr int NO = D / 2;   // O accumulators per thread
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const u32 sQ = smem_u32(smem_raw);
  const u32 sK = sQ + T::kQBytes;
  const u32 sV = sK + S * T::kTileBytes;

  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int wg = warp >> 2;  // consumer warpgroup: rows wg*64 .. wg*64+63 of the block
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
  const int m0 = m_block * BM;
  const int wrow0 = m0 + wg * 64;                         // first row of this warpgroup
  const int row_g = wrow0 + (warp & 3) * 16 + g;          // this thread's rows: row_g and row_g + 8

  const u16* gQ = reinterpret_cast<const u16*>(p.q) + b * p.q_batch_stride + h * p.q_head_stride + (i64)m0 * p.q_row_stride;
  const u16* gK = reinterpret_cast<const u16*>(p.k) + b * p.k_batch_stride + hk * p.k_head_stride;
  const u16* gV = reinterpret_cast<const u16*>(p.v) + b * p.v_batch_stride + hk * p.v_head_stride;

  // key tiles to visit: n_max - 1 down to 0
  int n_max = (Lk + BN - 1) / BN;
  if (p.causal) {
    const int last_row = min(m0 + BM, Lq) - 1;
    const i64 last_key = (i64)last_row + p.causal_offset;  // keys <= last_key are visible to some row
    n_max = last_key < 0 ? 0 : (int)min((i64)n_max, (last_key + BN) / BN);
  }

  auto load_kv = [&](int i) {
    const int n0 = (n_max - 1 - i) * BN;
    const u32 st = (i % S) * T::kTileBytes;
    load_tile<D, BN, T::kThreads>(sK + st, gK + (i64)n0 * p.k_row_stride, p.k_row_stride, Lk - n0, tid);
    load_tile<D, BN, T::kThreads>(sV + st, gV + (i64)n0 * p.v_row_stride, p.v_row_stride, Lk - n0, tid);
  };
  if (n_max > 0) load_tile<D, BM, T::kThreads>(sQ, gQ, p.q_row_stride, Lq - m0, tid);
#pragma unroll
  for (int i = 0; i < S - 1; ++i) {
    if (i < n_max) load_kv(i);
    cp_async_commit();
  }

  float acc_o[NO];
#pragma unroll
  for (int i = 0; i < NO; ++i) acc_o[i] = 0.f;
  float row_max[2] = {NEG_INF, NEG_INF};
  float row_sum[2] = {0.f, 0.f};

  // a negative scale is applied as |scale| to negated scores, so that the running maximum stays a maximum
  const float sl2 = fabsf(p.scale_log2);
  const bool negate = p.scale_log2 < 0.f;
  // descriptors of this warpgroup's Q rows, of K and V stage 0
  const u64 dQ = desc_sw128(sQ + wg * 64 * 128, 16, 1024);
  const u64 dK = desc_sw128(sK, 16, 1024);
  const u64 dV = desc_sw128(sV, BN * 128, 1024);

  for (int i = 0; i < n_max; ++i) {
    // tile i has landed (this thread's copies), made visible to the async proxy and to every thread; every thread
    // is also done with tile i - 1, whose stage the load of tile i + S - 1 overwrites
    cp_async_wait<S - 2>();
    fence_proxy_async();
    __syncthreads();
    if (i + S - 1 < n_max) load_kv(i + S - 1);
    cp_async_commit();

    const int n0 = (n_max - 1 - i) * BN;
    const u32 st16 = (u32)((i % S) * T::kTileBytes) >> 4;  // the stage's offset in descriptor units

    // S = Q K^T
    float s[NS];
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const u32 qo = ((kk >> 2) * BM * 128 + (kk & 3) * 32) >> 4;
      const u32 ko = ((kk >> 2) * BN * 128 + (kk & 3) * 32) >> 4;
      wgmma_ss<BN, kBf16>(s, dQ + qo, dK + st16 + ko, kk > 0);
    }
    wg_commit();
    wg_wait<0>();
    reg_fence<NS>(s);

    if (negate) {
#pragma unroll
      for (int j = 0; j < NS; ++j) s[j] = -s[j];
    }
    // masking: only tiles crossing the key end or the causal diagonal (for this warpgroup's rows)
    const bool need_mask = n0 + BN > Lk || (p.causal && (i64)n0 + BN - 1 > (i64)wrow0 + p.causal_offset);
    if (need_mask) {
#pragma unroll
      for (int j = 0; j < NS / 4; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int row = row_g + (e >= 2 ? 8 : 0);
          const int col = n0 + j * 8 + 2 * t + (e & 1);
          if (col >= Lk || (p.causal && (i64)col > (i64)row + p.causal_offset)) s[4 * j + e] = NEG_INF;
        }
      }
    }

    // online softmax
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      float mx = row_max[hh];
#pragma unroll
      for (int j = 0; j < NS / 4; ++j) mx = fmaxf(mx, fmaxf(s[4 * j + 2 * hh], s[4 * j + 2 * hh + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 2));
      const float base = mx == NEG_INF ? 0.f : mx * sl2;
      const float corr = fast_exp2(row_max[hh] * sl2 - base);
      row_max[hh] = mx;
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < NS / 4; ++j) {
        const float p0 = fast_exp2(s[4 * j + 2 * hh] * sl2 - base);
        const float p1 = fast_exp2(s[4 * j + 2 * hh + 1] * sl2 - base);
        s[4 * j + 2 * hh] = p0;
        s[4 * j + 2 * hh + 1] = p1;
        sum += p0 + p1;
      }
      row_sum[hh] = row_sum[hh] * corr + sum;
#pragma unroll
      for (int d = 0; d < NO / 4; ++d) {
        acc_o[4 * d + 2 * hh] *= corr;
        acc_o[4 * d + 2 * hh + 1] *= corr;
      }
    }

    // P as 16-bit A fragments: k-step kk covers keys 16kk .. 16kk+15 (accumulator blocks 2kk, 2kk+1)
    u32 pa[BN / 16][4];
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      pa[kk][0] = pack2<kBf16>(s[8 * kk + 0], s[8 * kk + 1]);
      pa[kk][1] = pack2<kBf16>(s[8 * kk + 2], s[8 * kk + 3]);
      pa[kk][2] = pack2<kBf16>(s[8 * kk + 4], s[8 * kk + 5]);
      pa[kk][3] = pack2<kBf16>(s[8 * kk + 6], s[8 * kk + 7]);
    }

    // O += P V
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      wgmma_rs_tb<D, kBf16>(acc_o, pa[kk], dV + st16 + ((kk * 16 * 128) >> 4));
    }
    wg_commit();
    wg_wait<0>();
    reg_fence<NO>(acc_o);
  }

  // epilogue: normalise, write the LSE, stage the 16-bit output in this warpgroup's rows of the Q tile (read only by
  // this warpgroup's finished wgmmas), then 16-byte stores
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    float sum = row_sum[hh];
    sum += __shfl_xor_sync(0xffffffff, sum, 1);
    sum += __shfl_xor_sync(0xffffffff, sum, 2);
    const float inv = sum > 0.f ? 1.f / sum : 0.f;
    const float lse = sum > 0.f ? row_max[hh] * fabsf(p.scale) + fast_log2(sum) * 0.6931471805599453f : NEG_INF;
    const int row = row_g + hh * 8;
    if (row < Lq && t == 0 && p.lse != 0) {
      reinterpret_cast<float*>(p.lse)[b * p.lse_batch_stride + h * p.lse_head_stride + (i64)row * p.lse_row_stride] = lse;
    }
    const int lrow = row - m0;
#pragma unroll
    for (int d = 0; d < NO / 4; ++d) {
      const u32 v2 = pack2<kBf16>(acc_o[4 * d + 2 * hh] * inv, acc_o[4 * d + 2 * hh + 1] * inv);
      asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(sQ + 2 * swz<BM>(lrow, d * 8 + 2 * t)), "r"(v2));
    }
  }
  __syncthreads();
  u16* o = reinterpret_cast<u16*>(p.o) + b * p.o_batch_stride + h * p.o_head_stride + (i64)m0 * p.o_row_stride;
  constexpr int kCpr = D / 8;
#pragma unroll 4
  for (int c = tid; c < BM * kCpr; c += T::kThreads) {
    const int row = c / kCpr;
    const int col = (c % kCpr) * 8;
    if (m0 + row < Lq) {
      uint4 v;
      asm volatile("ld.shared.v4.b32 {%0,%1,%2,%3}, [%4];\n"
                   : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(sQ + 2 * swz<BM>(row, col)));
      *reinterpret_cast<uint4*>(o + (i64)row * p.o_row_stride + col) = v;
    }
  }
}

// ---- entry points: flash_fwd_sm90_<dtype>_d<D>; FlashPlan.HOPPER holds the same table ----
typedef Sm90Traits<64, 128, 2> H64;
typedef Sm90Traits<128, 128, 2> H128;
typedef Sm90Traits<256, 64, 2> H256;

#define FLASH_SM90_ENTRY(NAME, T, BF16)                                                         \
  extern "C" __global__ void __launch_bounds__(T::kThreads, 1) NAME(const FlashParams p) {     \
    flash_fwd_sm90<T, BF16>(p);                                                               \
  }
#define FLASH_SM90_DIM(D)                                  \
  FLASH_SM90_ENTRY(flash_fwd_sm90_f16_d##D, H##D, false)   \
  FLASH_SM90_ENTRY(flash_fwd_sm90_bf16_d##D, H##D, true)

FLASH_SM90_DIM(64)
FLASH_SM90_DIM(128)
FLASH_SM90_DIM(256)

#endif  // sm_90a (or the host pass)
