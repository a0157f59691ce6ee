package dev.sdpa4j.provider.cuda.memeff;

import dev.sdpa4j.DType;

/**
 * One instantiation of the forward kernel of {@code memeff_fwd.cu} and its launch shape. Mirrors the
 * {@code MEMEFF_KERNEL} table at the end of that file: the query/key head dim is padded to {@code qDim} (64, 128, 256
 * or 512), the value head dim is covered by chunks of {@code vDim} columns (64 or 128; each chunk is a separate
 * block that recomputes the scores), a block holds {@code blockM} query rows in {@code threads / 32} warps of 16 rows
 * and streams over the keys in tiles of {@code blockN} with {@code stages} K/V buffers.
 *
 * @param name    the kernel's {@code extern "C"} name, e.g. {@code memeff_fwd_f16_q128_v128}
 * @param dtype   the element type of query, key, value and output
 * @param qDim    padded query/key head dim
 * @param vDim    value columns per block
 * @param blockM  query rows per block
 * @param blockN  keys per tile
 * @param stages  K/V shared-memory buffers (2: the next tile loads while this one is used)
 */
record MemeffKernel(String name, DType dtype, int qDim, int vDim, int blockM, int blockN, int stages) {

  /** Largest head dims the kernels take. */
  static final int MAX_HEAD_DIM = 512;

  /** The kernel for a problem of these element type and head dims ({@code e, ev <= 512}). */
  static MemeffKernel select(DType dtype, long e, long ev) {
    int q = e <= 64 ? 64 : e <= 128 ? 128 : e <= 256 ? 256 : 512;
    int v = ev <= 64 ? 64 : 128;
    int bm;
    int bn;
    int st;
    String dt;
    switch (dtype) {
      case FLOAT16, BFLOAT16 -> {
        dt = dtype == DType.FLOAT16 ? "f16" : "bf16";
        bm = q <= 256 ? 64 : 32;
        bn = q <= 128 ? 64 : 32;
        st = q <= 256 ? 2 : 1;
      }
      case FLOAT32 -> {
        dt = "f32";
        bm = q == 64 ? 64 : q == 128 ? 128 : q == 256 ? 32 : 16;
        bn = q == 128 || q == 512 ? 16 : 32;
        st = q <= 128 ? 2 : 1;
      }
      default -> throw new IllegalArgumentException("no memeff kernel for " + dtype);
    }
    // 16-bit q64/v64 and q128/v128 with E and Ev exactly at the padded dims: the variant without bounds tests
    boolean full = dtype != DType.FLOAT32 && q == v && q <= 128 && e == q && ev == v;
    return new MemeffKernel("memeff_fwd_" + dt + "_q" + q + "_v" + v + (full ? "f" : ""), dtype, q, v, bm, bn, st);
  }

  /** Threads per block: one warp per 16 query rows. */
  int threads() {
    return blockM / 16 * 32;
  }

  /** Shared-memory row padding in elements (16 bytes). */
  int pad() {
    return 16 / dtype.byteSize();
  }

  /** Dynamic shared memory of the Q, K and V tiles, in bytes. */
  int tileBytes() {
    return ((blockM + stages * blockN) * (qDim + pad()) + stages * blockN * (vDim + pad())) * dtype.byteSize();
  }

  /**
   * Shared memory for staging the mask: {@code stages} buffers of {@code rows} rows of {@code blockN} mask elements
   * plus 16 bytes of padding each.
   *
   * @param rows     {@link #blockM}, or 1 when the mask broadcasts over the queries
   * @param maskSize bytes per mask element
   */
  int maskBytes(int rows, int maskSize) {
    return stages * rows * (blockN * maskSize + 16);
  }

  /** Query tiles of a sequence of {@code lq} queries. */
  long queryTiles(long lq) {
    return (lq + blockM - 1) / blockM;
  }

  /** Value-dim chunks (blocks per query tile and head) for value head dim {@code ev}. */
  long valueChunks(long ev) {
    return (ev + vDim - 1) / vDim;
  }
}
