package dev.sdpa4j;

/**
 * A request that is wrong in itself (shape, dtype, value, memory), rejected before any provider runs. The message
 * names the argument and what was expected.
 */
public class AttentionArgumentException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;
  private final String argument;

  public AttentionArgumentException(String argument, String problem) {
    super(argument + ": " + problem);
    this.argument = argument;
  }

  /** The argument at fault, e.g. {@code "key"} or {@code "options.dropoutP"}. */
  public String argument() {
    return argument;
  }
}
