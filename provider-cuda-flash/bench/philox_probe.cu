// Philox4x32-10 cost probe for dropout_cost.py (not part of the provider): the same round function as flash_bwd.cu.
typedef unsigned int u32;
__device__ __forceinline__ uint4 philox(u32 c0, u32 c1, u32 c2, u32 c3, u32 k0, u32 k1) {
#pragma unroll
  for (int r = 0; r < 10; ++r) {
    unsigned long long p0, p1;
    asm("mul.wide.u32 %0, %1, %2;\n" : "=l"(p0) : "r"(c0), "r"(0xD2511F53u));
    asm("mul.wide.u32 %0, %1, %2;\n" : "=l"(p1) : "r"(c2), "r"(0xCD9E8D57u));
    const u32 n0 = (u32)(p1 >> 32) ^ c1 ^ k0;
    const u32 n2 = (u32)(p0 >> 32) ^ c3 ^ k1;
    c0 = n0; c1 = (u32)p1; c2 = n2; c3 = (u32)p0;
    k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
  }
  return make_uint4(c0, c1, c2, c3);
}
// one call, inputs and key from memory: SASS of this minus probe_none = instructions per call
extern "C" __global__ void probe_one(const uint4* in, const uint2* key, uint4* out) {
  const uint4 c = in[threadIdx.x];
  const uint2 k = key[0];
  out[threadIdx.x] = philox(c.x, c.y, c.z, c.w, k.x, k.y);
}
extern "C" __global__ void probe_none(const uint4* in, const uint2* key, uint4* out) {
  const uint4 c = in[threadIdx.x];
  const uint2 k = key[0];
  out[threadIdx.x] = make_uint4(c.x ^ k.x, c.y ^ k.y, c.z, c.w);
}
// throughput: each thread makes n calls (counter = its index, i) and the kept-bit compare, folded into one word
struct ProbeParams { u32 n, thr, k0, k1; u32* out; };
extern "C" __global__ void probe_rate(const ProbeParams pp) {
  const u32 n = pp.n, thr = pp.thr, k0 = pp.k0, k1 = pp.k1;
  u32* out = pp.out;
  const u32 gid = blockIdx.x * blockDim.x + threadIdx.x;
  u32 acc = 0;
  for (u32 i = 0; i < n; ++i) {
    const uint4 x = philox(gid, i, 7u, 0u, k0, k1);
    acc += (x.x >= thr) | ((x.y >= thr) << 1) | ((x.z >= thr) << 2) | ((x.w >= thr) << 3);
  }
  out[gid] = acc;
}
