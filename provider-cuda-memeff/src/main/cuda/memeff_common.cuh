// Device helpers shared by the memory-efficient attention kernels (memeff_fwd.cu, memeff_bwd.cu): integer types,
// the 16-bit storage types, exp2, cp.async, dev.sdpa4j.Dropout's Philox4x32-10, element conversions and the
// mma.sync wrappers (m16n8k16 for fp16/bf16, m16n8k8 TF32 with the 3xTF32 split for fp32).
//
// No system headers: NVRTC compiles the kernel files at run time with this header as its only include (the provider's
// KernelSource lists it); 16-bit conversions are inline PTX. Minimum architecture sm_80.
#pragma once

namespace memeff {

typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef long long int64_t;
typedef unsigned long long uint64_t;

// 16-bit storage types (raw bits)
struct f16 {
  uint16_t bits;
};
struct bf16 {
  uint16_t bits;
};

constexpr float LOG2E = 1.4426950408889634f;
#define MEMEFF_INF __int_as_float(0x7f800000)

__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async4(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }

// ---- Philox4x32-10, as dev.sdpa4j.Philox4x32 ----
__device__ __forceinline__ uint4 philox(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
#pragma unroll
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0 = __umulhi(0xD2511F53u, c0);
    uint32_t lo0 = 0xD2511F53u * c0;
    uint32_t hi1 = __umulhi(0xCD9E8D57u, c2);
    uint32_t lo1 = 0xCD9E8D57u * c2;
    uint32_t n0 = hi1 ^ c1 ^ k0;
    uint32_t n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return make_uint4(c0, c1, c2, c3);
}

// ---- element types ----
__device__ __forceinline__ float f16_to_float(uint16_t h) {
  float f;
  asm("{ .reg .b16 t; mov.b16 t, %1; cvt.f32.f16 %0, t; }" : "=f"(f) : "h"(h));
  return f;
}
__device__ __forceinline__ float bf16_to_float(uint16_t h) { return __uint_as_float(static_cast<uint32_t>(h) << 16); }

template <typename T> struct Elem;
template <> struct Elem<f16> {
  static constexpr int VEC = 8;  // elements per 16 bytes
  static constexpr int PAD = 8;  // row padding in shared memory (16 bytes)
  static constexpr int KS = 16;  // k per mma
  __device__ static uint32_t pack(float lo, float hi) {
    uint32_t r;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
  }
  __device__ static f16 from(float a) {
    uint16_t h;
    asm("{ .reg .b16 t; cvt.rn.f16.f32 t, %1; mov.b16 %0, t; }" : "=h"(h) : "f"(a));
    return f16{h};
  }
  __device__ static float to(f16 a) { return f16_to_float(a.bits); }
};
template <> struct Elem<bf16> {
  static constexpr int VEC = 8;
  static constexpr int PAD = 8;
  static constexpr int KS = 16;
  __device__ static uint32_t pack(float lo, float hi) {
    uint32_t r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
  }
  __device__ static bf16 from(float a) { return bf16{static_cast<uint16_t>(pack(a, 0.f) & 0xFFFFu)}; }
  __device__ static float to(bf16 a) { return bf16_to_float(a.bits); }
};
template <> struct Elem<float> {
  static constexpr int VEC = 4;
  static constexpr int PAD = 4;
  static constexpr int KS = 8;
  __device__ static float from(float a) { return a; }
  __device__ static float to(float a) { return a; }
};

// ---- tensor-core products ----
template <typename T> __device__ __forceinline__ void mma16816(float* c, const uint32_t* a, const uint32_t* b);
template <> __device__ __forceinline__ void mma16816<f16>(float* c, const uint32_t* a, const uint32_t* b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
template <> __device__ __forceinline__ void mma16816<bf16>(float* c, const uint32_t* a, const uint32_t* b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
// Not volatile: a pure function of its operands, so the compiler may interleave independent accumulator chains.
__device__ __forceinline__ void mma1688_tf32(float* c, const uint32_t* a, const uint32_t* b) {
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
// x = big + small, big = x truncated to TF32, small = x - big exactly (the tensor cores read its top 19 bits)
__device__ __forceinline__ void split_tf32(uint32_t x, uint32_t& big, uint32_t& small) {
  big = x & 0xFFFFE000u;
  small = __float_as_uint(__uint_as_float(x) - __uint_as_float(big));
}

}  // namespace memeff
