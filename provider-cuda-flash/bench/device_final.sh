#!/usr/bin/env bash
# Final device call (one call): kernel correctness (check.py), compute-sanitizer memcheck + racecheck, the Java GPU
# tests at the conformance kit's full level, then the benchmark in the same process as PyTorch's SDPA backends,
# with the previous kernel version (FLASH_HARNESS_BASE) and the fp16 tiling variants timed alongside. Outputs under $OUT.
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1 FLASH_HARNESS=$PWD/../../.devbuild/libflashharness.so
[ -f ../../.devbuild/libflashharness_base.so ] && export FLASH_HARNESS_BASE=$PWD/../../.devbuild/libflashharness_base.so
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader
timeout 150 python3 check.py > $OUT/check.log 2>&1; echo "check rc=$?"; tail -3 $OUT/check.log
S=../../.devbuild/sanitize_main
timeout 90 compute-sanitizer --tool memcheck --error-exitcode 9 $S > $OUT/memcheck.log 2>&1; echo "memcheck rc=$?"; tail -2 $OUT/memcheck.log
timeout 150 compute-sanitizer --tool racecheck --racecheck-report all --error-exitcode 9 $S > $OUT/racecheck.log 2>&1; echo "racecheck rc=$?"; tail -2 $OUT/racecheck.log
(cd ../..
NV=$(python3 -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))' 2>/dev/null)/nvidia
export LD_LIBRARY_PATH=$NV/cu13/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
GPU_HOST_JAVA_OPTS="-Dsdpa4j.conformance.level=full" timeout ${JTIME:-200} .gpu/run test --include-package dev.sdpa4j.provider.cuda.flash --details-theme=ascii > $OUT/java-full.log 2>&1; echo "java full rc=$?"
grep -E 'tests (successful|failed|aborted|skipped|found)' $OUT/java-full.log
grep -vE '^\s+at |ProviderNotFound|walkFilesForUri|WARNING: Error scanning' $OUT/java-full.log | grep -E '=>' | sort | uniq -c | sort -rn | head -8)
BENCH_VARIANTS=1 BENCH_QUICK=0 BENCH_CALLS=5 BENCH_REPS=11 timeout ${BTIME:-200} python3 bench.py $OUT > $OUT/bench.log 2>&1; echo "bench rc=$?"
grep -c '^train\|^decode' $OUT/bench.log
