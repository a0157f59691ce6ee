package dev.sdpa4j.conformance;

import dev.sdpa4j.DType;
import dev.sdpa4j.Device;
import dev.sdpa4j.MaskKind;
import dev.sdpa4j.Platform;
import dev.sdpa4j.ProviderRegistry;
import dev.sdpa4j.spi.AttentionProvider;
import dev.sdpa4j.spi.Availability;
import dev.sdpa4j.spi.Capabilities;
import dev.sdpa4j.spi.DeviceInfo;
import dev.sdpa4j.spi.Determinism;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.extension.Extension;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.function.Executable;
import org.opentest4j.AssertionFailedError;

/**
 * The conformance kit of the attention SPI: extend it in a test, return your provider from {@link #provider()}, and
 * the kit checks it against the float64 reference of {@code provider-math}
 * ({@link dev.sdpa4j.provider.math.ReferenceAttention}).
 *
 * <pre>{@code
 * class MyProviderConformanceTest extends AttentionProviderConformanceKit {
 *   @Override
 *   protected AttentionProvider provider() {
 *     return new MyProvider();
 *   }
 * }
 * }</pre>
 *
 * <p>The cases come from what the provider declares for the device the kit tests (the {@link DeviceInfo} whose
 * memory {@link #memory()} allocates): only claimed features are demanded, and every claim is checked. Each test
 * factory below is one group; each case is a dynamic test named after its shape and options. An unavailable
 * provider is skipped (assumption), so a GPU provider's test passes on a machine without the GPU.
 *
 * <p>What the groups check:
 * <ul>
 *   <li>{@link #declaration}: a usable name, devices listed, consistent capabilities, a device for the kit's memory,
 *       found by a registry;</li>
 *   <li>{@link #forward}: for each claimed dtype, head dims at and between the limits, {@code Lq = Lk} and
 *       {@code Lq != Lk}, batch and heads including 1, grouped-query ratios, every claimed mask kind in several
 *       broadcast shapes, custom scale, value head dim differing, contiguous / {@code [B, L, H, E]} / padded
 *       (/ head-dim-strided) layouts: output and LSE close to the reference, every output element written, nothing
 *       written outside the outputs;</li>
 *   <li>{@link #fullyMaskedRows}: rows with no key give exactly zero and LSE {@code -inf};</li>
 *   <li>{@link #dropout}: the output equals the reference's with the same seed and offset
 *       ({@link dev.sdpa4j.Dropout});</li>
 *   <li>{@link #backward}: dQ, dK, dV close to the reference gradients;</li>
 *   <li>{@link #determinism}: the same call twice gives the same bits, unless {@link Determinism#NEVER} is
 *       declared;</li>
 *   <li>{@link #concurrency}: several threads at once give the serial results;</li>
 *   <li>{@link #refusals}: every unclaimed feature is refused through {@code notSupportedReasons} with at least one
 *       reason, and the registry then never runs the provider;</li>
 *   <li>{@link #badInputs}: malformed calls fail with {@link dev.sdpa4j.AttentionArgumentException} before any work,
 *       outputs untouched.</li>
 * </ul>
 *
 * <p><b>Tolerance</b> (PyTorch's fused-kernel scheme): an element may differ from the float64 reference by
 * {@code atol + rtol·|expected|}, where {@code atol} is a fudge factor (output and LSE 4, dV 8, dQ and dK 16) times
 * the largest error of the reference algorithm run in the inputs' own precision (at least a per-dtype floor:
 * 1e-3 for fp16/bf16, 1e-5 for fp32) and {@code rtol} the fudge times the dtype's floor (fp16 1e-3, bf16 1.6e-2,
 * fp32 1.3e-6). NaN only where the reference has NaN; fully masked rows exactly zero.
 *
 * <p><b>Settings</b> (JUnit configuration parameters or system properties):
 * <ul>
 *   <li>{@code sdpa4j.conformance.level} = {@code quick} (default; small sizes, a covering sample, for CI) or
 *       {@code full} (the large grid, long sequences; for a host with the device);</li>
 *   <li>{@code sdpa4j.conformance.seed}: the master seed (random per run when absent). Every failure prints it and a
 *       one-line command rerunning the failed case;</li>
 *   <li>{@code sdpa4j.conformance.case}: runs only the cases whose name contains this text.</li>
 * </ul>
 */
public abstract class AttentionProviderConformanceKit {
  /** Reads the settings; registered statically so it runs before each kit instance is used. */
  @RegisterExtension
  static final Extension SETTINGS = new KitExtension();

  /** Set by {@link KitExtension} before any test runs. */
  Settings settings;

