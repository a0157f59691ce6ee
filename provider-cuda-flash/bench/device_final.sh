#!/usr/bin/env bash
# Final device call (one call): kernel correctness (check.py; stops here on a failure), compute-sanitizer memcheck +
# racecheck on the harness main, then the benchmark (every issue-6 shape) in the same process as PyTorch's SDPA
# backends and the previous kernel version (FLASH_HARNESS_BASE). Binaries in .devbuild-fwd (README.md). Outputs under
# $OUT; bench.json / bench.csv in $OUT/bench for report.py.
cd "$(dirname "$0")"
D=$PWD/../../.devbuild-fwd
export PYTHONUNBUFFERED=1 FLASH_HARNESS=$D/libflashharness.so
[ -f $D/libflashharness_base.so ] && export FLASH_HARNESS_BASE=$D/libflashharness_base.so
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader
date -u
timeout 150 python3 check.py > $OUT/check.log 2>&1; rc=$?; echo "check rc=$rc"; grep -E "FAIL|check:" $OUT/check.log | head -20
[ $rc -eq 0 ] || exit 1
timeout 90 compute-sanitizer --tool memcheck --error-exitcode 9 $D/sanitize_main > $OUT/memcheck.log 2>&1; echo "memcheck rc=$?"; tail -2 $OUT/memcheck.log
timeout 150 compute-sanitizer --tool racecheck --racecheck-report all --error-exitcode 9 $D/sanitize_main > $OUT/racecheck.log 2>&1; echo "racecheck rc=$?"; tail -2 $OUT/racecheck.log
date -u
BENCH_ROUNDS=2 BENCH_CALLS=5 BENCH_REPS=11 timeout ${BTIME:-400} python3 bench.py $OUT/bench > $OUT/bench.log 2>&1; echo "bench rc=$?"
grep -c '^train\|^decode' $OUT/bench.log; grep '^decode' $OUT/bench.log | cut -c1-200
date -u
