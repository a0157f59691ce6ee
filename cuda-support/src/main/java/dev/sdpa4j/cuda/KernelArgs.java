package dev.sdpa4j.cuda;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * The arguments of one kernel launch, in the order the kernel declares them, each as its bytes (native order).
 * Immutable once built; the native copies {@code cuLaunchKernel} needs are made and freed inside
 * {@link CudaFunction#launch}.
 */
public final class KernelArgs {
  private final List<byte[]> values;

  private KernelArgs(List<byte[]> values) {
    this.values = List.copyOf(values);
  }

  public static Builder builder() {
    return new Builder();
  }

  List<byte[]> values() {
    return values;
  }

  /** Builds {@link KernelArgs}. */
  public static final class Builder {
    private final List<byte[]> values = new ArrayList<>();

    private Builder() {}

    private ByteBuffer buf(int n) {
      return ByteBuffer.allocate(n).order(ByteOrder.nativeOrder());
    }

    /** A device pointer ({@code CUdeviceptr}, {@code T*}). */
    public Builder pointer(long address) {
      return i64(address);
    }

    public Builder i32(int v) {
      values.add(buf(4).putInt(v).array());
      return this;
    }

    public Builder i64(long v) {
      values.add(buf(8).putLong(v).array());
      return this;
    }

    public Builder f32(float v) {
      values.add(buf(4).putFloat(v).array());
      return this;
    }

    /** A struct passed by value: its bytes exactly as the kernel's C layout (native order, with padding). */
    public Builder struct(byte[] bytes) {
      values.add(bytes.clone());
      return this;
    }

    public KernelArgs build() {
      return new KernelArgs(values);
    }
  }
}
