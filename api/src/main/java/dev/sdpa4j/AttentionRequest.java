package dev.sdpa4j;

import java.security.SecureRandom;
import java.util.Objects;
import java.util.Optional;

/**
 * One validated forward call: the tensors, the resolved options and the problem's sizes. Providers receive only
 * requests made by {@link #create}, so they can rely on every check below having passed.
 *
 * <p>Checks, each failing with an {@link AttentionArgumentException} naming the argument:
 * <ul>
 *   <li>query {@code [B, Hq, Lq, E]}, key {@code [B, Hkv, Lk, E]}, value {@code [B, Hkv, Lk, Ev]}, output
 *       {@code [B, Hq, Lq, Ev]}, lse {@code [B, Hq, Lq]}; every dimension at least 1;</li>
 *   <li>query, key, value and output of one floating-point dtype; lse {@link DType#FLOAT32};</li>
 *   <li>{@code Hq == Hkv}, or {@code enableGqa} and {@code Hq % Hkv == 0};</li>
 *   <li>the mask {@link DType#BOOL}, {@link DType#FLOAT32} or the query's dtype, of rank 1..4, broadcastable to
 *       {@code [B, Hq, Lq, Lk]} (aligned at the right, each size equal or 1);</li>
 *   <li>every tensor in the same memory, within its storage's bounds; outputs non-overlapping and disjoint from
 *       the inputs.</li>
 * </ul>
 */
public final class AttentionRequest {
  private static final SecureRandom SEEDS = new SecureRandom();

  private final Tensor query;
  private final Tensor key;
  private final Tensor value;
  private final Tensor output;
  private final Tensor lse;
  private final Tensor mask;
  private final MaskKind maskKind;
  private final CausalMode causal;
  private final double scale;
  private final boolean customScale;
  private final double dropoutP;
  private final DropoutSeed dropoutSeed;
  private final AttentionOptions options;
  private final AttentionShape shape;

  private AttentionRequest(Tensor query, Tensor key, Tensor value, Tensor output, Tensor lse, Tensor mask,
      MaskKind maskKind, double scale, boolean customScale, DropoutSeed dropoutSeed, AttentionOptions options,
      AttentionShape shape) {
    this.query = query;
    this.key = key;
    this.value = value;
    this.output = output;
    this.lse = lse;
    this.mask = mask;
    this.maskKind = maskKind;
    this.causal = options.causal();
    this.scale = scale;
    this.customScale = customScale;
    this.dropoutP = options.dropoutP();
    this.dropoutSeed = dropoutSeed;
    this.options = options;
    this.shape = shape;
  }

  /**
   * Validates a forward call and resolves its options (the default scale; a fresh dropout seed when dropout is on
   * and none was given).
   *
   * @param lse the log-sum-exp output, or null when not wanted
   */
  public static AttentionRequest create(Tensor query, Tensor key, Tensor value, Tensor output, Tensor lse,
      AttentionOptions options) {
    Objects.requireNonNull(options, "options");
    require(query, "query");
    require(key, "key");
    require(value, "value");
    require(output, "output");
    rank(query, "query", 4, "[B, Hq, Lq, E]");
    rank(key, "key", 4, "[B, Hkv, Lk, E]");
    rank(value, "value", 4, "[B, Hkv, Lk, Ev]");
    rank(output, "output", 4, "[B, Hq, Lq, Ev]");
    DType dtype = query.dtype();
    if (!dtype.isFloatingPoint()) {
      throw new AttentionArgumentException("query", "expected a floating-point dtype, got " + dtype.shortName());
    }
    sameDtype(key, "key", dtype);
    sameDtype(value, "value", dtype);
    sameDtype(output, "output", dtype);

    long b = query.size(0);
    long hq = query.size(1);
    long lq = query.size(2);
    long e = query.size(3);
    long hkv = key.size(1);
    long lk = key.size(2);
    long ev = value.size(3);
    expectShape(key, "key", "[B, Hkv, Lk, E]", b, hkv, lk, e);
    expectShape(value, "value", "[B, Hkv, Lk, Ev]", b, hkv, lk, ev);
    expectShape(output, "output", "[B, Hq, Lq, Ev]", b, hq, lq, ev);
    if (hq != hkv) {
      if (!options.enableGqa()) {
        throw new AttentionArgumentException("key", "query has " + hq + " heads but key/value have " + hkv
            + "; set enableGqa for grouped-query attention, or give key/value " + hq + " heads");
      }
      if (hq % hkv != 0) {
        throw new AttentionArgumentException("key", "grouped-query attention needs Hq % Hkv == 0, got Hq = " + hq
            + ", Hkv = " + hkv);
      }
    }
    if (lse == null && options.returnLse()) {
      throw new AttentionArgumentException("lse", "the options ask for the log-sum-exp (returnLse or training) but no lse tensor was given");
    }
    if (lse != null) {
      rank(lse, "lse", 3, "[B, Hq, Lq]");
      if (lse.dtype() != DType.FLOAT32) {
        throw new AttentionArgumentException("lse", "expected fp32, got " + lse.dtype().shortName());
      }
      expectShape(lse, "lse", "[B, Hq, Lq]", b, hq, lq);
    }

    Tensor mask = null;
    MaskKind maskKind = switch (options.causal()) {
      case NONE -> MaskKind.NONE;
      case TOP_LEFT -> MaskKind.CAUSAL_TOP_LEFT;
      case BOTTOM_RIGHT -> MaskKind.CAUSAL_BOTTOM_RIGHT;
    };
    Optional<Tensor> userMask = options.attnMask();
    if (userMask.isPresent()) {
      Tensor m = userMask.get();
      if (m.dtype() != DType.BOOL && m.dtype() != DType.FLOAT32 && m.dtype() != dtype) {
        throw new AttentionArgumentException("options.attnMask", "expected dtype bool, fp32 or the query's ("
            + dtype.shortName() + "), got " + m.dtype().shortName());
      }
      mask = broadcastMask(m, b, hq, lq, lk);
      maskKind = m.dtype() == DType.BOOL ? MaskKind.BOOLEAN : MaskKind.ADDITIVE;
    }

    Device device = query.device();
    sameDevice(key, "key", device);
    sameDevice(value, "value", device);
    sameDevice(output, "output", device);
    if (lse != null) {
      sameDevice(lse, "lse", device);
    }
    if (mask != null) {
      sameDevice(mask, "options.attnMask", device);
    }
    inBounds(query, "query");
    inBounds(key, "key");
    inBounds(value, "value");
    inBounds(output, "output");
    if (lse != null) {
      inBounds(lse, "lse");
    }
    if (mask != null) {
      inBounds(mask, "options.attnMask");
    }
    writable(output, "output", query, key, value, mask);
    if (lse != null) {
      writable(lse, "lse", query, key, value, mask);
      disjoint(lse, "lse", output, "output");
    }

    double defaultScale = 1.0 / Math.sqrt(e);
    double scale = options.scale().orElse(defaultScale);
    DropoutSeed seed = null;
    if (options.dropoutP() > 0) {
      seed = options.dropoutSeed().orElseGet(() -> new DropoutSeed(SEEDS.nextLong(), 0));
    }
    AttentionShape shape = new AttentionShape(b, hq, hkv, lq, lk, e, ev);
    return new AttentionRequest(query, key, value, output, lse, mask, maskKind, scale, scale != defaultScale, seed,
        options, shape);
  }

