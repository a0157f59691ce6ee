// Philox4x32-10 cost probe for dropout_cost.py (not part of the provider): the backward's round function.
#include "../src/main/cuda/flash_bwd_common.cuh"  // the shipped philox() and u32: the probe times exactly that code
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
