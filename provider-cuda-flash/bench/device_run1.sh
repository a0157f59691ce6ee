#!/usr/bin/env bash
# One device call: environment facts, kernel correctness (check.py), Java GPU tests, sanitizer, quick benchmark.
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1 FLASH_HARNESS=$PWD/../../.devbuild/libflashharness.so
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader
NV=$(python3 -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))' 2>/dev/null)/nvidia
LIBS=$(ls -d /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib $NV/cuda_nvrtc/lib $NV/cu13/lib $NV/cuda_runtime/lib 2>/dev/null | tr '\n' ':')
export LD_LIBRARY_PATH=$LIBS${LD_LIBRARY_PATH:-}
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"; (ls /usr/local/cuda/lib64 | grep -E '^lib(nvrtc|cudart)\.so' ; find $NV -name 'libnvrtc.so*' -o -name 'libcudart.so*' 2>/dev/null) | tr '\n' ' '; echo
timeout 150 python3 check.py 2>&1 | tee $OUT/check.log | tail -12
cd ../..
JLEVEL=${JLEVEL:-quick}
GPU_HOST_JAVA_OPTS="-Dsdpa4j.conformance.level=$JLEVEL" timeout ${JTIME:-240} .gpu/run test --include-package dev.sdpa4j.provider.cuda.flash --include-package dev.sdpa4j.cuda --details-theme=ascii > $OUT/java-tests.log 2>&1; echo "java tests rc=$?"
grep -E 'tests (successful|failed|skipped|aborted)|MethodSource|=>|Exception' $OUT/java-tests.log | head -40
cd provider-cuda-flash/bench
S=../../.devbuild/sanitize_main
timeout 60 compute-sanitizer --tool memcheck --error-exitcode 9 $S > $OUT/memcheck.log 2>&1; echo "memcheck rc=$?"; tail -2 $OUT/memcheck.log
timeout 100 compute-sanitizer --tool racecheck --racecheck-report all --error-exitcode 9 $S > $OUT/racecheck.log 2>&1; echo "racecheck rc=$?"; tail -2 $OUT/racecheck.log
BENCH_QUICK=${BENCH_QUICK:-1} timeout 120 python3 bench.py $OUT 2>&1 | tee $OUT/bench.log | grep -v Warning
