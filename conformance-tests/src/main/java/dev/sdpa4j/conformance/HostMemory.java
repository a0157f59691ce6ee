package dev.sdpa4j.conformance;

import dev.sdpa4j.Device;
import dev.sdpa4j.Storage;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** {@link TensorMemory#host()}: native segments in automatic arenas. */
final class HostMemory implements TensorMemory {
  static final HostMemory INSTANCE = new HostMemory();

  private HostMemory() {}

  @Override
  public Device device() {
    return Device.HOST;
  }

  @Override
  public Storage allocate(long byteSize) {
    return new Storage.Host(Arena.ofAuto().allocate(byteSize, 64));
  }

  @Override
  public void copyToDevice(MemorySegment source, Storage target) {
    segment(target).copyFrom(source);
  }

  @Override
  public void copyToHost(Storage source, MemorySegment target) {
    target.copyFrom(segment(source));
  }

  @Override
  public void release(Storage storage) {
    segment(storage); // an automatic arena: the garbage collector frees the segment
  }

  private static MemorySegment segment(Storage s) {
    if (s instanceof Storage.Host(MemorySegment segment)) {
      return segment;
    }
    throw new IllegalArgumentException("not host memory: " + s);
  }
}
