package dev.sdpa4j.conformance;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;
import static org.junit.platform.engine.discovery.DiscoverySelectors.selectMethod;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.platform.engine.DiscoverySelector;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.testkit.engine.EngineExecutionResults;
import org.junit.platform.testkit.engine.EngineTestKit;
import org.junit.platform.testkit.engine.Event;

/**
 * The kit tested itself: each deliberately broken provider of {@link BrokenProviders} fails the group that checks
 * its bug, with a report naming the problem, the seed and the rerun command; a correct provider passes every group;
 * an unavailable one is skipped.
 */
class KitSelfTest {
  private static final long SEED = 20261126L;

  /** Runs the given selectors at the quick level with a fixed seed. */
  private static EngineExecutionResults run(Map<String, String> parameters, DiscoverySelector... selectors) {
    EngineTestKit.Builder b = EngineTestKit.engine("junit-jupiter").selectors(selectors)
        .configurationParameter(Settings.LEVEL, "quick")
        .configurationParameter(Settings.SEED, Long.toString(SEED));
    parameters.forEach(b::configurationParameter);
    return b.execute();
  }

  private static List<String> failureMessages(EngineExecutionResults results) {
    return results.allEvents().failed().stream()
        .map(e -> e.getRequiredPayload(TestExecutionResult.class).getThrowable().map(Throwable::getMessage).orElse(""))
        .toList();
  }

  /** The group {@code method} of {@code kit} fails, and some failure message contains {@code expected}. */
  private static List<String> assertGroupFails(Class<?> kit, String method, String expected) {
    List<String> messages = failures(kit, method, expected);
    assertThat(messages).allSatisfy(m -> assertThat(m)
        .contains("seed:  " + SEED).contains("rerun: ").contains("-Dsdpa4j.conformance.seed=" + SEED));
    return messages;
  }

  private static List<String> failures(Class<?> kit, String method, String expected) {
    EngineExecutionResults results = run(Map.of(), selectMethod(kit, method));
    List<String> messages = failureMessages(results);
    assertThat(messages).as("%s#%s must fail", kit.getSimpleName(), method).isNotEmpty();
    assertThat(messages).as("failure reports of %s#%s", kit.getSimpleName(), method)
        .anySatisfy(m -> assertThat(m).contains(expected));
    return messages;
  }

  @Test
  void correctProviderPassesEveryGroup() {
    EngineExecutionResults results = run(Map.of(), selectClass(BrokenProviders.CorrectKit.class));
    assertThat(failureMessages(results)).isEmpty();
    assertThat(results.testEvents().succeeded().count()).isGreaterThan(50);
  }

  @Test
  void offByOneCausalMaskFailsForward() {
    List<String> m = assertGroupFails(BrokenProviders.OffByOneCausalKit.class, "forward",
        "elements differ from the float64 reference");
    assertThat(m).allSatisfy(x -> assertThat(x).contains("causal"));
  }

  @Test
  void ignoredCustomScaleFailsForward() {
    List<String> m = assertGroupFails(BrokenProviders.IgnoresCustomScaleKit.class, "forward",
        "output: ");
    assertThat(m).allSatisfy(x -> assertThat(x).contains("scale=0.3"));
  }

  @Test
  void unwrittenTailFailsForward() {
    assertGroupFails(BrokenProviders.UnwrittenTailKit.class, "forward", "never written (still the poison NaN)");
  }

  @Test
  void writesOutsideTheOutputFailForward() {
    assertGroupFails(BrokenProviders.OverrunKit.class, "forward", "wrote outside its tensor");
  }

  @Test
  void claimedBf16ComputedWrongFailsForward() {
    List<String> m = assertGroupFails(BrokenProviders.WrongBf16Kit.class, "forward",
        "differ from the float64 reference");
    assertThat(m).allSatisfy(x -> assertThat(x).contains("case:  bf16"));
  }

  @Test
  void throwingOnAnAcceptedRequestFailsForward() {
    assertGroupFails(BrokenProviders.ThrowsOnAcceptedKit.class, "forward",
        "forward threw on a request it accepted");
  }

  @Test
  void refusingAClaimedFeatureFailsForward() {
    assertGroupFails(BrokenProviders.RefusesClaimKit.class, "forward",
        "refuses a request its capabilities claim to support: [fp16 kernels are disabled]");
  }

  @Test
  void acceptingUnclaimedFeaturesFailsRefusals() {
    List<String> m = assertGroupFails(BrokenProviders.AcceptsUnclaimedKit.class, "refusals",
        "which its capabilities do not claim");
    for (String claim : List.of("using dropout,", "using backward (training),", "using grouped-query attention,",
        "using dtype fp16,", "using head dim 65 > 64,")) {
      assertThat(m).anySatisfy(x -> assertThat(x).contains(claim));
    }
  }

