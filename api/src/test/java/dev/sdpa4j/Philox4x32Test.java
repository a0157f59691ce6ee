package dev.sdpa4j;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Known-answer tests of {@link Philox4x32}: the {@code philox4x32 10} rows of Random123's {@code tests/kat_vectors}
 * (D. E. Shaw Research; format: counter[4] key[2] -> output[4], hexadecimal words).
 */
class Philox4x32Test {

  @ParameterizedTest(name = "ctr {0} {1} {2} {3} key {4} {5}")
  @CsvSource({
      "00000000, 00000000, 00000000, 00000000, 00000000, 00000000, 6627e8d5, e169c58d, bc57ac4c, 9b00dbd8",
      "ffffffff, ffffffff, ffffffff, ffffffff, ffffffff, ffffffff, 408f276d, 41c83b0e, a20bc7c6, 6d5451fd",
      "243f6a88, 85a308d3, 13198a2e, 03707344, a4093822, 299f31d0, d16cfe09, 94fdcceb, 5001e420, 24126ea1",
  })
  void matchesRandom123KnownAnswers(String c0, String c1, String c2, String c3, String k0, String k1, String r0,
      String r1, String r2, String r3) {
    int[] out = new int[4];
    Philox4x32.generate(hex(c0), hex(c1), hex(c2), hex(c3), hex(k0), hex(k1), out);
    assertThat(out).containsExactly(hex(r0), hex(r1), hex(r2), hex(r3));
  }

  private static int hex(String word) {
    return Integer.parseUnsignedInt(word, 16);
  }
}
