#!/usr/bin/env bash
# One call on the GPU host (run from the repository root, with the module built: target/classes holds sm_90a.cubin,
# and the GPU-host bundle in .gpu-memeff/): kernel checks, the benchmark against PyTorch efficient, compute-sanitizer
# memcheck and racecheck, then the module's Java tests with the conformance kit at the full level.
#   BENCH=bench|qbench|fbench  (default bench)   JTIME=seconds for the Java tests (default 400)
#   CUBIN=path of the cubin to check and time (default: the module's built sm_90a.cubin)
export PYTHONUNBUFFERED=1
H=provider-cuda-memeff/bench/memeff_harness.py
C=${CUBIN:-provider-cuda-memeff/target/classes/dev/sdpa4j/cuda/memeff/sm_90a.cubin}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader > $OUT/gpu.txt
timeout 150 python3 $H $C check > $OUT/check.log 2>&1
timeout 60 python3 $H $C quick-direct > $OUT/check-direct.log 2>&1
timeout 200 python3 $H $C ${BENCH:-bench} $OUT/bench.json > $OUT/bench.log 2>&1
timeout 100 compute-sanitizer --tool memcheck --kernel-name kns=memeff python3 $H $C quick > $OUT/memcheck.log 2>&1
timeout 100 compute-sanitizer --tool racecheck --kernel-name kns=memeff python3 $H $C quick > $OUT/racecheck.log 2>&1
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export GPU_HOST_JAVA_OPTS="-Dsdpa4j.conformance.level=full"
timeout ${JTIME:-400} .gpu-memeff/run test --include-package dev.sdpa4j.provider.cuda.memeff --details=tree > $OUT/junit.log 2>&1
echo "junit rc $?"
tail -14 $OUT/junit.log
cat $OUT/gpu.txt
grep -hE "FAIL|checks:" $OUT/check.log $OUT/check-direct.log
grep -hE "ERROR SUMMARY|RACECHECK SUMMARY" $OUT/memcheck.log $OUT/racecheck.log
cat $OUT/bench.log
