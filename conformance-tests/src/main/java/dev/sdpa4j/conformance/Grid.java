package dev.sdpa4j.conformance;

import dev.sdpa4j.CausalMode;
import dev.sdpa4j.DType;
import dev.sdpa4j.DropoutResolution;
import dev.sdpa4j.DropoutSeed;
import dev.sdpa4j.MaskKind;
import dev.sdpa4j.spi.Capabilities;
import dev.sdpa4j.spi.Determinism;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * The cases the kit runs, derived from what a device's {@link Capabilities} claim: only claimed features appear, and
 * every claimed feature appears. {@link Level#QUICK} varies one factor at a time around a base case (plus one case
 * combining them); {@link Level#FULL} crosses head dims and masks with many sequence-length pairs, rotating the
 * other factors.
 */
final class Grid {
  /** Above this work ({@link ForwardCase#cost()}) a case drops to one batch and few heads. */
  private static final double COST_LIMIT = 1.5e8;

  private final Capabilities caps;
  private final Level level;
  private final List<DType> dtypes;
  private final long minE;
  private final long maxE;
  private final long midE;

  Grid(Capabilities caps, Level level) {
    this.caps = caps;
    this.level = level;
    this.dtypes = caps.dtypes().stream().filter(DType::isFloatingPoint).sorted().toList();
    long m = caps.headDimMultiple();
    this.minE = ceilTo(caps.minHeadDim(), m);
    this.maxE = (caps.maxHeadDim() / m) * m;
    this.midE = legalNear(64);
  }

  /** Why no case can be made, or null: no floating-point dtype, or no head dim meets the limits. */
  String impossible() {
    if (dtypes.isEmpty()) {
      return "the capabilities list no floating-point dtype";
    }
    if (minE > maxE) {
      return "no head dim in [" + caps.minHeadDim() + ", " + caps.maxHeadDim() + "] is a multiple of "
          + caps.headDimMultiple();
    }
    return null;
  }

  List<DType> dtypes() {
    return dtypes;
  }

  long midHeadDim() {
    return midE;
  }

  long maxHeadDim() {
    return maxE;
  }

  private static long ceilTo(long v, long m) {
    return ((v + m - 1) / m) * m;
  }

  /** The legal head dim closest to {@code target}. */
  private long legalNear(long target) {
    long m = caps.headDimMultiple();
    long t = Math.max(minE, Math.min(maxE, target));
    long down = (t / m) * m;
    return down >= minE ? down : minE;
  }

  private long legalValueDim(long target) {
    long m = caps.headDimMultiple();
    long max = (caps.maxValueHeadDim() / m) * m;
    long t = Math.max(m, Math.min(max, target));
    return (t / m) * m;
  }

  private boolean claims(MaskKind k) {
    return caps.maskKinds().contains(k);
  }

  // ---- factors ----

  private List<Long> headDims() {
    TreeSet<Long> dims = new TreeSet<>(List.of(minE, midE, maxE));
    long[] extra = level == Level.QUICK ? new long[] {33}
        : new long[] {1, 2, 3, 8, 16, 31, 32, 33, 40, 48, 63, 64, 65, 80, 96, 127, 128, 129, 160, 192, 256, 512};
    for (long e : extra) {
      if (e >= minE && e <= maxE && e % caps.headDimMultiple() == 0) {
        dims.add(e);
      }
    }
    return List.copyOf(dims);
  }

  private List<long[]> lengthPairs() {
    if (level == Level.QUICK) {
      return List.of(new long[] {17, 17}, new long[] {1, 23}, new long[] {29, 11}, new long[] {11, 29});
    }
    return List.of(new long[] {1, 1}, new long[] {17, 17}, new long[] {64, 64}, new long[] {65, 65},
        new long[] {128, 128}, new long[] {129, 129}, new long[] {257, 257}, new long[] {1, 257},
        new long[] {29, 11}, new long[] {17, 64}, new long[] {64, 17}, new long[] {128, 257}, new long[] {257, 128},
        new long[] {65, 500}, new long[] {500, 65});
  }

  private List<long[]> headShapes() {
    List<long[]> h = new ArrayList<>(List.of(new long[] {2, 3, 3}, new long[] {1, 1, 1}));
    if (caps.groupedQuery()) {
      h.add(new long[] {2, 4, 2});
      h.add(new long[] {1, 6, 1});
    }
    if (level == Level.FULL) {
      h.add(new long[] {3, 8, 8});
      if (caps.groupedQuery()) {
        h.add(new long[] {2, 8, 2});
      }
    }
    return h;
  }

  /** Each claimed kind of masking, tensor masks in several broadcast shapes and types. */
  private List<ForwardCase> maskings(ForwardCase base) {
    DType t = base.dtype();
    List<ForwardCase> out = new ArrayList<>();
    if (claims(MaskKind.CAUSAL_TOP_LEFT)) {
      out.add(base.causal(CausalMode.TOP_LEFT));
    }
    if (claims(MaskKind.CAUSAL_BOTTOM_RIGHT)) {
      out.add(base.causal(CausalMode.BOTTOM_RIGHT));
    }
    List<MaskSpec.Broadcast> shapes = level == Level.QUICK
        ? List.of(MaskSpec.Broadcast.QUERY_KEY, MaskSpec.Broadcast.KEY_PADDING, MaskSpec.Broadcast.FULL)
        : List.of(MaskSpec.Broadcast.values());
    if (claims(MaskKind.BOOLEAN)) {
      for (MaskSpec.Broadcast b : shapes) {
        out.add(base.mask(MaskSpec.bool(b)));
      }
    }
    if (claims(MaskKind.ADDITIVE)) {
      List<DType> types = t == DType.FLOAT32 ? List.of(DType.FLOAT32) : List.of(DType.FLOAT32, t);
      int n = 0;
      for (MaskSpec.Broadcast b : shapes) {
        if (level == Level.QUICK) {
          out.add(base.mask(MaskSpec.additive(types.get(n++ % types.size()), b)));
        } else {
          for (DType mt : types) {
            out.add(base.mask(MaskSpec.additive(mt, b)));
          }
        }
      }
    }
    return out;
  }

  private ForwardCase base(DType t) {
    return ForwardCase.base(t, midE, caps.logSumExp());
  }

  private List<Layout> layouts() {
    List<Layout> l = new ArrayList<>(List.of(Layout.CONTIGUOUS, Layout.BLHE, Layout.PADDED));
    if (!caps.unitHeadDimStride()) {
      l.add(Layout.HEAD_DIM_STRIDED);
    }
    return l;
  }

  private List<long[]> valueDimPairs() {
    if (!caps.valueDimMayDiffer()) {
      return List.of();
    }
    long evMax = legalValueDim(caps.maxValueHeadDim());
    long evSmall = legalValueDim(16);
    List<long[]> pairs = new ArrayList<>();
    List<Long> es = level == Level.QUICK ? List.of(midE, maxE) : List.of(minE, midE, maxE);
    List<Long> evs = level == Level.QUICK ? List.of(evMax, evSmall) : List.of(evSmall, legalValueDim(64), evMax);
    for (int i = 0; i < es.size(); i++) {
      for (int j = 0; j < evs.size(); j++) {
        if ((level == Level.FULL || i == j) && !es.get(i).equals(evs.get(j))) {
          pairs.add(new long[] {es.get(i), evs.get(j)});
        }
      }
    }
    return pairs;
  }

  /** Shrinks batch and heads of an expensive case (keeping grouped-query attention if it had it). */
  private ForwardCase affordable(ForwardCase c) {
    if (c.cost() <= COST_LIMIT) {
      return c;
    }
    return c.queryHeads() != c.kvHeads() ? c.heads(1, 2, 1) : c.heads(1, 1, 1);
  }

  private static List<ForwardCase> unique(List<ForwardCase> cases) {
    Map<String, ForwardCase> byName = new LinkedHashMap<>();
    for (ForwardCase c : cases) {
      byName.putIfAbsent(c.name(), c);
    }
    return List.copyOf(byName.values());
  }

  // ---- the groups ----

  /** Accuracy of output and LSE over dtypes, head dims, lengths, heads, masks, scale, layouts. */
  List<ForwardCase> forward() {
    List<ForwardCase> cases = new ArrayList<>();
    for (DType t : dtypes) {
      ForwardCase base = base(t);
      if (level == Level.QUICK) {
        cases.add(base);
        for (long e : headDims()) {
          cases.add(base.dims(e, e));
        }
        for (long[] l : lengthPairs()) {
          cases.add(base.lengths(l[0], l[1]));
        }
        for (long[] h : headShapes()) {
          cases.add(base.heads(h[0], h[1], h[2]));
        }
        for (ForwardCase m : maskings(base.lengths(11, 29))) {
          cases.add(m);
        }
        if (claims(MaskKind.CAUSAL_TOP_LEFT)) {
          cases.add(base.lengths(29, 11).causal(CausalMode.TOP_LEFT));
        }
        if (claims(MaskKind.CAUSAL_BOTTOM_RIGHT)) {
          cases.add(base.lengths(29, 11).causal(CausalMode.BOTTOM_RIGHT));
        }
        if (caps.customScale()) {
          cases.add(base.scale(0.3));
        }
        for (Layout l : layouts()) {
          cases.add(base.layout(l));
        }
        for (long[] d : valueDimPairs()) {
          cases.add(base.dims(d[0], d[1]));
        }
        if (caps.logSumExp()) {
          cases.add(base.lse(false));
        }
        cases.add(combined(base));
      } else {
        List<Long> dims = headDims();
        List<long[]> lengths = lengthPairs();
        List<long[]> heads = headShapes();
        List<Layout> layouts = layouts();
        List<ForwardCase> maskings = new ArrayList<>();
        maskings.add(base);
        maskings.addAll(maskings(base));
        for (int i = 0; i < dims.size(); i++) {
          for (int j = 0; j < lengths.size(); j++) {
            ForwardCase c = maskings.get((i + j) % maskings.size());
            long[] h = heads.get((3 * i + j) % heads.size());
            c = c.dims(dims.get(i), dims.get(i)).lengths(lengths.get(j)[0], lengths.get(j)[1]).heads(h[0], h[1], h[2])
                .layout(layouts.get((i + 2 * j) % layouts.size()));
            if (caps.customScale() && (i + j) % 4 == 3) {
              c = c.scale(0.3);
            }
            cases.add(affordable(c));
          }
        }
        for (int m = 0; m < maskings.size(); m++) {
          for (int j = 0; j < lengths.size(); j++) {
            long[] h = heads.get((m + j) % heads.size());
            cases.add(affordable(maskings.get(m).lengths(lengths.get(j)[0], lengths.get(j)[1]).heads(h[0], h[1], h[2])
                .layout(layouts.get((m + j) % layouts.size()))));
          }
        }
        for (long[] d : valueDimPairs()) {
          for (int j = 0; j < lengths.size(); j += 3) {
            cases.add(affordable(base.dims(d[0], d[1]).lengths(lengths.get(j)[0], lengths.get(j)[1])));
          }
        }
        if (caps.customScale()) {
          cases.add(base.scale(1.0 / 3));
          cases.add(base.scale(2.5).lengths(64, 129));
        }
        if (caps.logSumExp()) {
          cases.add(base.lse(false).lengths(129, 64));
        }
        cases.add(combined(base));
      }
    }
    return unique(cases.stream().map(this::affordable).toList());
  }

  /** Every claimed factor in one case: grouped heads, Lq != Lk, [B, L, H, E], a mask, a scale, Ev != E. */
  private ForwardCase combined(ForwardCase base) {
    ForwardCase c = base.lengths(13, 37).layout(Layout.BLHE);
    if (caps.groupedQuery()) {
      c = c.heads(2, 4, 2);
    }
    List<ForwardCase> m = maskings(c);
    if (!m.isEmpty()) {
      c = m.get(m.size() - 1);
    }
    if (caps.customScale()) {
      c = c.scale(0.3);
    }
    List<long[]> d = valueDimPairs();
    if (!d.isEmpty()) {
      c = c.dims(d.get(0)[0], d.get(0)[1]);
    }
    return c;
  }

  /** Cases in which some rows have no key at all: zeros and LSE -inf. */
  List<ForwardCase> fullyMasked() {
    List<ForwardCase> cases = new ArrayList<>();
    for (DType t : dtypes) {
      ForwardCase base = base(t).lengths(29, 11);
      if (claims(MaskKind.CAUSAL_BOTTOM_RIGHT)) {
        cases.add(base.causal(CausalMode.BOTTOM_RIGHT));
        cases.add(base.lengths(37, 5).causal(CausalMode.BOTTOM_RIGHT));
      }
      if (claims(MaskKind.BOOLEAN)) {
        cases.add(base.mask(MaskSpec.bool(MaskSpec.Broadcast.QUERY_KEY).withFullyMaskedRows()));
        cases.add(base.mask(MaskSpec.bool(MaskSpec.Broadcast.KEY_PADDING).withFullyMaskedRows()));
        cases.add(base.mask(MaskSpec.bool(MaskSpec.Broadcast.KEYS).withFullyMaskedRows()));
      }
      if (claims(MaskKind.ADDITIVE)) {
        cases.add(base.mask(MaskSpec.additive(DType.FLOAT32, MaskSpec.Broadcast.FULL).withFullyMaskedRows()));
        cases.add(base.mask(MaskSpec.additive(t, MaskSpec.Broadcast.PER_HEAD).withFullyMaskedRows()));
      }
      if (level == Level.FULL && claims(MaskKind.CAUSAL_BOTTOM_RIGHT)) {
        cases.add(affordable(base.lengths(257, 64).causal(CausalMode.BOTTOM_RIGHT).layout(Layout.BLHE)));
      }
    }
    return unique(cases);
  }

  /** Dropout cases with explicit seeds and offsets (including a large offset) and with a drawn seed. */
  List<ForwardCase> dropout() {
    if (!caps.dropout()) {
      return List.of();
    }
    List<ForwardCase> cases = new ArrayList<>();
    for (DType t : dtypes) {
      ForwardCase base = base(t);
      cases.add(base.lengths(17, 23).dropout(0.2, new DropoutSeed(42, 0)));
      ForwardCase c = base.lengths(29, 11).layout(Layout.BLHE).dropout(0.5, new DropoutSeed(-7, 0xFFFF_FFF0L));
      cases.add(caps.groupedQuery() ? c.heads(2, 4, 2) : c);
      ForwardCase drawn = base.lengths(11, 29).dropout(0.3, null);
      cases.add(claims(MaskKind.CAUSAL_TOP_LEFT) ? drawn.causal(CausalMode.TOP_LEFT) : drawn);
      ForwardCase high = base.lengths(1, 37).dropout(0.9, new DropoutSeed(123456789L, 3));
      cases.add(claims(MaskKind.BOOLEAN) ? high.mask(MaskSpec.bool(MaskSpec.Broadcast.KEY_PADDING)) : high);
      if (caps.dropoutResolutions().contains(DropoutResolution.BYTE)) {
        ForwardCase bytes = base.dropoutResolution(DropoutResolution.BYTE);
        cases.add(bytes.lengths(17, 37).dropout(0.2, new DropoutSeed(42, 0)));
        ForwardCase b = bytes.lengths(29, 50).layout(Layout.BLHE).dropout(0.5, new DropoutSeed(-7, 0xFFFF_FFF0L));
        cases.add(caps.groupedQuery() ? b.heads(2, 4, 2) : b);
        ForwardCase drawnBytes = bytes.lengths(11, 45).dropout(0.1, null);
        cases.add(claims(MaskKind.CAUSAL_TOP_LEFT) ? drawnBytes.causal(CausalMode.TOP_LEFT) : drawnBytes);
        if (level == Level.FULL) {
          List<Long> dims = headDims();
          long[][] lengths = {{64, 64}, {129, 257}, {65, 500}};
          for (int n = 0; n < lengths.length; n++) {
            long e = dims.get((n + 1) % dims.size());
            cases.add(affordable(bytes.dims(e, e).lengths(lengths[n][0], lengths[n][1])
                .dropout(n == 2 ? 0.9 : 0.1, new DropoutSeed(2000L + n, 5L * n))));
          }
        }
      }
      if (level == Level.FULL) {
        List<Long> dims = headDims();
        double[] ps = {0.1, 0.5, 0.9};
        long[][] lengths = {{1, 1}, {64, 64}, {129, 257}, {257, 129}, {65, 500}};
        int n = 0;
        for (double p : ps) {
          for (long[] l : lengths) {
            long e = dims.get(n % dims.size());
            cases.add(affordable(base.dims(e, e).lengths(l[0], l[1]).dropout(p, new DropoutSeed(1000L + n, 7L * n))));
            n++;
          }
        }
      }
    }
    return unique(cases);
  }

  /** Training cases: forward, then backward against the reference gradients. */
  List<ForwardCase> backward() {
    if (!caps.backward()) {
      return List.of();
    }
    List<ForwardCase> cases = new ArrayList<>();
    for (DType t : dtypes) {
      ForwardCase base = base(t).training(true);
      cases.add(base);
      cases.add(base.dims(maxE, maxE));
      cases.add(base.dims(minE, minE).lengths(29, 11));
      cases.add(base.lengths(1, 23));
      if (caps.groupedQuery()) {
        cases.add(base.heads(2, 4, 2));
        cases.add(base.heads(1, 6, 1).lengths(11, 29));
      }
      for (ForwardCase m : maskings(base.lengths(11, 29))) {
        cases.add(m);
      }
      if (claims(MaskKind.CAUSAL_BOTTOM_RIGHT)) {
        cases.add(base.lengths(29, 11).causal(CausalMode.BOTTOM_RIGHT));
      }
      if (claims(MaskKind.BOOLEAN)) {
        cases.add(base.mask(MaskSpec.bool(MaskSpec.Broadcast.QUERY_KEY).withFullyMaskedRows()));
      }
      for (long[] d : valueDimPairs()) {
        cases.add(base.dims(d[0], d[1]));
      }
      for (Layout l : layouts()) {
        cases.add(base.layout(l));
      }
      if (caps.customScale()) {
        cases.add(base.scale(0.3));
      }
      if (caps.dropout()) {
        cases.add(base.lengths(17, 23).dropout(0.2, new DropoutSeed(99, 5)));
      }
      if (caps.dropoutResolutions().contains(DropoutResolution.BYTE)) {
        cases.add(base.lengths(17, 40).dropoutResolution(DropoutResolution.BYTE).dropout(0.2, new DropoutSeed(99, 5)));
      }
      if (level == Level.FULL) {
        List<Long> dims = headDims();
        List<long[]> lengths = lengthPairs();
        List<ForwardCase> maskings = new ArrayList<>();
        maskings.add(base);
        maskings.addAll(maskings(base));
        List<long[]> heads = headShapes();
        for (int j = 0; j < lengths.size(); j++) {
          for (int i = 0; i < dims.size(); i += 2) {
            long[] h = heads.get((i + j) % heads.size());
            cases.add(affordable(maskings.get((i + j) % maskings.size()).dims(dims.get(i), dims.get(i))
                .lengths(lengths.get(j)[0], lengths.get(j)[1]).heads(h[0], h[1], h[2])));
          }
        }
        cases.add(combined(base));
      }
    }
    return unique(cases.stream().map(this::affordable).toList());
  }

  /** Cases run twice to compare bits (forward, and backward where claimed). */
  List<ForwardCase> determinism() {
    if (caps.determinism() == Determinism.NEVER) {
      return List.of();
    }
    boolean ask = caps.determinism() == Determinism.ON_REQUEST;
    List<ForwardCase> cases = new ArrayList<>();
    for (DType t : dtypes) {
      ForwardCase c = base(t).lengths(64, 129).deterministic(ask);
      if (caps.groupedQuery()) {
        c = c.heads(2, 4, 2);
      }
      cases.add(c);
      List<ForwardCase> m = maskings(c);
      if (!m.isEmpty()) {
        cases.add(m.get(0));
      }
      if (caps.dropout()) {
        cases.add(c.dropout(0.25, null));
      }
      if (caps.backward()) {
        cases.add(c.training(true));
      }
      if (level == Level.FULL) {
        cases.add(affordable(c.lengths(500, 500)));
        if (caps.backward()) {
          cases.add(affordable(c.lengths(257, 500).training(true)));
        }
      }
    }
    return unique(cases);
  }

  /** Cases run from several threads at once, in the first dtype. */
  List<ForwardCase> concurrency() {
    boolean ask = caps.determinism() == Determinism.ON_REQUEST;
    ForwardCase base = base(dtypes.get(0)).heads(2, 4, 4).lengths(33, 47).deterministic(ask);
    List<ForwardCase> cases = new ArrayList<>();
    cases.add(base);
    cases.add(base.lengths(47, 33).dims(minE, minE));
    if (caps.groupedQuery()) {
      cases.add(base.heads(2, 4, 1));
    }
    List<ForwardCase> m = maskings(base);
    if (!m.isEmpty()) {
      cases.add(m.get(0));
      cases.add(m.get(m.size() - 1));
    }
    if (caps.dropout()) {
      cases.add(base.dropout(0.2, new DropoutSeed(5, 6)));
    }
    return unique(cases);
  }

  /**
   * A request breaking one claim.
   *
   * @param claim what the provider does not claim, in words
   * @param spec  an otherwise accepted case breaking it
   */
  record Refusal(String claim, ForwardCase spec) {}

  /** For every feature the capabilities do not claim, a case using it (on an otherwise accepted base). */
  List<Refusal> refusals() {
    DType t = dtypes.get(0);
    ForwardCase base = base(t);
    List<Refusal> out = new ArrayList<>();
    for (DType other : List.of(DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16, DType.FLOAT64)) {
      if (!dtypes.contains(other)) {
        out.add(new Refusal("dtype " + other.shortName(), base.dtype(other)));
      }
    }
    long m = caps.headDimMultiple();
    long ev = caps.valueDimMayDiffer() ? legalValueDim(midE) : -1;
    if (maxE < Integer.MAX_VALUE / 2 && maxE + m <= 65536) {
      long e = maxE + m;
      out.add(new Refusal("head dim " + e + " > " + caps.maxHeadDim(), base.dims(e, ev > 0 ? ev : e).heads(1, 1, 1)));
    }
    if (minE > 1) {
      long e = minE - 1;
      out.add(new Refusal("head dim " + e + " < " + caps.minHeadDim(), base.dims(e, ev > 0 ? ev : e)));
    }
    if (m > 1) {
      long e = midE + 1 <= maxE ? midE + 1 : midE - 1;
      out.add(new Refusal("head dim " + e + " not a multiple of " + m, base.dims(e, ev > 0 ? ev : e)));
    }
    if (!caps.valueDimMayDiffer()) {
      long other = midE + m <= maxE ? midE + m : midE - m;
      if (other >= 1) {
        out.add(new Refusal("value head dim != query head dim", base.dims(midE, other)));
      }
    } else {
      long evMax = (caps.maxValueHeadDim() / m) * m;
      if (evMax + m <= 65536) {
        out.add(new Refusal("value head dim " + (evMax + m) + " > " + caps.maxValueHeadDim(),
            base.dims(midE, evMax + m).heads(1, 1, 1)));
      }
    }
    for (MaskKind k : MaskKind.values()) {
      if (!claims(k)) {
        MaskSpec spec = k == MaskKind.BOOLEAN ? MaskSpec.bool(MaskSpec.Broadcast.QUERY_KEY)
            : MaskSpec.additive(DType.FLOAT32, MaskSpec.Broadcast.QUERY_KEY);
        out.add(new Refusal(k.description(), base.masking(k, spec)));
      }
    }
    if (!caps.dropout()) {
      out.add(new Refusal("dropout", base.dropout(0.25, new DropoutSeed(1, 0))));
    }
    for (DropoutResolution r : DropoutResolution.values()) {
      if (caps.dropout() && !caps.dropoutResolutions().contains(r)) {
        out.add(new Refusal("dropout at " + r + " resolution", base.dropoutResolution(r).dropout(0.25,
            new DropoutSeed(1, 0))));
      }
    }
    if (!caps.backward()) {
      out.add(new Refusal("backward (training)", base.training(true)));
    }
    if (!caps.groupedQuery()) {
      out.add(new Refusal("grouped-query attention", base.heads(2, 4, 2)));
    }
    if (!caps.customScale()) {
      out.add(new Refusal("custom scale", base.scale(0.3)));
    }
    if (!caps.logSumExp()) {
      out.add(new Refusal("log-sum-exp output", base.lse(true)));
    }
    if (caps.unitHeadDimStride()) {
      out.add(new Refusal("head dimension with stride != 1", base.layout(Layout.HEAD_DIM_STRIDED)));
    }
    if (caps.determinism() == Determinism.NEVER) {
      out.add(new Refusal("deterministic results", base.deterministic(true)));
    }
    return out;
  }
}
