#!/usr/bin/env bash
# One device call for the training path (issue 8): kernel correctness vs float64 (check_bwd.py), compute-sanitizer
# memcheck + racecheck on representative shapes, the Java GPU tests at the conformance kit's full level, then the
# training-step benchmark against PyTorch's flash backend in the same process. Outputs under $OUT. Run from the repo
# root on the GPU host with the bundle in .gpu-flash/ (the cubins are read from the provider jar there).
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader
if [ "${SKIP_CHECK:-0}" != 1 ]; then
timeout ${CTIME:-150} python3 check_bwd.py > $OUT/check_bwd.log 2>&1; echo "check_bwd rc=$?"; grep -c '^ok' $OUT/check_bwd.log; grep -E '^FAIL|check_bwd:|Error|error' $OUT/check_bwd.log | head -20
fi
if [ "${SKIP_SAN:-0}" != 1 ]; then
PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 python3 sanitize_bwd.py > $OUT/memcheck_bwd.log 2>&1; echo "memcheck rc=$?"; tail -2 $OUT/memcheck_bwd.log
PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout 200 compute-sanitizer --tool racecheck --racecheck-report all --error-exitcode 9 python3 sanitize_bwd.py > $OUT/racecheck_bwd.log 2>&1; echo "racecheck rc=$?"; tail -2 $OUT/racecheck_bwd.log
fi
if [ "${SKIP_JAVA:-0}" != 1 ]; then
(cd ../..
NV=$(python3 -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))' 2>/dev/null)/nvidia
export LD_LIBRARY_PATH=$NV/cu13/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
GPU_HOST_JAVA_OPTS="-Dsdpa4j.conformance.level=${LEVEL:-full}" timeout ${JTIME:-240} .gpu-flash/run test ${JSEL:---include-package dev.sdpa4j.provider.cuda.flash} --details-theme=ascii > $OUT/java.log 2>&1; echo "java rc=$?"
grep -E 'tests (successful|failed|aborted|skipped|found)' $OUT/java.log
grep -E '\[X\]|✘' $OUT/java.log | head -15)
fi
if [ "${SKIP_BENCH:-0}" != 1 ]; then
timeout ${BTIME:-200} python3 bench_train.py $OUT > $OUT/bench_train.log 2>&1; echo "bench rc=$?"
grep '^train' $OUT/bench_train.log | cut -c7-
fi
