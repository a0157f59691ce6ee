#!/usr/bin/env bash
# Exploration call (one device call): kernel correctness (check.py), compute-sanitizer memcheck + racecheck on the
# harness main, then BENCH_EXPLORE=1 bench.py (decode shapes with the experimental decode variants, the training
# shapes that were below 1.0x; the committed kernel as FLASH_HARNESS_BASE in the same process). Binaries in
# .devbuild-fwd (see README.md). Outputs under $OUT.
cd "$(dirname "$0")"
D=$PWD/../../.devbuild-fwd
export PYTHONUNBUFFERED=1 FLASH_HARNESS=$D/libflashharness.so
[ -f $D/libflashharness_base.so ] && export FLASH_HARNESS_BASE=$D/libflashharness_base.so
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader
date -u
timeout ${CTIME:-150} python3 check.py > $OUT/check.log 2>&1; echo "check rc=$?"; grep -E "FAIL|check:" $OUT/check.log | head -20
date -u
if [ -z "$SKIP_SAN" ]; then
timeout 90 compute-sanitizer --tool memcheck --error-exitcode 9 $D/sanitize_main > $OUT/memcheck.log 2>&1; echo "memcheck rc=$?"; tail -2 $OUT/memcheck.log
timeout 150 compute-sanitizer --tool racecheck --racecheck-report all --error-exitcode 9 $D/sanitize_main > $OUT/racecheck.log 2>&1; echo "racecheck rc=$?"; tail -2 $OUT/racecheck.log
date -u
fi
BENCH_EXPLORE=1 BENCH_CALLS=5 BENCH_REPS=11 timeout ${BTIME:-240} python3 bench.py $OUT/bench > $OUT/bench.log 2>&1; echo "bench rc=$?"
grep -v Warning $OUT/bench.log
date -u
