package dev.sdpa4j;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdpa4j.spi.AttentionProvider;
import dev.sdpa4j.spi.Availability;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** ServiceLoader discovery survives providers that fail in every way a provider can fail. */
class DiscoveryTest {

  public static class Good extends FakeProvider {
    public Good() {
      super("good", 1, FakeProvider.everything());
    }
  }

  public static class ThrowingConstructor extends FakeProvider {
    public ThrowingConstructor() {
      super("throwing-constructor", 9, FakeProvider.everything());
      throw new IllegalStateException("constructor exploded");
    }
  }

  public static class MissingNativeLibrary extends FakeProvider {
    static {
      System.loadLibrary("sdpa4j-test-no-such-library");
    }

    public MissingNativeLibrary() {
      super("missing-native", 9, FakeProvider.everything());
    }
  }

  public static class ThrowingAvailability extends FakeProvider {
    public ThrowingAvailability() {
      super("throwing-availability", 9, FakeProvider.everything());
    }

    @Override
    public Availability availability() {
      throw new UnsatisfiedLinkError("libcuda.so.1: cannot open shared object file");
    }
  }

  public static class Unavailable extends FakeProvider {
    public Unavailable() {
      super("unavailable", 9, FakeProvider.everything(), Availability.unavailable("no CUDA driver: libcuda.so.1 not found"), 0);
    }
  }

  @Test
  void brokenProvidersAreListedAndNeverBreakTheOthers(@TempDir Path dir) throws Exception {
    Path services = dir.resolve("META-INF/services/" + AttentionProvider.class.getName());
    Files.createDirectories(services.getParent());
    Files.write(services, List.of(
        ThrowingConstructor.class.getName(),
        "dev.sdpa4j.NoSuchProviderClass",
        MissingNativeLibrary.class.getName(),
        ThrowingAvailability.class.getName(),
        Unavailable.class.getName(),
        Good.class.getName()));
    try (var loader = new URLClassLoader(new URL[] {dir.toUri().toURL()}, getClass().getClassLoader())) {
      ProviderRegistry registry = ProviderRegistry.load(loader);

      List<ProviderStatus> statuses = registry.statuses();
      assertThat(statuses).extracting(ProviderStatus::available)
          .containsExactly(false, false, false, false, false, true);
      assertThat(statuses.get(0).reason()).contains("constructor exploded");
      assertThat(statuses.get(1).className()).isEqualTo("dev.sdpa4j.NoSuchProviderClass");
      assertThat(statuses.get(1).reason()).contains("not found");
      assertThat(statuses.get(2).reason()).contains("sdpa4j-test-no-such-library");
      assertThat(statuses.get(3).name()).isEqualTo("throwing-availability");
      assertThat(statuses.get(3).reason()).contains("libcuda.so.1");
      assertThat(statuses.get(4).reason()).isEqualTo("no CUDA driver: libcuda.so.1 not found");

      AttentionRequest request = AttentionRequest.create(Tensors.filled(DType.FLOAT32, 1, 1, 1, 2, 4),
          Tensors.filled(DType.FLOAT32, 1, 1, 1, 2, 4), Tensors.filled(DType.FLOAT32, 1, 1, 1, 2, 4),
          Tensors.filled(DType.FLOAT32, 0, 1, 1, 2, 4), null, AttentionOptions.DEFAULTS);
      Selection selection = registry.select(request);
      assertThat(selection.chosen().name()).isEqualTo("good");
      assertThat(selection.verdicts()).filteredOn(v -> !v.accepted()).hasSize(5)
          .allSatisfy(v -> assertThat(v.reasons().get(0)).startsWith("unavailable: "));
    }
  }

  @Test
  void classPathWithoutProvidersFindsNone(@TempDir Path dir) throws Exception {
    try (var loader = new URLClassLoader(new URL[] {dir.toUri().toURL()}, null)) {
      assertThat(ProviderRegistry.load(loader).statuses()).isEmpty();
    }
  }
}
