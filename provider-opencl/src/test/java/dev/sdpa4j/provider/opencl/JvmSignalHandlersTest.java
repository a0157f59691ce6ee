package dev.sdpa4j.provider.opencl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * PoCL's LLVM installs crash handlers for SIGSEGV, SIGBUS and SIGILL when its first context is created, which made
 * a JVM running compiled code die with "Segmentation fault" now and then (seen in CI, 2026-11-26). After every
 * OpenCL entry point of the provider the JVM's handlers must be in place again.
 */
class JvmSignalHandlersTest {

  @Test
  void theJvmsHandlersAreInPlaceAfterContextsAndBuilds() {
    Fixtures.assumeOpenCl();
    JvmSignalHandlers handlers = JvmSignalHandlers.INSTANCE;
    assumeTrue(handlers.active(), "sigaction not available here");
    ClDevice device = ClDevice.discover().getFirst();
    ContextRuntime rt = ContextRuntime.create(device, Optional.empty());
    KernelProgram.compile(rt.context(), device, "__kernel void k(__global float* x) { x[0] = 1.0f; }",
        "-DSIGNAL_TEST=" + System.nanoTime(), Optional.empty());
    assertThat(handlers.restore("the test")).as("handlers replaced and not restored by the provider").isEmpty();
  }
}
