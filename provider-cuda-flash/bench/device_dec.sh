#!/usr/bin/env bash
# Decode pass (v7: cluster merge, Java call path), one device call on an H100 (run tool, kind nvidia-h100-x1,
# carry [".dev-dec"]): check.py, compute-sanitizer memcheck + racecheck on the decode shapes of the harness main,
# bench.py on the decode shapes (BENCH_DECODE_ONLY, the committed kernel as base, the split-merge variants), the
# Java call cost through Sdpa before (HEAD's cuda-support + provider jars) and after (this tree's), and the
# module's Java GPU tests at the conformance kit's full level. .dev-dec holds the xz-compressed harness binaries
# (README.md's build lines, sm_90a) and bundle/ = a copy of the lead's .gpu bundle with this tree's cuda-support and
# provider-cuda-flash jars and test classes (HEAD's two jars in bundle/lib-old). SKIP_* variables skip parts.
cd "$(dirname "$0")"
R=$(cd ../.. && pwd)
D=$R/.dev-dec
J=$D/bundle
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
mkdir -p /tmp/h
for f in libflashharness.so libflashharness_base.so sanitize_main; do xz -d -c "$D/$f.xz" > /tmp/h/$f; done
chmod +x /tmp/h/sanitize_main
export PYTHONUNBUFFERED=1 FLASH_HARNESS=/tmp/h/libflashharness.so FLASH_HARNESS_BASE=/tmp/h/libflashharness_base.so
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader
if [ -z "$SKIP_CHECK" ]; then
  timeout ${CTIME:-150} python3 check.py > $OUT/check.log 2>&1; el "check rc=$?"; grep -E "FAIL|check:" $OUT/check.log | head -20
fi
if [ -z "$SKIP_BENCH" ]; then
  BENCH_DECODE_ONLY=1 BENCH_DECODE_VARIANTS=${VARIANTS:-1} BENCH_ROUNDS=2 BENCH_CALLS=5 BENCH_REPS=11 \
    timeout ${BTIME:-200} python3 bench.py $OUT/bench > $OUT/bench.log 2>&1; el "bench rc=$?"
  grep -E "^decode|max active" $OUT/bench.log | cut -c1-400
fi
if [ -z "$SKIP_COST" ]; then
  $J/run java -version > /dev/null 2>&1   # unpacks the bundle's Java runtime
  JAVA=/tmp/gpu-host-jre-desktop/bin/java
  JOPTS=(--enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector)
  OLD=$(ls $J/lib/*.jar | grep -v -e sdpa4j-cuda-support -e sdpa4j-provider-cuda-flash | tr '\n' ':')$(ls $J/lib-old/*.jar | tr '\n' ':')$J/test-classes/provider-cuda-flash
  timeout 90 $JAVA "${JOPTS[@]}" -jar $J/console/junit-console.jar execute --disable-banner --details=summary \
    --class-path "$OLD" --scan-class-path --include-classname '.*FlashCallCostGpuTest' > $OUT/cost-before.log 2>&1
  el "call cost, HEAD's jars rc=$?"; grep -E "call cost|tests (successful|failed)" $OUT/cost-before.log
  timeout 90 $J/run test --include-classname '.*FlashCallCostGpuTest' > $OUT/cost-after.log 2>&1
  el "call cost, this tree's jars rc=$?"; grep -E "call cost|tests (successful|failed)" $OUT/cost-after.log
fi
if [ -z "$SKIP_SAN" ]; then
  timeout 60 compute-sanitizer --tool memcheck --error-exitcode 9 /tmp/h/sanitize_main decode > $OUT/memcheck.log 2>&1
  el "memcheck rc=$?"; tail -2 $OUT/memcheck.log
  timeout 120 compute-sanitizer --tool racecheck --racecheck-report all --error-exitcode 9 /tmp/h/sanitize_main decode \
    > $OUT/racecheck.log 2>&1; el "racecheck rc=$?"; tail -2 $OUT/racecheck.log
fi
if [ -z "$SKIP_JAVA" ]; then
  timeout 60 $J/run test --include-classname '.*CudaGpuTest' > $OUT/java-cuda.log 2>&1
  el "cuda-support GPU tests rc=$?"; grep -E "tests (successful|failed|aborted)" $OUT/java-cuda.log
  GPU_HOST_JAVA_OPTS=-Dsdpa4j.conformance.level=${LEVEL:-full} timeout ${JTIME:-200} $J/run test \
    --include-package dev.sdpa4j.provider.cuda.flash > $OUT/java-flash.log 2>&1
  el "flash GPU tests rc=$?"; grep -E "tests (successful|failed|aborted|found)" $OUT/java-flash.log
  grep -E "MethodSource|=> " $OUT/java-flash.log | head -10
fi
# the benchmarks' decode part through the Java API (what users see), while the call has time left
if [ -z "$SKIP_API" ] && [ $(( $(date +%s) - T0 )) -lt ${API_BEFORE:-260} ]; then
  (cd $R && BUNDLE_RUN=$J/run OUT_DIR=/tmp/res timeout ${ATIME:-200} benchmarks/gpu/run-gpu.sh decode --providers cuda-flash \
    > $OUT/api.log 2>&1); el "run-gpu.sh decode rc=$?"
  sed -n '/^## cuda-flash vs torch-cudnn/,/^## cuda-memeff/p' /tmp/res/gpu-comparison-decode-*.md 2>/dev/null | grep '^| fwd' | cut -c1-120
  tar czf $OUT/api.tgz -C /tmp/res . 2>/dev/null
fi
cd $OUT && tar czf logs.tgz *.log bench 2>/dev/null; el done
