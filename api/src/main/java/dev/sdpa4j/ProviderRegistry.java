package dev.sdpa4j;

import dev.sdpa4j.spi.AttentionProvider;
import dev.sdpa4j.spi.Availability;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.Optional;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.Set;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The providers found on the class path (or module path) and the rules for choosing among them.
 *
 * <p>Discovery never fails: a provider whose class, constructor, static initialiser or native library fails is
 * listed as unavailable with the cause, and the others are unaffected.
 *
 * <p>Choice, for each request: an explicit allow-list (a {@link ProviderScope} on the calling thread, else the
 * system property {@value #PROVIDERS_PROPERTY}, comma-separated) is tried in its own order; without one, providers
 * are tried by {@link AttentionProvider#priority()}, highest first, ties in discovery order. Forbidden providers
 * ({@link Sdpa#forbidProviders}, or the system property {@value #EXCLUDE_PROPERTY}) are never tried. The first
 * provider with no {@linkplain AttentionProvider#notSupportedReasons reasons} against the request runs it. A provider
 * that refuses for reasons of its own gets one more reason naming the providers that would accept the request
 * ({@code "use provider cuda-memeff or math, which accept this request"}). At DEBUG the choice and each rejection
 * are logged, one line each.
 */
public final class ProviderRegistry {
  /** Ordered allow-list of provider names, e.g. {@code cuda-flash,math}. */
  public static final String PROVIDERS_PROPERTY = "sdpa4j.providers";
  /** Provider names never to use, e.g. {@code opencl}. */
  public static final String EXCLUDE_PROPERTY = "sdpa4j.providers.exclude";

  private static final Logger LOG = LoggerFactory.getLogger(ProviderRegistry.class);

  private static final class Global {
    static final ProviderRegistry INSTANCE = load(ServiceLoader.load(AttentionProvider.class));
  }

  private final List<ProviderStatus> statuses;

  private ProviderRegistry(List<ProviderStatus> statuses) {
    this.statuses = List.copyOf(statuses);
  }

  /** The providers found by {@link ServiceLoader} with the thread's context class loader, loaded once. */
  public static ProviderRegistry discovered() {
    return Global.INSTANCE;
  }

  /** Discovers the providers visible to {@code classLoader}. */
  public static ProviderRegistry load(ClassLoader classLoader) {
    return load(ServiceLoader.load(AttentionProvider.class, classLoader));
  }

  /** A registry of the given providers, in this discovery order (for tests and embedding). */
  public static ProviderRegistry of(AttentionProvider... providers) {
    List<ProviderStatus> list = new ArrayList<>();
    for (AttentionProvider p : providers) {
      list.add(statusOf(p, p.getClass().getName(), list.size()));
    }
    return new ProviderRegistry(list);
  }

  private static ProviderRegistry load(ServiceLoader<AttentionProvider> loader) {
    List<ProviderStatus> list = new ArrayList<>();
    Iterator<ServiceLoader.Provider<AttentionProvider>> it = loader.stream().iterator();
    while (true) {
      ServiceLoader.Provider<AttentionProvider> entry;
      try {
        if (!it.hasNext()) {
          break;
        }
        entry = it.next();
      } catch (ServiceConfigurationError | LinkageError e) {
        list.add(failed(describeFailedEntry(e), e, list.size()));
        continue;
      }
      String className;
      try {
        className = entry.type().getName();
      } catch (ServiceConfigurationError | LinkageError e) {
        list.add(failed(describeFailedEntry(e), e, list.size()));
        continue;
      }
      try {
        list.add(statusOf(entry.get(), className, list.size()));
      } catch (ServiceConfigurationError | LinkageError | RuntimeException e) {
        list.add(failed(className, e, list.size()));
      }
    }
    ProviderRegistry registry = new ProviderRegistry(list);
    if (LOG.isDebugEnabled()) {
      LOG.debug("sdpa4j providers found: {}", list.stream()
          .map(s -> s.name() + (s.available() ? "" : " (unavailable: " + s.reason() + ")"))
          .collect(Collectors.joining(", ")));
    }
    return registry;
  }

  private static ProviderStatus statusOf(AttentionProvider p, String className, int index) {
    String name = className;
    try {
      name = p.name();
      Availability a = p.availability();
      return new ProviderStatus(name, className, p, a.available(), a.reason(), p.priority(), index);
    } catch (LinkageError | RuntimeException e) {
      LOG.warn("sdpa4j provider {} failed its availability check: {}", name, e.toString());
      return new ProviderStatus(name, className, null, false, causeText(e), Integer.MIN_VALUE, index);
    }
  }

  private static ProviderStatus failed(String className, Throwable e, int index) {
    LOG.warn("sdpa4j provider {} failed to load: {}", className, causeText(e));
    String simple = className.substring(className.lastIndexOf('.') + 1);
    return new ProviderStatus(simple, className, null, false, "failed to load: " + causeText(e), Integer.MIN_VALUE, index);
  }

  private static String describeFailedEntry(Throwable e) {
    String msg = String.valueOf(e.getMessage());
    int colon = msg.indexOf(": Provider ");
    if (colon >= 0) {
      String rest = msg.substring(colon + ": Provider ".length());
      int space = rest.indexOf(' ');
      return space > 0 ? rest.substring(0, space) : rest;
    }
    return "unknown provider";
  }

  private static String causeText(Throwable e) {
    Throwable root = e;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    return root == e ? e.toString() : e.getClass().getSimpleName() + " caused by " + root;
  }

  /** Every provider found, in discovery order, available or not. */
  public List<ProviderStatus> statuses() {
    return statuses;
  }

  /** The loaded provider of that name, available or not. */
  public Optional<AttentionProvider> find(String name) {
    return statuses.stream().filter(s -> s.name().equals(name) && s.provider() != null)
        .map(ProviderStatus::provider).findFirst();
  }

  /**
   * Every considered provider's verdict on {@code request}, in the order they would be tried, and the one chosen.
   * Never throws for an unsupported request.
   */
  public Selection select(AttentionRequest request) {
    ProviderScope scope = ProviderScope.current();
    List<String> allowed = scope != null && scope.allowed() != null ? scope.allowed() : listProperty(PROVIDERS_PROPERTY);
    String allowSource = scope != null && scope.allowed() != null ? "the provider scope" : "-D" + PROVIDERS_PROPERTY;
    Set<String> forbidden = new java.util.HashSet<>(listProperty(EXCLUDE_PROPERTY) == null ? List.of()
        : listProperty(EXCLUDE_PROPERTY));
    if (scope != null) {
      forbidden.addAll(scope.forbidden());
    }

    List<Verdict> verdicts = new ArrayList<>();
    List<ProviderStatus> order;
    if (allowed != null) {
      order = new ArrayList<>();
      for (String name : allowed) {
        Optional<ProviderStatus> s = statuses.stream().filter(p -> p.name().equals(name)).findFirst();
        if (s.isPresent()) {
          order.add(s.get());
        } else {
          verdicts.add(new Verdict(name, List.of("named in " + allowSource + " but not found (found: "
              + statuses.stream().map(ProviderStatus::name).collect(Collectors.joining(", ")) + ")")));
        }
      }
      for (ProviderStatus s : statuses) {
        if (!allowed.contains(s.name())) {
          verdicts.add(new Verdict(s.name(), List.of("not in the allow-list of " + allowSource + " " + allowed)));
        }
      }
    } else {
      order = statuses.stream()
          .sorted(Comparator.comparingInt(ProviderStatus::priority).reversed()
              .thenComparingInt(ProviderStatus::discoveryIndex))
          .toList();
    }

    AttentionProvider chosen = null;
    List<Verdict> considered = new ArrayList<>();
    List<Integer> refusedByCapability = new ArrayList<>();
    for (ProviderStatus s : order) {
      List<String> reasons;
      if (forbidden.contains(s.name())) {
        reasons = List.of("forbidden by " + (scope != null && scope.forbidden().contains(s.name())
            ? "the provider scope" : "-D" + EXCLUDE_PROPERTY));
      } else if (!s.available() || s.provider() == null) {
        reasons = List.of("unavailable: " + s.reason());
      } else if (chosen != null) {
        reasons = List.of("a higher-ranked provider was chosen");
      } else {
        reasons = safeReasons(s.provider(), request);
        if (reasons.isEmpty()) {
          chosen = s.provider();
        } else {
          refusedByCapability.add(considered.size());
        }
      }
      considered.add(new Verdict(s.name(), reasons));
    }
    if (!refusedByCapability.isEmpty()) {
      List<String> acceptors = statuses.stream()
          .filter(s -> s.available() && s.provider() != null && !forbidden.contains(s.name()))
          .filter(s -> safeReasons(s.provider(), request).isEmpty())
          .map(ProviderStatus::name)
          .toList();
      for (int i : refusedByCapability) {
        Verdict v = considered.get(i);
        if (!acceptors.isEmpty()) {
          List<String> withHint = new ArrayList<>(v.reasons());
          withHint.add("use provider " + String.join(" or ", acceptors) + ", which "
              + (acceptors.size() == 1 ? "accepts" : "accept") + " this request");
          considered.set(i, new Verdict(v.provider(), withHint));
        }
      }
    }
    considered.addAll(verdicts);
    Selection selection = new Selection(chosen, considered);
    log(request, selection);
    return selection;
  }

  /** The provider that runs {@code request}; throws {@link NoSuitableProviderException} listing every reason. */
  public AttentionProvider choose(AttentionRequest request) {
    Selection selection = select(request);
    return selection.provider()
        .orElseThrow(() -> new NoSuitableProviderException(request.describe(), selection.verdicts()));
  }

  /** Chooses a provider for {@code request} and runs its forward pass. */
  public AttentionResult forward(AttentionRequest request) {
    AttentionProvider provider = choose(request);
    provider.forward(request);
    return new AttentionResult(request, provider);
  }

  private static List<String> safeReasons(AttentionProvider p, AttentionRequest request) {
    try {
      List<String> reasons = p.notSupportedReasons(request);
      return reasons == null ? List.of("notSupportedReasons returned null") : reasons;
    } catch (LinkageError | RuntimeException e) {
      return List.of("notSupportedReasons failed: " + e);
    }
  }

  private static void log(AttentionRequest request, Selection selection) {
    if (!LOG.isDebugEnabled()) {
      return;
    }
    LOG.debug("sdpa4j chose {} for {}", selection.provider().map(AttentionProvider::name).orElse("no provider"),
        request.describe());
    for (Verdict v : selection.verdicts()) {
      if (!v.accepted()) {
        LOG.debug("sdpa4j rejected {}: {}", v.provider(), String.join("; ", v.reasons()));
      }
    }
  }

  private static List<String> listProperty(String key) {
    String value = System.getProperty(key);
    if (value == null || value.isBlank()) {
      return null;
    }
    return Arrays.stream(value.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
  }
}
