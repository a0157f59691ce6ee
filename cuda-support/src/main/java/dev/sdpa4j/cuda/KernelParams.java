package dev.sdpa4j.cuda;

import java.util.List;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.PointerPointer;

/**
 * A reusable native {@code void**} kernel-parameter array: each launch copies its argument values into one buffer
 * (each value at a 16-byte-aligned offset, at least 8 bytes) and points the array's entries at them. The buffers grow
 * when a launch needs more and are reused otherwise, so a launch allocates nothing. Not thread-safe: one per thread
 * ({@link CallScratch}); the contents are valid until the next {@link #of} call.
 */
final class KernelParams {
  static final int ALIGN = 16;

  private BytePointer values = new BytePointer(1024);
  private LongPointer array = new LongPointer(16);
  private PointerPointer<?> view = new PointerPointer<>(array);

  /** The parameter array of {@code args}, as the driver's {@code void** kernelParams}. */
  PointerPointer<?> of(KernelArgs args) {
    List<byte[]> v = args.values();
    long bytes = 0;
    for (byte[] x : v) {
      bytes += slot(x);
    }
    if (bytes > values.capacity()) {
      values.close();
      values = new BytePointer(Math.max(bytes, 2 * values.capacity()));
    }
    if (v.size() > array.capacity()) {
      array.close();
      array = new LongPointer(Math.max(v.size(), 2 * array.capacity()));
      view = new PointerPointer<>(array);
    }
    long base = values.address();
    long off = 0;
    for (int i = 0; i < v.size(); i++) {
      byte[] x = v.get(i);
      values.position(off).put(x, 0, x.length);
      array.put(i, base + off);
      off += slot(x);
    }
    values.position(0);
    return view;
  }

  private static long slot(byte[] x) {
    return (Math.max(8, x.length) + ALIGN - 1) / ALIGN * ALIGN;
  }
}
