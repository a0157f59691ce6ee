package dev.sdpa4j.provider.opencl;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Compiled kernel binaries on disk, one file per (device, driver, source, build options), named by the SHA-256 of
 * all four. Safe for concurrent processes: a binary is written to a temporary file in the same directory and moved
 * into place atomically, so a reader sees a whole file or none. A cache that cannot be read or written is skipped
 * with a debug log line, never an error.
 */
final class BinaryCache {
  /** The system property naming the cache directory; {@code none} turns the cache off. */
  static final String PROPERTY = "sdpa4j.opencl.cacheDir";

  private static final Logger LOG = LoggerFactory.getLogger(BinaryCache.class);

  private final Path dir;

  BinaryCache(Path dir) {
    this.dir = dir;
  }

  /** The cache at {@value #PROPERTY}, default {@code ${user.home}/.cache/sdpa4j/opencl}; empty when turned off. */
  static Optional<BinaryCache> fromSystemProperties() {
    String configured = System.getProperty(PROPERTY);
    if ("none".equalsIgnoreCase(configured)) {
      return Optional.empty();
    }
    Path dir = configured != null && !configured.isBlank() ? Path.of(configured)
        : Path.of(System.getProperty("user.home"), ".cache", "sdpa4j", "opencl");
    return Optional.of(new BinaryCache(dir));
  }

  /** The cache key of a program: a hex SHA-256 over the device's identity, the source and the options. */
  static String key(ClDevice device, String source, String options) {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      for (String part : new String[] {device.platformName(), device.platformVersion(), device.name(),
          device.vendor(), device.driverVersion(), device.deviceVersion(), options, source}) {
        md.update(part.getBytes(StandardCharsets.UTF_8));
        md.update((byte) 0);
      }
      return HexFormat.of().formatHex(md.digest());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 missing from the JDK", e);
    }
  }

  /** The binary stored under {@code key}, if any. */
  Optional<byte[]> load(String key) {
    Path file = dir.resolve(key + ".bin");
    try {
      return Files.isRegularFile(file) ? Optional.of(Files.readAllBytes(file)) : Optional.empty();
    } catch (IOException e) {
      LOG.debug("cannot read cached kernel binary {}: {}", file, e.toString());
      return Optional.empty();
    }
  }

  /** Stores {@code binary} under {@code key}, atomically replacing any file there. */
  void store(String key, byte[] binary) {
    Path file = dir.resolve(key + ".bin");
    Path tmp = null;
    try {
      Files.createDirectories(dir);
      tmp = Files.createTempFile(dir, key + ".", ".tmp");
      Files.write(tmp, binary);
      try {
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
      }
      tmp = null;
    } catch (IOException e) {
      LOG.debug("cannot cache kernel binary in {}: {}", dir, e.toString());
    } finally {
      if (tmp != null) {
        try {
          Files.deleteIfExists(tmp);
        } catch (IOException ignored) {
          // a stale temporary file is harmless; the next store replaces the target atomically
        }
      }
    }
  }

  /** Removes a binary that failed to load, so the next run rebuilds it. */
  void evict(String key) {
    try {
      Files.deleteIfExists(dir.resolve(key + ".bin"));
    } catch (IOException e) {
      LOG.debug("cannot remove cached kernel binary {}: {}", key, e.toString());
    }
  }
}