  private AttentionProvider provider;
  private TensorMemory memory;
  private DeviceInfo device;

  /** For subclasses. */
  protected AttentionProviderConformanceKit() {}

  /** The provider under test. Called once per test factory; a new instance each time is fine. */
  protected abstract AttentionProvider provider();

  /**
   * The memory the kit puts tensors in, and with it the device under test. The default is host memory, which suits
   * CPU providers and device providers that accept host tensors; a provider that only takes its own device memory
   * returns a {@link TensorMemory} for that device. Called only when the provider is available.
   */
  protected TensorMemory memory() {
    return TensorMemory.host();
  }

  /** Skips every test when the provider is unavailable here (no device, no driver). */
  @BeforeEach
  protected final void requireAvailableProvider() {
    provider = provider();
    Availability a = provider.availability();
    Assumptions.assumeTrue(a.available(), () -> "provider " + provider.name() + " is unavailable: " + a.reason());
    memory = memory();
    Device d = memory.device();
    device = provider.devices().stream()
        .filter(i -> d.platform() == Platform.HOST ? i.capabilities().memory().contains(Platform.HOST)
            : i.device().equals(d))
        .findFirst().orElse(null);
  }

  private Checker checker() {
    return new Checker(provider, memory, settings);
  }

  /** The capabilities under test; fails when the provider has no device for the kit's memory. */
  private Capabilities capabilities() {
    if (device == null) {
      throw new AssertionFailedError("provider " + provider.name() + " lists no device taking tensors in "
          + memory.device() + " memory (devices: " + provider.devices().stream().map(DeviceInfo::device).toList()
          + "); return the memory of its device from memory()");
    }
    return device.capabilities();
  }

  private Grid grid() {
    Grid g = new Grid(capabilities(), settings.level());
    String impossible = g.impossible();
    if (impossible != null) {
      throw new AssertionFailedError("provider " + provider.name() + ": " + impossible);
    }
    return g;
  }

  /**
   * One dynamic test per selected case; with {@code references}, the reference results of the next cases are
   * computed on spare cores while a case runs.
   */
  private Stream<DynamicNode> cases(Checker ch, List<ForwardCase> cases, boolean references, String unclaimed,
      Function<ForwardCase, Executable> body) {
    if (cases.isEmpty()) {
      return Stream.of(DynamicTest.dynamicTest(unclaimed, () -> Assumptions.abort(unclaimed)));
    }
    List<ForwardCase> selected = cases.stream().filter(c -> settings.selects(c.name())).toList();
    if (references) {
      ch.prefetch(selected);
    }
    return IntStream.range(0, selected.size()).mapToObj(i -> DynamicTest.dynamicTest(selected.get(i).name(), () -> {
      ch.ahead(i);
      body.apply(selected.get(i)).execute();
    }));
  }

  /** The declaration itself: name, devices, consistent capabilities, discoverable through a registry. */
  @TestFactory
  public Stream<DynamicNode> declaration() {
    List<DynamicNode> tests = new ArrayList<>();
    tests.add(DynamicTest.dynamicTest("name is short and usable in allow-lists", () -> {
      String n = provider.name();
      if (n == null || n.isBlank() || !n.matches("[A-Za-z0-9._-]+")) {
        throw new AssertionFailedError("provider name must be non-blank letters, digits, '.', '_' or '-'"
            + " (it appears in -Dsdpa4j.providers=a,b lists), got '" + n + "'");
      }
    }));
    tests.add(DynamicTest.dynamicTest("an available provider lists its devices", () -> {
      if (provider.devices() == null || provider.devices().isEmpty()) {
        throw new AssertionFailedError("provider " + provider.name() + " is available but lists no device");
      }
    }));
    tests.add(DynamicTest.dynamicTest("a device takes tensors in " + memory.device() + " memory", this::capabilities));
    tests.add(DynamicTest.dynamicTest("capabilities are consistent", () -> {
      Capabilities c = capabilities();
      List<String> problems = new ArrayList<>();
      if (c.dtypes().contains(DType.BOOL)) {
        problems.add("bool is not an attention dtype");
      }
      if (c.dtypes().stream().noneMatch(DType::isFloatingPoint)) {
        problems.add("no floating-point dtype");
      }
      if (!c.maskKinds().contains(MaskKind.NONE)) {
        problems.add("mask kinds must include NONE");
      }
      if (c.backward() && !c.logSumExp()) {
        problems.add("backward is claimed but not the log-sum-exp output training needs");
      }
      if (c.memory().isEmpty()) {
        problems.add("no memory kind");
      }
      String impossible = new Grid(c, settings.level()).impossible();
      if (impossible != null) {
        problems.add(impossible);
      }
      if (!problems.isEmpty()) {
        throw new AssertionFailedError("provider " + provider.name() + " declares inconsistent capabilities "
            + c + ": " + String.join("; ", problems));
      }
    }));
    tests.add(DynamicTest.dynamicTest("a registry of it finds it available by name", () -> {
      var status = ProviderRegistry.of(provider).statuses().get(0);
      if (!status.available() || ProviderRegistry.of(provider).find(provider.name()).isEmpty()) {
        throw new AssertionFailedError("a registry lists provider " + provider.name() + " as " + status);
      }
    }));
    return tests.stream().map(DynamicNode.class::cast);
  }

