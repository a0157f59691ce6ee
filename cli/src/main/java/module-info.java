/** The {@code sdpa4j} command: {@code info} and {@code run}. */
module dev.sdpa4j.cli {
  requires dev.sdpa4j;
  requires dev.sdpa4j.provider.math;
  requires info.picocli;
  requires java.management;
  requires jdk.management;

  opens dev.sdpa4j.cli to info.picocli;

  uses dev.sdpa4j.spi.AttentionProvider;
}
