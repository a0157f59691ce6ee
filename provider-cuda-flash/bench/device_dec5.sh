#!/usr/bin/env bash
# Decode pass v8 (DEC5), one device call (run tool, kind nvidia-h100-x1, carry [".dev-dec5"]): check.py (its forward
# cases; the dropout cases of the FWDD pass, which need the training cubins, are skipped here), compute-sanitizer memcheck +
# racecheck on the decode shapes, bench.py on the decode shapes (2 rounds, HEAD's kernel with its v7 rules as the
# same-process baseline), the module's forward Java GPU tests at the conformance kit's full level.
R=$(cd "$(dirname "$0")/../.." && pwd)
D=$R/.dev-dec5
cd $R/provider-cuda-flash/bench
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
mkdir -p /tmp/h
for f in libflashharness.so sanitize_main base.so; do xz -d -c "$D/$f.xz" > /tmp/h/$f; done; chmod +x /tmp/h/sanitize_main
export PYTHONUNBUFFERED=1 FLASH_HARNESS=/tmp/h/libflashharness.so FLASH_HARNESS_BASE=/tmp/h/base.so
nvidia-smi --query-gpu=name,driver_version,temperature.gpu,power.draw --format=csv,noheader
timeout 200 python3 -c "import sys, check; check.dropout_checks = lambda g, r: (0, 0); sys.exit(1 if check.main() else 0)" \
  > $OUT/check.log 2>&1; el "check rc=$?"; grep -E "FAIL|check:|not left" $OUT/check.log | head -20
timeout 90 compute-sanitizer --tool memcheck --error-exitcode 9 /tmp/h/sanitize_main decode > $OUT/memcheck.log 2>&1
el "memcheck rc=$?"; tail -1 $OUT/memcheck.log
timeout 150 compute-sanitizer --tool racecheck --racecheck-report all --error-exitcode 9 /tmp/h/sanitize_main decode \
  > $OUT/racecheck.log 2>&1; el "racecheck rc=$?"; tail -1 $OUT/racecheck.log
BENCH_DECODE_ONLY=1 BENCH_ROUNDS=2 BENCH_CALLS=5 BENCH_REPS=11 timeout 220 python3 bench.py $OUT/bench > $OUT/bench.log 2>&1
el "bench rc=$?"; grep -E "^decode" $OUT/bench.log | sed -e 's/causal=0 //' -e 's/ TFLOP.s//' | cut -c1-200
GPU_HOST_JAVA_OPTS=-Dsdpa4j.conformance.level=full timeout ${JTIME:-400} $D/bundle/run test \
  --include-classname '.*Flash(GpuTest|ProviderDeviceConformanceTest|ProviderConformanceTest|CallCostGpuTest)' \
  > $OUT/java-flash.log 2>&1; el "flash GPU tests rc=$?"; grep -E "tests (successful|failed|aborted|found)" $OUT/java-flash.log
grep -E "MethodSource|=> " $OUT/java-flash.log | head -8; grep -E "call cost" $OUT/java-flash.log | head -5
