package dev.sdpa4j;

/** A provider failed while running a request it had accepted (a device error, out of device memory). */
public class ProviderException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public ProviderException(String message) {
    super(message);
  }

  public ProviderException(String message, Throwable cause) {
    super(message, cause);
  }
}
