package dev.sdpa4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;

class MainTest {
  private record Result(int exitCode, String out, String err) {}

  private static Result execute(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    var cl = Main.commandLine();
    cl.setOut(new PrintWriter(out));
    cl.setErr(new PrintWriter(err));
    int code = cl.execute(args);
    return new Result(code, out.toString(), err.toString());
  }

  @Test
  void infoListsTheMathProviderWithItsCapabilities() {
    Result r = execute("info");
    assertThat(r.exitCode()).isZero();
    assertThat(r.out()).contains("math", "available, priority 0", "device host", "dtypes ", "masks: ", "backward yes");
  }

  @Test
  void runChecksAgainstTheReference() {
    Result r = execute("run", "--batch", "2", "--heads", "4", "--kv-heads", "2", "--seq", "33", "--kv-seq", "47",
        "--head-dim", "16", "--value-dim", "24", "--dtype", "bf16", "--mask", "padding", "--repeats", "2",
        "--provider", "math");
    assertThat(r.exitCode()).as(r.out() + r.err()).isZero();
    assertThat(r.out()).contains("provider: math", "math         CHOSEN", "GFLOP/s", "memory:", ": OK");
  }

  @Test
  void runWithCausalBottomRightAndDropout() {
    Result r = execute("run", "--batch", "1", "--heads", "2", "--seq", "9", "--kv-seq", "20", "--head-dim", "8",
        "--causal", "bottom_right", "--dropout", "0.2", "--repeats", "1");
    assertThat(r.exitCode()).as(r.out() + r.err()).isZero();
    assertThat(r.out()).contains("causal mask (bottom-right), dropout p=0.2", ": OK");
  }

  @Test
  void byteDropoutResolutionReachesTheProviderAndItsReference() {
    Result r = execute("run", "--batch", "1", "--heads", "2", "--seq", "9", "--kv-seq", "40", "--head-dim", "8",
        "--dropout", "0.25", "--dropout-resolution", "BYTE", "--backward", "--repeats", "1");
    assertThat(r.exitCode()).as(r.out() + r.err()).isZero();
    assertThat(r.out()).contains("dropout p=0.25 (BYTE resolution)", ": OK");
  }

  @Test
  void backwardRunsTrainingStepsAndChecksEveryGradient() {
    Result r = execute("run", "--batch", "2", "--heads", "4", "--kv-heads", "2", "--seq", "13", "--kv-seq", "29",
        "--head-dim", "16", "--value-dim", "8", "--mask", "padding", "--dropout", "0.1", "--backward", "--repeats", "1");
    assertThat(r.exitCode()).as(r.out() + r.err()).isZero();
    assertThat(r.out()).contains("forward + backward median", "3.5x the forward's FLOPs");
    for (String gradient : new String[] {"dQ", "dK", "dV"}) {
      assertThat(r.out()).containsPattern(gradient + " of batch 0 against the float64 reference: relative L2 error "
          + "\\S+ \\(tolerance 2e-05 for fp32\\): OK");
    }
  }

  @Test
  void unknownProviderFailsWithTheReasons() {
    Result r = execute("run", "--seq", "8", "--head-dim", "8", "--provider", "nonesuch");
    assertThat(r.exitCode()).isEqualTo(2);
    assertThat(r.err()).contains("no attention provider supports this request",
        "nonesuch: named in the provider scope but not found");
  }

  @Test
  void badArgumentsAreReportedByName() {
    Result r = execute("run", "--seq", "8", "--head-dim", "8", "--heads", "4", "--kv-heads", "3");
    assertThat(r.exitCode()).isEqualTo(2);
    assertThat(r.err()).contains("sdpa4j: key: grouped-query attention needs Hq % Hkv == 0");
  }
}
