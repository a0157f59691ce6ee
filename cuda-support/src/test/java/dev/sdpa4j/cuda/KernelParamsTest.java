package dev.sdpa4j.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Arrays;
import java.util.Random;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.PointerPointer;
import org.junit.jupiter.api.Test;

/** The reused kernel-parameter array: entries point at aligned copies of each value, across reuse and growth. */
class KernelParamsTest {
  @Test
  void entriesPointAtAlignedCopiesOfEachValueAcrossReuseAndGrowth() {
    long seed = System.nanoTime();
    System.out.println("KernelParamsTest seed " + seed);
    Random rnd = new Random(seed);
    KernelParams params = new KernelParams();
    long firstArray = -1;
    // small launches reuse the buffers; the 3000-byte struct and the 40 arguments make them grow
    int[] many = new int[40];
    Arrays.fill(many, 8);
    int[][] shapes = {{4, 8, 8, 4}, {288}, {8, 8}, {3000, 4}, many, {408}};
    for (int[] sizes : shapes) {
      KernelArgs.Builder b = KernelArgs.builder();
      byte[][] values = new byte[sizes.length][];
      for (int i = 0; i < sizes.length; i++) {
        values[i] = new byte[sizes[i]];
        rnd.nextBytes(values[i]);
        b.struct(values[i]);
      }
      PointerPointer<?> array = params.of(b.build());
      if (firstArray < 0) {
        firstArray = array.address();
      }
      LongPointer entries = new LongPointer(array);
      for (int i = 0; i < sizes.length; i++) {
        long at = entries.get(i);
        assertThat(at % KernelParams.ALIGN).as("entry %d alignment", i).isZero();
        byte[] got = new byte[sizes[i]];
        new BytePointer(Handles.at(at)).capacity(sizes[i]).get(got);
        assertThat(got).as("value %d of %s", i, Arrays.toString(sizes)).isEqualTo(values[i]);
        if (i > 0) {
          assertThat(at).as("values do not overlap").isGreaterThanOrEqualTo(entries.get(i - 1) + Math.max(8, sizes[i - 1]));
        }
      }
      if (sizes.length <= 16 && sizes.length > 1 && sizes[0] == 8) {
        assertThat(array.address()).as("reused parameter array").isEqualTo(firstArray);
      }
    }
  }
}
