package dev.sdpa4j.provider.opencl;

import java.util.List;
import java.util.Optional;

/**
 * The tile sizes of one compiled kernel family, passed to the kernels as build options. A work-group of
 * {@code nty * ntx} work-items owns a tile of {@link #tileM()} rows and streams tiles of {@link #tileN()} rows of the
 * other side; each work-item computes a {@code tm x tn} micro-tile of scores.
 *
 * @param tm  rows of a work-item's score micro-tile (multiple of 4)
 * @param tn  columns of a work-item's score micro-tile (multiple of 4)
 * @param nty work-items along the tile's rows
 * @param ntx work-items along the tile's columns
 * @param bk  head-dim chunk staged in local memory for each score product
 * @param bkv rows staged per step of the probability-times-value products (a multiple of 4 dividing
 *            {@code ntx * tn})
 */
public record TileTraits(int tm, int tn, int nty, int ntx, int bk, int bkv) {
  /** The system property that overrides the choice: {@code tm,tn,nty,ntx,bk,bkv}, e.g. {@code 4,4,16,16,16,16}. */
  public static final String PROPERTY = "sdpa4j.opencl.tiles";

  /** Tiles of 64 x 64 with 256 work-items: GPUs (NVIDIA, AMD, Intel). */
  static final TileTraits GPU = new TileTraits(4, 4, 16, 16, 16, 16);
  /**
   * Tiles of 16 x 64 with 64 work-items: CPUs, where a work-group runs as one thread's loop; 16 work-items across
   * the head dim keep each one's accumulators short, which halves PoCL's build time at head dim 256.
   */
  static final TileTraits CPU = new TileTraits(4, 4, 4, 16, 16, 16);

  private static final List<TileTraits> FALLBACKS = List.of(new TileTraits(4, 4, 8, 16, 16, 16),
      new TileTraits(4, 4, 8, 8, 16, 16), new TileTraits(4, 4, 4, 8, 16, 16), new TileTraits(4, 4, 4, 4, 8, 8));

  public TileTraits {
    if (tm < 4 || tm % 4 != 0 || tn < 4 || tn % 4 != 0) {
      throw new IllegalArgumentException("tm and tn must be positive multiples of 4, got " + tm + ", " + tn);
    }
    if (nty < 1 || ntx < 1 || bk < 1 || bkv < 1) {
      throw new IllegalArgumentException("nty, ntx, bk and bkv must be >= 1");
    }
    if (bkv % 4 != 0 || (ntx * tn) % bkv != 0) {
      throw new IllegalArgumentException("bkv " + bkv + " must be a multiple of 4 and divide the tile width " + ntx * tn);
    }
  }

  /** Work-items per work-group. */
  public int workGroupSize() {
    return nty * ntx;
  }

  /** Rows of the tile a work-group owns. */
  public int tileM() {
    return nty * tm;
  }

  /** Rows of each streamed tile. */
  public int tileN() {
    return ntx * tn;
  }

  /** Local memory the kernels of this family use for head dims up to {@code dmax}, in bytes (largest kernel). */
  public long localBytes(int dmax) {
    int oc4 = (dmax + 4 * ntx - 1) / (4 * ntx);
    long areaS = (long) bk * ((tileM() + 4) + (tileN() + 4));
    long areaG = (long) bkv * oc4 * 4 * ntx;
    long ps = (long) tileM() * (tileN() + 4);
    long extra = Math.max((long) tileM() * ntx, 2L * tileN());
    return 4 * (Math.max(areaS, areaG) + ps + extra);
  }

  /** The {@code -D} options naming these tiles. */
  String buildOptions() {
    return "-DTM=" + tm + " -DTN=" + tn + " -DNTY=" + nty + " -DNTX=" + ntx + " -DBK=" + bk + " -DBKV=" + bkv;
  }

  /** Whether a device can run these tiles for head dims up to {@code dmax}. */
  boolean fits(ClDevice device, int dmax) {
    return workGroupSize() <= device.maxWorkGroup() && localBytes(dmax) <= device.localMemBytes();
  }

  /** Smaller tiles to try when a compiled kernel cannot run {@code this} work-group size, if any. */
  Optional<TileTraits> smaller(ClDevice device, int dmax) {
    return FALLBACKS.stream().filter(t -> t.workGroupSize() < workGroupSize() && t.fits(device, dmax)).findFirst();
  }

  /**
   * The tiles for {@code device} and head dims up to {@code dmax}: the {@value #PROPERTY} override if set, else
   * {@link #GPU} or {@link #CPU} by device type, else the first fallback that fits; empty when none fits.
   */
  static Optional<TileTraits> forDevice(ClDevice device, int dmax) {
    String override = System.getProperty(PROPERTY, "").trim();
    if (!override.isEmpty()) {
      TileTraits t = parse(override);
      return t.fits(device, dmax) ? Optional.of(t) : Optional.empty();
    }
    TileTraits preferred = device.isCpu() ? CPU : GPU;
    if (preferred.fits(device, dmax)) {
      return Optional.of(preferred);
    }
    return FALLBACKS.stream().filter(t -> t.fits(device, dmax)).findFirst();
  }

  /** Parses {@code tm,tn,nty,ntx,bk,bkv}. */
  static TileTraits parse(String text) {
    String[] p = text.split(",");
    if (p.length != 6) {
      throw new IllegalArgumentException(PROPERTY + " must be tm,tn,nty,ntx,bk,bkv, got '" + text + "'");
    }
    int[] v = new int[6];
    for (int i = 0; i < 6; i++) {
      v[i] = Integer.parseInt(p[i].trim());
    }
    return new TileTraits(v[0], v[1], v[2], v[3], v[4], v[5]);
  }
}
