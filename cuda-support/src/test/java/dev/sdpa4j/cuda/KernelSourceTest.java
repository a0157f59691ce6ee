package dev.sdpa4j.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import org.junit.jupiter.api.Test;

class KernelSourceTest {
  private static KernelSource packaged(Map<String, String> files) {
    return new KernelSource("t", "/k", "main.cu", List.of(), name -> {
      String text = files.get(name.substring("/k/".length()));
      return text == null ? null : (InputStream) new ByteArrayInputStream(text.getBytes(StandardCharsets.UTF_8));
    });
  }

  @Test
  void quotedIncludesAreFoundTransitivelyOnceEachInTheOrderMet() {
    Map<String, String> files = Map.of(
        "main.cu", "#include \"a.cuh\"\n  #  include \"b.cuh\"\n#include <cuda_fp16.h>\n// #include \"no.cuh\" is text\n",
        "a.cuh", "#pragma once\n#include \"c.cuh\"\n",
        "b.cuh", "#include \"a.cuh\"\nint b;\n",
        "c.cuh", "int c;\n");
    KernelSource source = packaged(files);

    SequencedMap<String, String> headers = source.headers(files.get("main.cu").getBytes(StandardCharsets.UTF_8));

    assertThat(headers.sequencedKeySet()).containsExactly("a.cuh", "b.cuh", "c.cuh");
    assertThat(headers).containsEntry("c.cuh", "int c;\n");
  }

  @Test
  void aSourceWithoutIncludesHasNoHeaders() {
    KernelSource source = packaged(Map.of("main.cu", "extern \"C\" __global__ void k() {}\n"));

    assertThat(source.headers("extern \"C\" __global__ void k() {}\n".getBytes(StandardCharsets.UTF_8))).isEmpty();
  }

  @Test
  void aMissingHeaderNamesItselfItsIncluderAndTheFolder() {
    Map<String, String> files = Map.of("main.cu", "#include \"a.cuh\"\n", "a.cuh", "#include \"gone.cuh\"\n");
    KernelSource source = packaged(files);

    assertThatThrownBy(() -> source.headers(files.get("main.cu").getBytes(StandardCharsets.UTF_8)))
        .isInstanceOf(CudaException.class)
        .hasMessageContaining("gone.cuh")
        .hasMessageContaining("included by a.cuh")
        .hasMessageContaining("/k");
  }
}
