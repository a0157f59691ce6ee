#!/usr/bin/env bash
# One command for the CPU tables and figures (issue 9) and issue 3's math-vs-libtorch table.
#
#   benchmarks/run-cpu.sh            the full CPU sweep + the libtorch table (tens of minutes on 2 cores)
#   benchmarks/run-cpu.sh --quick    a short sweep (a few minutes), same files
#
# Writes benchmarks/results/cpu-sweep-<date>.{json,csv,md}, cpu-math-vs-libtorch-<date>.{json,csv,md} and
# benchmarks/results/figures/*.png|svg. Extra arguments after --quick/--full go to the head-dim sweep.
# Environment: BENCH_NOTE (a remark stored with every result, e.g. machine load), BENCH_OUT (output directory,
# default benchmarks/results), JAVA_HOME (a JDK 25; defaults to /usr/lib/jvm/temurin-25-jdk-amd64 when present), BENCH_HEAP (-Xmx,
# default 6g), MVN_ARGS (e.g. -o for offline).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
if [ -z "${JAVA_HOME:-}" ] && [ -x /usr/lib/jvm/temurin-25-jdk-amd64/bin/java ]; then
  export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
fi
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
# libtorch (the peer) parallelises with OpenMP and calls OpenBLAS inside each thread: one BLAS thread each, as
# PyTorch's CPU tuning advice says; without it OpenBLAS oversubscribes the cores and libtorch runs far slower
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
MODE=full
if [ "${1:-}" = "--quick" ] || [ "${1:-}" = "--full" ]; then MODE=${1#--}; shift; fi

build() {
  ./mvnw -q ${MVN_ARGS:-} -f benchmarks/pom.xml -DskipTests package dependency:build-classpath \
      -Dmdep.outputFile=target/classpath.txt -DincludeScope=runtime
}
# the api and provider-math come from the local repository; on a fresh clone install them first
if ! build; then
  echo "run-cpu: installing the modules the benchmarks need (api, provider-math) ..." >&2
  ./mvnw -q ${MVN_ARGS:-} -pl benchmarks -am -DskipTests install
  build
fi
# run from a snapshot: sdpa4j's own jars (and this module's classes) may be reinstalled or rebuilt while a long run
# goes on, and a JVM must not read a jar that changes under it
SNAP=benchmarks/target/bench-run
rm -rf "$SNAP"; mkdir -p "$SNAP"
cp -r benchmarks/target/classes "$SNAP/classes"
CP="$SNAP/classes"
for j in $(tr ':' '\n' < benchmarks/target/classpath.txt); do
  case "$j" in */dev/sdpa4j/*) cp "$j" "$SNAP/" && j="$SNAP/$(basename "$j")" ;; esac
  CP="$CP:$j"
done
JOPTS=(--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx"${BENCH_HEAP:-6g}" -Djava.awt.headless=true)
bench() { "$JAVA" "${JOPTS[@]}" -cp "$CP" dev.sdpa4j.benchmarks.BenchMain "$@" 2> >(grep --line-buffered -v 'WARNING: Using incubator modules' >&2); }

NOTE=(--note "${BENCH_NOTE:-}" --out "${BENCH_OUT:-benchmarks/results}")
if [ "$MODE" = quick ]; then
  bench cpu --head-dims 8,16,32,64,128,256 --seq-min 256 --seq-max 2048 --heads 4 --passes fwd,fwd+bwd \
      --memory-budget 256m --warmup 1 --repeats 3 --max-call-seconds 10 "${NOTE[@]}" "$@"
  bench cpu-vs-libtorch --seq-lens 1024,2048 --warmup 1 --repeats 3 "${NOTE[@]}"
else
  # head dims × L = 256..4096 (B=1, H=4), forward and training step. Memory budget 512 MiB: eager's 2·B·H·L² score
  # floats (512 MiB at L = 4096) no longer fit with the inputs, the fused path's O(L) memory does
  bench cpu --head-dims 8,16,32,64,128,256 --seq-min 256 --seq-max 4096 --heads 4 --passes fwd,fwd+bwd \
      --memory-budget 512m --warmup 2 --repeats 3 --max-call-seconds 20 "${NOTE[@]}" "$@"
  # batch sizes at E = 64, L = 1024 (H=4): eager runs out of the same budget at B = 16
  bench cpu --name cpu-batch --head-dims 64 --seq-min 1024 --seq-max 1024 --batch 1,2,4,8,16 --heads 4 --passes fwd \
      --memory-budget 512m --warmup 1 --repeats 3 --max-call-seconds 20 "${NOTE[@]}"
  # issue 3: math against libtorch, fp32, B=1, H=8, E=64/128, L=1024..4096, causal and not
  bench cpu-vs-libtorch --warmup 2 --repeats 5 "${NOTE[@]}"
fi
