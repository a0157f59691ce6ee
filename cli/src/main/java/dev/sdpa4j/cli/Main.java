package dev.sdpa4j.cli;

import dev.sdpa4j.AttentionArgumentException;
import dev.sdpa4j.NoSuitableProviderException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code sdpa4j} command. */
@Command(name = "sdpa4j", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
    description = "Scaled dot-product attention for the JVM: list providers, run and check attention.",
    subcommands = {InfoCommand.class, RunCommand.class, CommandLine.HelpCommand.class})
public final class Main {
  private Main() {}

  public static void main(String[] args) {
    System.exit(commandLine().execute(args));
  }

  /** The configured command line, for tests. */
  static CommandLine commandLine() {
    return new CommandLine(new Main())
        .setCaseInsensitiveEnumValuesAllowed(true)
        .setExecutionExceptionHandler((e, commandLine, parseResult) -> {
          if (e instanceof AttentionArgumentException || e instanceof NoSuitableProviderException) {
            commandLine.getErr().println("sdpa4j: " + e.getMessage());
            return 2;
          }
          throw e;
        });
  }

  /** The version from the jar manifest. */
  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      String v = Main.class.getPackage().getImplementationVersion();
      return new String[] {"sdpa4j " + (v == null ? "(development build)" : v)};
    }
  }
}
