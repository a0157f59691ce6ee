package dev.sdpa4j.conformance;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdpa4j.DType;
import org.junit.jupiter.api.Test;
import org.opentest4j.AssertionFailedError;

/**
 * The bad-input check cannot be failed by a provider (the API validates before any provider runs), so its failure
 * paths are proven here with calls that are not malformed.
 */
class CheckerTest {
  private final Checker checker = new Checker(new ReferenceProvider(), TensorMemory.host(),
      new Settings(Level.QUICK, 7, "", "mvn test -Dtest=CheckerTest"));
  private final ForwardCase base = ForwardCase.base(DType.FLOAT32, 16, true);

  @Test
  void aValidCallPresentedAsMalformedFails() {
    BadInputs.BadCall valid = new BadInputs.BadCall("a valid call", false, (p, r, m) -> r.forward(p.request()));
    assertThatThrownBy(() -> checker.badInput(valid, base)).isInstanceOf(AssertionFailedError.class)
        .hasMessageContaining("a malformed call (a valid call) was accepted")
        .hasMessageContaining("-Dsdpa4j.conformance.seed=7");
  }

  @Test
  void aRejectionOfTheWrongTypeFails() {
    BadInputs.BadCall wrong = new BadInputs.BadCall("an IllegalStateException", false, (p, r, m) -> {
      throw new IllegalStateException("not an argument error");
    });
    assertThatThrownBy(() -> checker.badInput(wrong, base)).isInstanceOf(AssertionFailedError.class)
        .hasMessageContaining("must fail with AttentionArgumentException, got java.lang.IllegalStateException");
  }

  @Test
  void aRejectionAfterWritingTheOutputFails() {
    BadInputs.BadCall late = new BadInputs.BadCall("rejected after running", false, (p, r, m) -> {
      r.forward(p.request());
      throw new dev.sdpa4j.AttentionArgumentException("query", "rejected too late");
    });
    assertThatThrownBy(() -> checker.badInput(late, base)).isInstanceOf(AssertionFailedError.class)
        .hasMessageContaining("the provider ran a malformed call");
  }
}
