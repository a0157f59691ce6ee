package dev.sdpa4j;

import java.util.List;

/** No provider accepts a request. The message names the request and lists every provider's reasons. */
public class NoSuitableProviderException extends UnsupportedOperationException {
  private static final long serialVersionUID = 1L;
  private final transient List<Verdict> verdicts;

  public NoSuitableProviderException(String requestDescription, List<Verdict> verdicts) {
    super(message(requestDescription, verdicts));
    this.verdicts = List.copyOf(verdicts);
  }

  /** Every provider's verdict, in ranking order. */
  public List<Verdict> verdicts() {
    return verdicts;
  }

  private static String message(String request, List<Verdict> verdicts) {
    StringBuilder s = new StringBuilder("no attention provider supports this request: ").append(request);
    if (verdicts.isEmpty()) {
      s.append("\n  (no providers found: add a provider jar such as sdpa4j-provider-math to the class path)");
    }
    for (Verdict v : verdicts) {
      s.append("\n  ").append(v.provider()).append(": ").append(String.join("; ", v.reasons()));
    }
    return s.toString();
  }
}
