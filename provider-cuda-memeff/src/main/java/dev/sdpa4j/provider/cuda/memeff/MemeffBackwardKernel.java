package dev.sdpa4j.provider.cuda.memeff;

import dev.sdpa4j.DType;

/**
 * One instantiation of the backward kernels of {@code memeff_bwd.cu} (a {@code memeff_bwd_dkdv_*} and a
 * {@code memeff_bwd_dq_*} kernel sharing a padded head dim) and their launch shapes. Mirrors the {@code MEMEFF_BWD}
 * lines at the end of that file: query/key and value head dims are both padded to {@code dim} (64, 128, 256 or 512),
 * each block writes {@code columns} output columns (wider head dims are split over the grid, each chunk recomputing
 * the scores). The dK/dV kernel gives each warp 16 keys of a {@code dkdvBlockN}-key tile and loops over query tiles
 * of {@code dkdvBlockM}; the dQ kernel gives each warp 16 queries of a {@code dqBlockM}-row tile and loops over key
 * tiles of {@code dqBlockN}. For fp16/bf16 with both head dims up to 128 there is also an atomic variant of the dK/dV
 * kernel ({@code memeff_bwd_dkdvq_*}, or {@code memeff_bwd_dkdvqf_*} when both head dims equal the padded dim; same
 * tiles) that adds each tile's dS K to an fp32 dQ accumulator with atomics
 * instead of running the dQ kernel, then {@code memeff_bwd_dqconv_*} scales and converts it: faster, but its bits
 * depend on the order in which blocks finish.
 *
 * @param dtype        element type of every tensor but the LSE and the mask
 * @param dim          padded head dim
 * @param columns      output columns per block (the chunk width)
 * @param dkdvBlockM   queries per iteration of the dK/dV kernel
 * @param dkdvBlockN   keys per dK/dV block
 * @param dkdvStages   query-tile buffers of the dK/dV kernel (2: the next loads while this one is used)
 * @param dqBlockM     queries per dQ block
 * @param dqBlockN     keys per iteration of the dQ kernel
 * @param dqStages     key-tile buffers of the dQ kernel
 */
