package dev.sdpa4j.conformance;

import dev.sdpa4j.Device;
import dev.sdpa4j.Storage;
import java.lang.foreign.MemorySegment;

/**
 * The memory the kit puts a provider's tensors in: it allocates {@link Storage} on one device and copies bytes
 * between the host and that storage. The kit builds every tensor (inputs, poisoned outputs) on the host first, copies
 * it byte for byte into a storage of the same size, and views that storage with the same shape and element strides,
 * so any layout the kit tests (contiguous, {@code [B, L, H, E]}, padded, broadcast masks) reaches the provider
 * unchanged.
 *
 * <p>The default, {@link #host()}, gives host memory; a device provider that accepts host tensors can keep it. A
 * provider that only takes its own device's memory returns an implementation for that device from
 * {@link AttentionProviderConformanceKit#memory()}.
 *
 * <p>The kit calls these methods from one test thread at a time, never while a provider call on the same storage is
 * running.
 */
public interface TensorMemory {

  /** The device whose memory this allocates; {@link Device#HOST} for host memory. */
  Device device();

  /** A new storage of {@code byteSize} bytes (at least 1); its contents are unspecified. */
  Storage allocate(long byteSize);

  /** Copies all of {@code source} (exactly {@code target.byteSize()} bytes) into {@code target}. */
  void copyToDevice(MemorySegment source, Storage target);

  /**
   * Copies all of {@code source} into {@code target} (exactly {@code source.byteSize()} bytes). It must see every
   * write of a provider call that has returned: synchronise the provider's stream or queue first where needed.
   */
  void copyToHost(Storage source, MemorySegment target);

  /** Frees a storage made by {@link #allocate}; the kit calls it once per storage when a case is done. */
  void release(Storage storage);

  /** Host memory: each storage is a fresh native segment, freed by the garbage collector. */
  static TensorMemory host() {
    return HostMemory.INSTANCE;
  }
}