  @Test
  void refusingByThrowingFailsRefusals() {
    List<String> m = assertGroupFails(BrokenProviders.ThrowsInsteadOfRefusingKit.class, "refusals",
        "notSupportedReasons threw instead of returning reasons: java.lang.UnsupportedOperationException: dropout");
    assertThat(m).hasSize(1);
  }

  @Test
  void nondeterminismFailsDeterminism() {
    assertGroupFails(BrokenProviders.NondeterministicKit.class, "determinism", "gave different bits the next time");
  }

  @Test
  void sharedStateFailsConcurrency() {
    assertGroupFails(BrokenProviders.NotThreadSafeKit.class, "concurrency", "threads at once");
  }

  @Test
  void ignoredDropoutOffsetFailsDropout() {
    List<String> m = assertGroupFails(BrokenProviders.IgnoresDropoutOffsetKit.class, "dropout",
        "differ from the float64 reference");
    assertThat(m).allSatisfy(x -> assertThat(x).doesNotContain("offset=0"));
  }

  @Test
  void wordMaskForByteRequestsFailsDropout() {
    List<String> m = assertGroupFails(BrokenProviders.WordMaskForBytesKit.class, "dropout",
        "differ from the float64 reference");
    assertThat(m).allSatisfy(x -> assertThat(x).contains("byte mask"));
  }

  @Test
  void wrongLseFailsForward() {
    assertGroupFails(BrokenProviders.Log2LseKit.class, "forward", "lse: ");
  }

  @Test
  void nanInFullyMaskedRowsFailsFullyMaskedRows() {
    assertGroupFails(BrokenProviders.NaNInMaskedRowsKit.class, "fullyMaskedRows", "NaN where the reference is not");
  }

  @Test
  void averagedGroupedQueryGradientsFailBackward() {
    List<String> m = assertGroupFails(BrokenProviders.AveragedGqaGradientsKit.class, "backward", "dV: ");
    assertThat(m).allSatisfy(x -> assertThat(x).doesNotContain("Hq=3 Hkv=3"));
  }

  @Test
  void wrongGroupedQueryMappingFailsForward() {
    assertGroupFails(BrokenProviders.WrongGqaMappingKit.class, "forward", "Hkv=2");
  }

  @Test
  void wrongResultsAtTheHeadDimLimitFailForward() {
    assertGroupFails(BrokenProviders.WrongAboveHeadDim64Kit.class, "forward", "E=128");
  }

  @Test
  void writingIntoAnInputFailsForward() {
    assertGroupFails(BrokenProviders.WritesInputKit.class, "forward", "forward wrote into an input");
  }

  @Test
  void inconsistentCapabilitiesFailDeclaration() {
    failures(BrokenProviders.InconsistentDeclarationKit.class, "declaration",
        "backward is claimed but not the log-sum-exp output");
    assertGroupFails(BrokenProviders.InconsistentDeclarationKit.class, "backward",
        "refuses a request its capabilities claim to support: [log-sum-exp output not supported]");
  }

  @Test
  void unavailableProviderIsSkippedNotFailed() {
    EngineExecutionResults results = run(Map.of(), selectClass(BrokenProviders.UnavailableKit.class));
    assertThat(failureMessages(results)).isEmpty();
    assertThat(results.allEvents().aborted().stream().map(Event::toString).toList()).hasSize(9);
  }

  @Test
  void aGroupOverriddenWithoutTestFactoryIsLeftOut() {
    EngineExecutionResults results = run(Map.of(Settings.CASE, "Lq=29 Lk=11"),
        selectClass(BrokenProviders.WithoutConcurrencyKit.class));
    assertThat(failureMessages(results)).isEmpty();
    assertThat(results.containerEvents().started().stream().map(e -> e.getTestDescriptor().getDisplayName()))
        .contains("forward()").doesNotContain("concurrency()");
  }

  @Test
  void aSeedReproducesTheSameFailure() {
    List<String> first = assertGroupFails(BrokenProviders.OffByOneCausalKit.class, "forward", "worst at");
    List<String> second = assertGroupFails(BrokenProviders.OffByOneCausalKit.class, "forward", "worst at");
    assertThat(second).isEqualTo(first);
  }

  @Test
  void theCaseFilterRunsOnlyMatchingCases() {
    EngineExecutionResults results = run(Map.of(Settings.CASE, "Lq=29 Lk=11"),
        selectMethod(BrokenProviders.OffByOneCausalKit.class, "forward"));
    List<String> names = results.testEvents().started().stream()
        .map(e -> e.getTestDescriptor().getDisplayName()).toList();
    assertThat(names).isNotEmpty().allSatisfy(n -> assertThat(n).contains("Lq=29 Lk=11"));
    assertThat(failureMessages(results)).anySatisfy(m -> assertThat(m)
        .contains("-Dsdpa4j.conformance.case='fp32 B=2 Hq=3 Hkv=3 Lq=29 Lk=11"));
  }
}
