package dev.sdpa4j.provider.opencl;

import com.google.auto.service.AutoService;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.AttentionShape;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.DType;
import dev.sdpa4j.Device;
import dev.sdpa4j.MaskKind;
import dev.sdpa4j.Platform;
import dev.sdpa4j.ProviderException;
import dev.sdpa4j.Storage;
import dev.sdpa4j.Tensor;
import dev.sdpa4j.spi.AttentionProvider;
import dev.sdpa4j.spi.Availability;
import dev.sdpa4j.spi.Capabilities;
import dev.sdpa4j.spi.DeviceInfo;
import dev.sdpa4j.spi.Determinism;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code opencl}: FlashAttention-2-shaped attention on every OpenCL device of every platform (GPUs of any vendor,
 * CPUs through PoCL), through JOCL. Forward and backward, fp32/fp16/bf16 storage with fp32 accumulation, head dims
 * up to 256, causal (both alignments), boolean and additive masks, dropout ({@link dev.sdpa4j.Dropout}), GQA,
 * log-sum-exp, arbitrary element strides; bit-reproducible (no atomics).
 *
 * <p>Tensors may be on the host (copied, or used in place on CPU devices) or in a caller's {@code cl_mem} buffers
 * ({@code Storage.DeviceBuffer} with platform OPENCL, handle = {@code cl_mem}); then the work runs with no copy on
 * the caller's {@code cl_command_queue} when {@code options.stream()} names one (the call returns once the work is
 * flushed to it), else on a queue of the provider's in the buffers' context (the call returns when it is done).
 *
 * <p>Priority 100 when a GPU device exists, else -10 (the CPU provider {@code math} wins on CPU-only machines).
 * Discovery never throws: a missing OpenCL library or ICD makes the provider unavailable with the reason.
 */
@AutoService(AttentionProvider.class)
public final class OpenClProvider implements AttentionProvider {
  private static final Logger LOG = LoggerFactory.getLogger(OpenClProvider.class);

  /** Discovery's outcome, computed once. */
  private record State(Availability availability, OpenClRuntime runtime, List<DeviceInfo> devices) {}

  private volatile State state;

  /** Cheap: discovery runs at the first query. */
  public OpenClProvider() {}

  @Override
  public String name() {
    return "opencl";
  }

  @Override
  public int priority() {
    State s = state();
    return s.runtime() != null && s.runtime().devices().stream().anyMatch(ClDevice::isGpu) ? 100 : -10;
  }

  @Override
  public Availability availability() {
    return state().availability();
  }

  @Override
  public List<DeviceInfo> devices() {
    return state().devices();
  }

  /** The device holding the tensors; for host tensors the best device: GPUs first, then discovery order. */
  @Override
  public Optional<DeviceInfo> deviceFor(AttentionRequest request) {
    State s = state();
    if (request.device().platform() == Platform.HOST) {
      return s.devices().stream()
          .min(Comparator.comparingInt(d -> s.runtime().devices().get(d.device().index()).isGpu() ? 0 : 1));
    }
    return s.devices().stream().filter(d -> d.device().equals(request.device())).findFirst();
  }

  @Override
  public List<String> notSupportedReasons(AttentionRequest request) {
    List<String> reasons = new ArrayList<>(AttentionProvider.super.notSupportedReasons(request));
    State s = state();
    if (s.runtime() == null || !reasons.isEmpty()) {
      return reasons;
    }
    ClDevice device = s.runtime().devices().get(deviceFor(request).orElseThrow().device().index());
    AttentionShape shape = request.shape();
    if (shape.queryLength() > Integer.MAX_VALUE / 2 || shape.keyLength() > Integer.MAX_VALUE / 2) {
      reasons.add("sequence length above " + Integer.MAX_VALUE / 2 + " not supported");
    }
    if (shape.batch() * shape.queryHeads() > Integer.MAX_VALUE) {
      reasons.add("batch x heads above " + Integer.MAX_VALUE + " not supported");
    }
    List<Tensor> tensors = new ArrayList<>(List.of(request.query(), request.key(), request.value(), request.output()));
    request.lse().ifPresent(tensors::add);
    request.mask().ifPresent(tensors::add);
    String[] names = {"query", "key", "value", "output", "lse", "mask"};
    for (int i = 0; i < tensors.size(); i++) {
      Tensor t = tensors.get(i);
      String name = i == 4 && request.lse().isEmpty() ? "mask" : names[i];
      if (t.storage() instanceof Storage.DeviceBuffer d && d.byteOffset() % t.dtype().byteSize() != 0) {
        reasons.add(name + " buffer byte offset " + d.byteOffset() + " is not a multiple of its element size "
            + t.dtype().byteSize());
      }
      long bytes = t.elementSpan() * t.dtype().byteSize();
      if (t.device().platform() == Platform.HOST && bytes > device.maxAllocBytes()) {
        reasons.add(name + " needs a " + bytes + "-byte buffer but " + device.name() + " allows at most "
            + device.maxAllocBytes());
      }
    }
    return reasons;
  }