  public Tensor query() {
    return query;
  }

  public Tensor key() {
    return key;
  }

  public Tensor value() {
    return value;
  }

  public Tensor output() {
    return output;
  }

  /** The log-sum-exp output {@code [B, Hq, Lq]} fp32 (natural log, of the scaled masked scores), if wanted. */
  public Optional<Tensor> lse() {
    return Optional.ofNullable(lse);
  }

  /**
   * The mask as a rank-4 view of shape {@code [B, Hq, Lq, Lk]}, broadcast dimensions having stride 0; empty when
   * the request has no tensor mask.
   */
  public Optional<Tensor> mask() {
    return Optional.ofNullable(mask);
  }

  /** The one kind of masking this request uses. */
  public MaskKind maskKind() {
    return maskKind;
  }

  public CausalMode causal() {
    return causal;
  }

  /** The resolved scale. */
  public double scale() {
    return scale;
  }

  /** True when the scale differs from {@code 1/sqrt(E)}. */
  public boolean customScale() {
    return customScale;
  }

  public double dropoutP() {
    return dropoutP;
  }

  /**
   * The dropout mask's resolution, threshold and keep scale ({@link Dropout}); with {@code dropoutP == 0} it keeps
   * every element.
   */
  public Dropout.Mask dropoutMask() {
    return Dropout.Mask.of(dropoutP, options.dropoutResolution());
  }

  /** The resolved dropout seed; empty when {@code dropoutP == 0}. */
  public Optional<DropoutSeed> dropoutSeed() {
    return Optional.ofNullable(dropoutSeed);
  }

  /** The options as the caller gave them. */
  public AttentionOptions options() {
    return options;
  }

  public AttentionShape shape() {
    return shape;
  }

  public DType dtype() {
    return query.dtype();
  }

  /** Where the tensors are. */
  public Device device() {
    return query.device();
  }

  /** One line describing the request, for messages and logs. */
  public String describe() {
    StringBuilder s = new StringBuilder();
    s.append("query ").append(query.shapeString()).append(", key ").append(key.shapeString()).append(", value ")
        .append(value.shapeString()).append(' ').append(dtype().shortName()).append(" on ").append(device())
        .append(", ").append(maskKind.description());
    if (mask != null) {
      s.append(' ').append(options.attnMask().orElseThrow().shapeString());
    }
    if (dropoutP > 0) {
      s.append(", dropout p=").append(dropoutP);
      if (options.dropoutResolution() != DropoutResolution.WORD) {
        s.append(" (").append(options.dropoutResolution()).append(" resolution)");
      }
    }
    if (customScale) {
      s.append(", scale=").append(scale);
    }
    if (options.training()) {
      s.append(", training");
    }
    if (options.deterministic()) {
      s.append(", deterministic");
    }
    return s.toString();
  }

