package dev.sdpa4j.provider.math;

import com.google.auto.service.AutoService;
import dev.sdpa4j.AttentionRequest;
import dev.sdpa4j.BackwardRequest;
import dev.sdpa4j.DType;
import dev.sdpa4j.DropoutResolution;
import dev.sdpa4j.Device;
import dev.sdpa4j.MaskKind;
import dev.sdpa4j.Platform;
import dev.sdpa4j.spi.Availability;
import dev.sdpa4j.spi.AttentionProvider;
import dev.sdpa4j.spi.Capabilities;
import dev.sdpa4j.spi.DeviceInfo;
import dev.sdpa4j.spi.Determinism;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.RecursiveAction;
import java.util.function.IntConsumer;

/**
 * The CPU provider {@code math} (priority 0): what users get without a GPU. FlashAttention-2's tiling with an online
 * softmax, so memory stays linear in the sequence length; float32 accumulation with the Vector API for fp32, fp16
 * and bf16 inputs (converted on the fly from any strides), float64 for fp64 inputs; all cores through a fork-join
 * split over batch × heads × query tiles. Every feature of the API: all mask kinds, dropout (the portable Philox
 * mask at both resolutions), backward, grouped-query attention, custom scale, LSE, head dims 1..1024 and a different
 * value head dim. Results are bit-identical run to run (the work split depends only on the shapes). Thread-safe.
 */
@AutoService(AttentionProvider.class)
public final class MathProvider implements AttentionProvider {
  /** Largest head dim (E and Ev) accepted. */
  public static final int MAX_HEAD_DIM = 1024;

  private static final Capabilities CAPABILITIES = Capabilities.builder()
      .dtypes(DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16, DType.FLOAT64)
      .headDims(1, MAX_HEAD_DIM, 1)
      .valueDimMayDiffer(MAX_HEAD_DIM)
      .maskKinds(MaskKind.values())
      .dropoutResolutions(DropoutResolution.WORD, DropoutResolution.BYTE)
      .backward(true)
      .groupedQuery(true)
      .customScale(true)
      .logSumExp(true)
      .unitHeadDimStride(false)
      .memory(Platform.HOST)
      .determinism(Determinism.ALWAYS)
      .build();

  private static final class PoolHolder {
    static final ForkJoinPool POOL = new ForkJoinPool(Runtime.getRuntime().availableProcessors());
  }

  /** Creates the provider; cheap, no threads start until the first call. */
  public MathProvider() {}

  @Override
  public String name() {
    return "math";
  }

  @Override
  public int priority() {
    return 0;
  }

  @Override
  public Availability availability() {
    return Availability.ok();
  }

  @Override
  public List<DeviceInfo> devices() {
    int cores = Runtime.getRuntime().availableProcessors();
    String description = cores + " cores, " + Kernels.SP.vectorBitSize() + "-bit vectors ("
        + System.getProperty("os.arch") + ")";
    return List.of(new DeviceInfo(Device.HOST, "CPU", description, 0, CAPABILITIES));
  }

  @Override
  public void forward(AttentionRequest request) {
    Problem p = new Problem(request);
    if (p.dtype == DType.FLOAT64) {
      DoubleForward k = new DoubleForward(p);
      parallel(p.shareable, k.tasks(), k::run);
    } else {
      FloatForward k = new FloatForward(p);
      parallel(p.shareable, k.tasks(), k::run);
    }
  }

  @Override
  public void backward(BackwardRequest request) {
    if (request.forward().dtype() == DType.FLOAT64) {
      DoubleBackward k = new DoubleBackward(request);
      parallel(k.shareable(), k.queryTasks(), k::prepare);
      parallel(k.shareable(), k.keyTasks(), k::runKeys);
      parallel(k.shareable(), k.queryTasks(), k::runQueries);
    } else {
      FloatBackward k = new FloatBackward(request);
      parallel(k.shareable(), k.rowTasks(), k::prepare);
      parallel(k.shareable(), k.keyTasks(), k::runKeys);
      parallel(k.shareable(), k.rowTasks(), k::runQueries);
    }
  }

  /**
   * Runs tasks {@code [0, n)}: on the shared fork-join pool, or on the calling thread when there is only one task or
   * the memory is confined to the calling thread.
   */
  private static void parallel(boolean shareable, int n, IntConsumer task) {
    if (n > 1 && shareable) {
      PoolHolder.POOL.invoke(new Range(0, n, task));
    } else {
      for (int t = 0; t < n; t++) {
        task.accept(t);
      }
    }
  }

  /** Splits a task range in halves down to single tasks. */
  private static final class Range extends RecursiveAction {
    private final int from;
    private final int to;
    private final transient IntConsumer task;

    Range(int from, int to, IntConsumer task) {
      this.from = from;
      this.to = to;
      this.task = task;
    }

    @Override
    protected void compute() {
      if (to - from == 1) {
        task.accept(from);
        return;
      }
      int mid = (from + to) >>> 1;
      invokeAll(new Range(from, mid, task), new Range(mid, to, task));
    }
  }
}
