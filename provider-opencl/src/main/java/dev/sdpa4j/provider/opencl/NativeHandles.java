package dev.sdpa4j.provider.opencl;

import java.lang.reflect.Field;
import org.jocl.NativePointerObject;
import org.jocl.cl_command_queue;
import org.jocl.cl_context;
import org.jocl.cl_device_id;
import org.jocl.cl_mem;

/**
 * The bridge between native OpenCL handles ({@code cl_mem}, {@code cl_command_queue}, {@code cl_context} as
 * {@code long}s, the form the API carries them in) and JOCL's handle objects, which JOCL only creates itself. The one
 * place that reaches into JOCL's internals: {@code NativePointerObject}'s private {@code nativePointer} field (JOCL
 * is an automatic module, so its packages are open to reflection). Wrapping never retains or releases the object.
 */
final class NativeHandles {
  private static final Field NATIVE_POINTER = nativePointerField();

  private NativeHandles() {}

  /** The native handle behind a JOCL object. */
  static long address(NativePointerObject object) {
    return object.getNativePointer();
  }

  static cl_mem mem(long handle) {
    return wrap(new cl_mem(), handle);
  }

  static cl_command_queue queue(long handle) {
    return wrap(new cl_command_queue(), handle);
  }

  static cl_context context(long handle) {
    return wrap(new cl_context(), handle);
  }

  static cl_device_id device(long handle) {
    return wrap(new cl_device_id(), handle);
  }

  private static <T extends NativePointerObject> T wrap(T object, long handle) {
    if (handle == 0) {
      throw new IllegalArgumentException("null OpenCL handle");
    }
    try {
      NATIVE_POINTER.setLong(object, handle);
    } catch (IllegalAccessException e) {
      throw new IllegalStateException("cannot set JOCL's native pointer", e);
    }
    return object;
  }

  private static Field nativePointerField() {
    try {
      Field f = NativePointerObject.class.getDeclaredField("nativePointer");
      f.setAccessible(true);
      return f;
    } catch (ReflectiveOperationException | RuntimeException e) {
      throw new ExceptionInInitializerError("this JOCL version has no accessible NativePointerObject.nativePointer: " + e);
    }
  }
}
