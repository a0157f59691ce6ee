package dev.sdpa4j.benchmarks.report;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.Properties;
import org.junit.jupiter.api.Test;

class RunInfoTest {

  @Test
  void resultFilesNameTheCommitTheModuleWasBuiltFrom() {
    Properties build = RunInfo.buildCommit();
    assumeTrue(build.containsKey("git.commit.id"), "built outside a git checkout: no commit recorded");
    RunInfo info = RunInfo.collect();
    assertThat(build.getProperty("git.commit.id")).matches("[0-9a-f]{40}");
    assertThat(info.get("commit")).isEqualTo(build.getProperty("git.commit.id"));
    assertThat(info.get("dirty")).isEqualTo(build.getProperty("git.dirty"));
  }
}
