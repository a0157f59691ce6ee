package dev.sdpa4j.cuda;

import org.bytedeco.cuda.cudart.CUlaunchAttribute;
import org.bytedeco.cuda.cudart.CUlaunchConfig;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.SizeTPointer;

/**
 * Native memory for the driver calls on a provider's call path (kernel launches, pointer checks), allocated once per
 * thread and reused: a JavaCPP allocation registers a deallocator and asks for the process's memory use
 * ({@code Pointer.physicalBytesInaccurate}) every time, and Java's foreign-memory API, which avoids that, ran a call
 * slower than before until the JIT had compiled it (provider-cuda-flash/KERNEL_NOTES.md, v7). Each buffer is used only
 * inside one synchronous driver call (a launch copies its arguments), on the thread that owns it.
 */
final class CallScratch {
  private static final ThreadLocal<CallScratch> LOCAL = ThreadLocal.withInitial(CallScratch::new);

  final KernelParams params = new KernelParams();
  final CUlaunchConfig config = new CUlaunchConfig();
  final CUlaunchAttribute attribute = new CUlaunchAttribute();
  final IntPointer int1 = new IntPointer(1);
  final SizeTPointer size1 = new SizeTPointer(1);

  private CallScratch() {}

  /** The calling thread's scratch. */
  static CallScratch get() {
    return LOCAL.get();
  }
}
