package dev.sdpa4j;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * The memory behind a tensor: a host segment, or a region of a device buffer owned by the caller. sdpa4j never
 * frees a caller's storage.
 */
public sealed interface Storage permits Storage.Host, Storage.DeviceBuffer {

  /** The memory space. */
  Device device();

  /** Bytes addressable from this storage's start; every element of a tensor must lie within them. */
  long byteSize();

  /** Host memory. Element 0 of a tensor is at byte 0 of the segment (slice the segment for an offset). */
  record Host(MemorySegment segment) implements Storage {
    public Host {
      Objects.requireNonNull(segment, "segment");
    }

    @Override
    public Device device() {
      return Device.HOST;
    }

    @Override
    public long byteSize() {
      return segment.byteSize();
    }
  }

  /**
   * A caller's device buffer: a CUDA device pointer, or an OpenCL {@code cl_mem} handle, plus a byte offset into
   * it. Used with no copy, on the stream or queue given in {@link AttentionOptions#stream()}.
   *
   * @param device     the device holding the buffer
   * @param handle     the CUDA device pointer, or the native {@code cl_mem} handle
   * @param byteOffset where element 0 of the tensor lies, in bytes from the handle's start
   * @param byteSize   bytes usable from {@code byteOffset}
   */
  record DeviceBuffer(Device device, long handle, long byteOffset, long byteSize) implements Storage {
    public DeviceBuffer {
      Objects.requireNonNull(device, "device");
      if (device.platform() == Platform.HOST) {
        throw new IllegalArgumentException("a device buffer must be on a CUDA or OpenCL device, got " + device);
      }
      if (handle == 0) {
        throw new IllegalArgumentException("device buffer handle is null");
      }
      if (byteOffset < 0 || byteSize < 0) {
        throw new IllegalArgumentException("byteOffset and byteSize must be >= 0, got " + byteOffset + ", " + byteSize);
      }
    }
  }
}