  @Override
  public String toString() {
    return "AttentionRequest[" + describe() + "]";
  }

  // ---- checks shared with BackwardRequest ----

  static void require(Tensor t, String name) {
    if (t == null) {
      throw new AttentionArgumentException(name, "must not be null");
    }
  }

  static void rank(Tensor t, String name, int rank, String layout) {
    if (t.rank() != rank) {
      throw new AttentionArgumentException(name, "expected rank " + rank + " " + layout + ", got shape " + t.shapeString());
    }
  }

  static void sameDtype(Tensor t, String name, DType expected) {
    if (t.dtype() != expected) {
      throw new AttentionArgumentException(name, "expected dtype " + expected.shortName() + " (the query's), got "
          + t.dtype().shortName());
    }
  }

  static void expectShape(Tensor t, String name, String layout, long... expected) {
    if (!java.util.Arrays.equals(t.shape(), expected)) {
      throw new AttentionArgumentException(name, "expected shape " + java.util.Arrays.toString(expected) + " " + layout
          + ", got " + t.shapeString());
    }
  }

  static void sameDevice(Tensor t, String name, Device device) {
    if (!t.device().equals(device)) {
      throw new AttentionArgumentException(name, "is in " + t.device() + " memory but the query is in " + device
          + " memory; all tensors of a call must be in the same memory");
    }
  }

  static void inBounds(Tensor t, String name) {
    long bytes = Math.multiplyExact(t.elementSpan(), (long) t.dtype().byteSize());
    if (bytes > t.storage().byteSize()) {
      throw new AttentionArgumentException(name, "shape " + t.shapeString() + " with strides "
          + java.util.Arrays.toString(t.strides()) + " reaches " + bytes + " bytes but its storage holds "
          + t.storage().byteSize());
    }
  }

  static void writable(Tensor out, String name, Tensor... inputs) {
    if (!out.isNonOverlapping()) {
      throw new AttentionArgumentException(name, "strides " + java.util.Arrays.toString(out.strides())
          + " make elements overlap; an output needs a distinct element per index");
    }
    String[] names = {"query", "key", "value", "options.attnMask"};
    for (int i = 0; i < inputs.length; i++) {
      if (inputs[i] != null) {
        disjoint(out, name, inputs[i], i < names.length ? names[i] : "input");
      }
    }
  }

  static void disjoint(Tensor a, String aName, Tensor b, String bName) {
    if (overlaps(a, b)) {
      throw new AttentionArgumentException(aName, "overlaps the memory of " + bName + "; outputs must not alias inputs or each other");
    }
  }

  private static boolean overlaps(Tensor a, Tensor b) {
    long aLen = a.elementSpan() * a.dtype().byteSize();
    long bLen = b.elementSpan() * b.dtype().byteSize();
    if (a.storage() instanceof Storage.Host(var sa) && b.storage() instanceof Storage.Host(var sb)) {
      if (sa.isNative() != sb.isNative()) {
        return false;
      }
      if (!sa.isNative() && sa.heapBase().orElse(null) != sb.heapBase().orElse(null)) {
        return false;
      }
      long a0 = sa.address();
      long b0 = sb.address();
      return a0 < b0 + bLen && b0 < a0 + aLen;
    }
    if (a.storage() instanceof Storage.DeviceBuffer da && b.storage() instanceof Storage.DeviceBuffer db) {
      if (!da.device().equals(db.device())) {
        return false;
      }
      long a0 = da.device().platform() == Platform.CUDA ? da.handle() + da.byteOffset() : da.byteOffset();
      long b0 = db.device().platform() == Platform.CUDA ? db.handle() + db.byteOffset() : db.byteOffset();
      if (da.device().platform() == Platform.OPENCL && da.handle() != db.handle()) {
        return false;
      }
      return a0 < b0 + bLen && b0 < a0 + aLen;
    }
    return false;
  }

  private static Tensor broadcastMask(Tensor m, long b, long hq, long lq, long lk) {
    long[] target = {b, hq, lq, lk};
    String[] dimNames = {"B", "Hq", "Lq", "Lk"};
    long[] shape = new long[4];
    long[] strides = new long[4];
    int r = m.rank();
    for (int d = 0; d < 4; d++) {
      int src = d - (4 - r);
      if (src < 0) {
        shape[d] = target[d];
        strides[d] = 0;
        continue;
      }
      long size = m.size(src);
      if (size == target[d]) {
        shape[d] = size;
        strides[d] = size == 1 ? 0 : m.stride(src);
      } else if (size == 1) {
        shape[d] = target[d];
        strides[d] = 0;
      } else {
        throw new AttentionArgumentException("options.attnMask", "shape " + m.shapeString()
            + " is not broadcastable to [B, Hq, Lq, Lk] = " + java.util.Arrays.toString(target) + ": size " + size
            + " against " + dimNames[d] + " = " + target[d]);
      }
    }
    return m.view(shape, strides);
  }
}
