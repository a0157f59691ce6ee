package dev.sdpa4j.conformance;

import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.TestInstancePostProcessor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Gives each kit instance its {@link Settings}, from JUnit configuration parameters or system properties. */
final class KitExtension implements TestInstancePostProcessor {
  private static final Logger LOG = LoggerFactory.getLogger(AttentionProviderConformanceKit.class);

  KitExtension() {}

  @Override
  public void postProcessTestInstance(Object testInstance, ExtensionContext context) {
    Settings settings = Settings.of(context::getConfigurationParameter, testInstance.getClass());
    ((AttentionProviderConformanceKit) testInstance).settings = settings;
    ExtensionContext.Store store = context.getRoot().getStore(ExtensionContext.Namespace.create(KitExtension.class));
    if (store.get(testInstance.getClass().getName()) == null) {
      store.put(testInstance.getClass().getName(), Boolean.TRUE);
      LOG.info("sdpa4j conformance {}: level {}, seed {}{} (rerun: {} -D{}={})",
          testInstance.getClass().getSimpleName(),
          settings.level().label(), settings.seed(),
          settings.caseFilter().isEmpty() ? "" : ", cases containing '" + settings.caseFilter() + "'",
          settings.rerun(), Settings.SEED, settings.seed());
    }
  }
}
