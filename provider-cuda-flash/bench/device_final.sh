#!/usr/bin/env bash
# Final device call: the benchmark (same process as PyTorch's SDPA backends), then the Java GPU tests at the
# conformance kit's full level. Outputs under $OUT.
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1 FLASH_HARNESS=$PWD/../../.devbuild/libflashharness.so
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader
timeout 120 python3 check.py > $OUT/check.log 2>&1; tail -1 $OUT/check.log
BENCH_QUICK=0 BENCH_CALLS=5 BENCH_REPS=11 timeout ${BTIME:-230} python3 bench.py $OUT > $OUT/bench.log 2>&1; echo "bench rc=$?"
grep -c '^train\|^decode' $OUT/bench.log
cd ../..
NV=$(python3 -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))' 2>/dev/null)/nvidia
export LD_LIBRARY_PATH=$NV/cu13/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
GPU_HOST_JAVA_OPTS="-Dsdpa4j.conformance.level=full" timeout ${JTIME:-320} .gpu/run test --include-package dev.sdpa4j.provider.cuda.flash --include-package dev.sdpa4j.cuda --details-theme=ascii > $OUT/java-full.log 2>&1; echo "java full rc=$?"
grep -E 'tests (successful|failed|aborted|skipped|found)' $OUT/java-full.log
grep -vE '^\s+at |ProviderNotFound|walkFilesForUri|WARNING: Error scanning' $OUT/java-full.log | grep -E '=>' | sort | uniq -c | sort -rn | head -8
