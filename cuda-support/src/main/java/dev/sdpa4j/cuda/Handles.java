package dev.sdpa4j.cuda;

import org.bytedeco.cuda.cudart.CUctx_st;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.javacpp.Pointer;

/** Turns raw native addresses into JavaCPP pointers, and back. */
final class Handles {
  private Handles() {}

  /** A non-owning JavaCPP pointer at {@code address}. */
  static Pointer at(long nativeAddress) {
    // (the parameter must not be called "address": inside the subclass that name is Pointer's field)
    return new Pointer() {
      {
        this.address = nativeAddress;
      }
    };
  }

  static CUstream_st stream(long handle) {
    return new CUstream_st(at(handle));
  }

  static CUctx_st context(long handle) {
    return new CUctx_st(at(handle));
  }
}