  /** Output and LSE against the reference over the grid of claimed features. */
  @TestFactory
  public Stream<DynamicNode> forward() {
    Checker ch = checker();
    return cases(ch, grid().forward(), true, "no case", c -> () -> ch.forward(c));
  }

  /** Rows in which every key is masked: zeros and LSE -inf, for each claimed mask kind that can mask a row. */
  @TestFactory
  public Stream<DynamicNode> fullyMaskedRows() {
    Checker ch = checker();
    return cases(ch, grid().fullyMasked(), true,
        "no claimed mask kind can mask a whole row (bottom-right causal, boolean, additive)", c -> () -> ch.forward(c));
  }

  /** Dropout equal to the reference's for the same seed and offset. */
  @TestFactory
  public Stream<DynamicNode> dropout() {
    Checker ch = checker();
    return cases(ch, grid().dropout(), true, "dropout is not claimed", c -> () -> ch.forward(c));
  }

  /** Gradients against the reference's. */
  @TestFactory
  public Stream<DynamicNode> backward() {
    Checker ch = checker();
    return cases(ch, grid().backward(), true, "backward is not claimed", c -> () -> ch.backward(c));
  }

  /** The same call twice gives the same bits. */
  @TestFactory
  public Stream<DynamicNode> determinism() {
    Checker ch = checker();
    return cases(ch, grid().determinism(), false, "determinism NEVER is declared", c -> () -> ch.determinism(c));
  }

  /** Calls from several threads at once give the serial results. */
  @TestFactory
  public Stream<DynamicNode> concurrency() {
    Checker ch = checker();
    Grid g = grid();
    Capabilities c = capabilities();
    List<ForwardCase> cases = g.concurrency().stream().filter(x -> settings.selects(x.name())).toList();
    boolean bitwise = c.determinism() != Determinism.NEVER;
    int threads = Math.max(4, 2 * cases.size());
    int rounds = settings.level() == Level.QUICK ? 3 : 10;
    String name = threads + " threads x " + rounds + " rounds over " + cases.size() + " cases, "
        + (bitwise ? "bit-identical to serial calls" : "each close to the reference (determinism NEVER)");
    return Stream.of(DynamicTest.dynamicTest(name, () -> {
      Assumptions.assumeFalse(cases.isEmpty(), "no concurrency case matches " + Settings.CASE);
      ch.concurrency(cases, bitwise, threads, rounds);
    }));
  }

  /** Every feature the provider does not claim is refused through notSupportedReasons, never by failing. */
  @TestFactory
  public Stream<DynamicNode> refusals() {
    Checker ch = checker();
    List<Grid.Refusal> refusals = grid().refusals();
    if (refusals.isEmpty()) {
      return Stream.of(DynamicTest.dynamicTest("every feature is claimed",
          () -> Assumptions.abort("nothing to refuse")));
    }
    return refusals.stream().filter(r -> settings.selects(r.spec().name()))
        .map(r -> DynamicTest.dynamicTest("refuses " + r.claim() + ": " + r.spec().name(), () -> ch.refusal(r)));
  }

  /** Malformed calls fail with AttentionArgumentException before any work, outputs untouched. */
  @TestFactory
  public Stream<DynamicNode> badInputs() {
    Checker ch = checker();
    Grid g = grid();
    Capabilities c = capabilities();
    ForwardCase base = ForwardCase.base(g.dtypes().get(0), Math.max(2, g.midHeadDim()), c.logSumExp());
    if (base.headDim() > g.maxHeadDim()) {
      base = base.dims(g.midHeadDim(), g.midHeadDim());
    }
    ForwardCase b = base;
    return BadInputs.calls(c.backward(), b.headDim()).stream()
        .filter(call -> settings.selects(call.name()))
        .map(call -> DynamicTest.dynamicTest(call.name(), () -> ch.badInput(call, b)));
  }
}