  @Override
  public void forward(AttentionRequest request) {
    OpenClRuntime.Target target = target(request);
    try {
      AttentionLaunch.forward(request, target.runtime(), target.queue(), target.ownQueue());
    } finally {
      target.release();
      JvmSignalHandlers.INSTANCE.restore("forward");
    }
  }

  @Override
  public void backward(BackwardRequest request) {
    OpenClRuntime.Target target = target(request.forward());
    try {
      AttentionLaunch.backward(request, target.runtime(), target.queue(), target.ownQueue());
    } finally {
      target.release();
      JvmSignalHandlers.INSTANCE.restore("backward");
    }
  }

  private OpenClRuntime.Target target(AttentionRequest request) {
    State s = state();
    if (s.runtime() == null) {
      throw new ProviderException("opencl provider unavailable: " + s.availability().reason());
    }
    DeviceInfo info = deviceFor(request).orElseThrow(() -> new ProviderException(
        "no OpenCL device of this provider holds tensors in " + request.device() + " memory"));
    ClDevice device = s.runtime().devices().get(info.device().index());
    return s.runtime().target(device, request.query(), request.options().stream());
  }

  private State state() {
    State s = state;
    if (s == null) {
      synchronized (this) {
        s = state;
        if (s == null) {
          s = discover();
          state = s;
        }
      }
    }
    return s;
  }

  private static State discover() {
    List<ClDevice> found;
    try {
      found = ClDevice.discover();
    } catch (LinkageError e) {
      return unavailable("OpenCL library not loadable (install an OpenCL ICD loader and a driver, e.g. "
          + "ocl-icd-libopencl1 and pocl-opencl-icd): " + e);
    } catch (OpenClException e) {
      if (e.status() == -1001) {
        return unavailable("no OpenCL platform found (CL_PLATFORM_NOT_FOUND_KHR): install an OpenCL driver (ICD)");
      }
      return unavailable("OpenCL discovery failed: " + e.getMessage());
    } catch (RuntimeException e) {
      return unavailable("OpenCL discovery failed: " + e);
    }
    if (found.isEmpty()) {
      return unavailable("no OpenCL device found on any platform");
    }
    OpenClRuntime runtime = new OpenClRuntime(found, BinaryCache.fromSystemProperties());
    List<DeviceInfo> infos = new ArrayList<>();
    for (ClDevice d : found) {
      capabilities(d).ifPresentOrElse(
          caps -> infos.add(new DeviceInfo(Device.opencl(d.index()), d.name(), d.describe(), d.globalMemBytes(), caps)),
          () -> LOG.debug("OpenCL device {} ({}) has too little local memory for the attention kernels", d.index(),
              d.name()));
    }
    if (infos.isEmpty()) {
      return unavailable("no OpenCL device has the local memory and work-group size the attention kernels need");
    }
    return new State(Availability.ok(), runtime, List.copyOf(infos));
  }

  private static State unavailable(String reason) {
    LOG.debug("opencl provider unavailable: {}", reason);
    return new State(Availability.unavailable(reason), null, List.of());
  }

  /** What the kernels support on {@code d}: head dims up to the largest bound whose tiles fit it. */
  static Optional<Capabilities> capabilities(ClDevice d) {
    int maxHeadDim = 0;
    for (int dmax : new int[] {64, 128, 256}) {
      if (TileTraits.forDevice(d, dmax).isPresent()) {
        maxHeadDim = dmax;
      }
    }
    if (maxHeadDim == 0) {
      return Optional.empty();
    }
    return Optional.of(Capabilities.builder()
        .dtypes(DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16)
        .headDims(1, maxHeadDim, 1)
        .valueDimMayDiffer(maxHeadDim)
        .maskKinds(MaskKind.CAUSAL_TOP_LEFT, MaskKind.CAUSAL_BOTTOM_RIGHT, MaskKind.BOOLEAN, MaskKind.ADDITIVE)
        .dropout(true)
        .backward(true)
        .groupedQuery(true)
        .customScale(true)
        .logSumExp(true)
        .unitHeadDimStride(false)
        .memory(Platform.HOST, Platform.OPENCL)
        .determinism(Determinism.ALWAYS)
        .build());
  }
}
