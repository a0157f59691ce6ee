/**
 * The conformance kit: {@link dev.sdpa4j.conformance.AttentionProviderConformanceKit}, the JUnit class a provider's
 * test extends to be checked against the float64 reference of {@code provider-math}.
 */
module dev.sdpa4j.conformance {
  requires transitive dev.sdpa4j;
  requires transitive org.junit.jupiter.api;
  requires dev.sdpa4j.provider.math;
  requires org.slf4j;

  exports dev.sdpa4j.conformance;
  // JUnit discovers and invokes the kit's test factories and its extension reflectively
  opens dev.sdpa4j.conformance to org.junit.platform.commons;
}