record MemeffBackwardKernel(DType dtype, int dim, int columns, int dkdvBlockM, int dkdvBlockN, int dkdvStages,
                            int dqBlockM, int dqBlockN, int dqStages) {

  /** Threads of the preprocessing kernel (one warp per query row). */
  static final int PRE_THREADS = 256;

  /** The kernels for a problem of these element type and head dims ({@code e, ev <= 512}). */
  static MemeffBackwardKernel select(DType dtype, long e, long ev) {
    long m = Math.max(e, ev);
    int d = m <= 64 ? 64 : m <= 128 ? 128 : m <= 256 ? 256 : 512;
    return switch (dtype) {
      case FLOAT16, BFLOAT16 -> switch (d) {
        case 64 -> new MemeffBackwardKernel(dtype, 64, 64, 32, 64, 2, 64, 64, 2);
        case 128 -> new MemeffBackwardKernel(dtype, 128, 128, 32, 64, 2, 64, 32, 2);
        case 256 -> new MemeffBackwardKernel(dtype, 256, 128, 32, 32, 1, 32, 32, 1);
        default -> new MemeffBackwardKernel(dtype, 512, 128, 16, 32, 1, 16, 32, 1);
      };
      case FLOAT32 -> switch (d) {
        case 64 -> new MemeffBackwardKernel(dtype, 64, 64, 32, 64, 2, 64, 32, 2);
        case 128 -> new MemeffBackwardKernel(dtype, 128, 64, 32, 32, 1, 32, 32, 1);
        case 256 -> new MemeffBackwardKernel(dtype, 256, 64, 16, 32, 1, 16, 32, 1);
        default -> new MemeffBackwardKernel(dtype, 512, 64, 8, 16, 1, 16, 8, 1);
      };
      default -> throw new IllegalArgumentException("no memeff backward kernel for " + dtype);
    };
  }

  private String suffix() {
    return switch (dtype) {
      case FLOAT16 -> "f16";
      case BFLOAT16 -> "bf16";
      default -> "f32";
    };
  }

  /** {@code memeff_bwd_pre_<dtype>}: D = rowsum(dO * O) and the LSE in log2 units. */
  String preName() {
    return "memeff_bwd_pre_" + suffix();
  }

  /** {@code memeff_bwd_dkdv_<dtype>_d<dim>}. */
  String dkdvName() {
    return "memeff_bwd_dkdv_" + suffix() + "_d" + dim;
  }

  /** {@code memeff_bwd_dq_<dtype>_d<dim>}. */
  String dqName() {
    return "memeff_bwd_dq_" + suffix() + "_d" + dim;
  }

  /** Whether the atomic dK/dV/dQ kernel exists for this instantiation (fp16/bf16, padded head dim up to 128). */
  boolean atomicDq() {
    return dtype != DType.FLOAT32 && dim <= 128;
  }

  /**
   * {@code memeff_bwd_dkdvq_<dtype>_d<dim>}: dK/dV with dQ added atomically, for head dims {@code e, ev} up to
   * {@code dim}; {@code memeff_bwd_dkdvqf_<dtype>_d<dim>} (same tiles, products without bounds tests) when both equal
   * {@code dim}.
   */
  String dkdvqName(long e, long ev) {
    return (e == dim && ev == dim ? "memeff_bwd_dkdvqf_" : "memeff_bwd_dkdvq_") + suffix() + "_d" + dim;
  }

  /** {@code memeff_bwd_dqconv_<dtype>}: the fp32 dQ accumulator scaled and converted into dQ. */
  String convertName() {
    return "memeff_bwd_dqconv_" + suffix();
  }

  /** Threads per dK/dV block: one warp per 16 keys. */
  int dkdvThreads() {
    return dkdvBlockN / 16 * 32;
  }

  /** Threads per dQ block: one warp per 16 queries. */
  int dqThreads() {
    return dqBlockM / 16 * 32;
  }

  private int pitchBytes() {
    return (dim + 16 / dtype.byteSize()) * dtype.byteSize();
  }

  /** Dynamic shared memory of the dK/dV kernel: K and V tiles, staged Q and dO tiles, staged row statistics. */
  int dkdvSharedBytes() {
    return (2 * dkdvBlockN + 2 * dkdvStages * dkdvBlockM) * pitchBytes() + 2 * dkdvStages * dkdvBlockM * 4;
  }

  /** Dynamic shared memory of the atomic dK/dV/dQ kernel: the dK/dV kernel's and a 16-bit dS^T tile. */
  int dkdvqSharedBytes() {
    return dkdvSharedBytes() + dkdvBlockN * (dkdvBlockM + 16 / dtype.byteSize()) * dtype.byteSize();
  }

  /** Dynamic shared memory of the dQ kernel: Q and dO tiles, staged K and V tiles. */
  int dqSharedBytes() {
    return (2 * dqBlockM + 2 * dqStages * dqBlockN) * pitchBytes();
  }

  /** Key tiles (dK/dV blocks per batch, kv head and chunk) of {@code lk} keys. */
  long keyTiles(long lk) {
    return (lk + dkdvBlockN - 1) / dkdvBlockN;
  }

  /** Query tiles (dQ blocks per batch, head and chunk) of {@code lq} queries. */
  long queryTiles(long lq) {
    return (lq + dqBlockM - 1) / dqBlockM;
  }

  /** Column chunks of the dK/dV kernel: enough for the wider of dK ({@code e}) and dV ({@code ev}). */
  long dkdvChunks(long e, long ev) {
    return (Math.max(e, ev) + columns - 1) / columns;
  }

  /** Column chunks of the dQ kernel. */
  long dqChunks(long e) {
    return (e + columns - 1) / columns;
  }
}
