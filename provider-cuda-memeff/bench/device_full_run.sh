#!/usr/bin/env bash
# One call on the GPU host (run from the repository root, with the GPU-host bundle in .gpu-memeff/ built by
# `BUNDLE_DIR=.gpu-memeff /work/notes/bundle -pl provider-cuda-memeff`): verifies and times the kernels packaged in the
# module jar (its sm_90a cubins): backward checks against float64 autograd and bit-reproducibility, forward checks,
# compute-sanitizer memcheck and racecheck on both, the Java tests with the conformance kit at the full level, then
# the forward grid and the training-step grid against PyTorch efficient (JSON for benchmarks/results/).
export PYTHONUNBUFFERED=1
HF=provider-cuda-memeff/bench/memeff_harness.py
HB=provider-cuda-memeff/bench/memeff_bwd_harness.py
C=/tmp/memeff-cubins; mkdir -p $C
python3 -c "
import glob, zipfile; z = zipfile.ZipFile(glob.glob('.gpu-memeff/lib/sdpa4j-provider-cuda-memeff-*.jar')[0])
open('$C/fwd.cubin', 'wb').write(z.read('dev/sdpa4j/cuda/memeff/sm_90a.cubin'))
open('$C/bwd.cubin', 'wb').write(z.read('dev/sdpa4j/cuda/memeff_bwd/sm_90a.cubin'))"
L=$OUT/checks.log
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader; sha256sum $C/*.cubin; } > $L
timeout 200 python3 $HB $C/fwd.cubin $C/bwd.cubin check >> $L 2>&1
timeout 60 python3 $HB $C/fwd.cubin $C/bwd.cubin determinism >> $L 2>&1
timeout 150 python3 $HF $C/fwd.cubin check >> $L 2>&1
timeout 60 python3 $HF $C/fwd.cubin quick-direct >> $L 2>&1
S=$OUT/san.log
timeout 60 compute-sanitizer --tool memcheck --kernel-name kns=memeff_bwd python3 $HB $C/fwd.cubin $C/bwd.cubin quick > $S 2>&1
timeout 90 compute-sanitizer --tool racecheck --kernel-name kns=memeff_bwd python3 $HB $C/fwd.cubin $C/bwd.cubin quick >> $S 2>&1
timeout 60 compute-sanitizer --tool memcheck --kernel-name kns=memeff_fwd python3 $HF $C/fwd.cubin quick >> $S 2>&1
timeout 60 compute-sanitizer --tool racecheck --kernel-name kns=memeff_fwd python3 $HF $C/fwd.cubin quick >> $S 2>&1
if [ "${JAVA:-1}" != 0 ]; then
  export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
  GPU_HOST_JAVA_OPTS="-Dsdpa4j.conformance.level=full" timeout 300 .gpu-memeff/run test \
      --include-package dev.sdpa4j.provider.cuda.memeff --details=tree > $OUT/junit.log 2>&1
  echo "junit rc $?" >> $L
fi
timeout 100 python3 $HF $C/fwd.cubin bench $OUT/fwd-bench.json > $OUT/fwd-bench.log 2>&1
timeout 200 python3 $HB $C/fwd.cubin $C/bwd.cubin bench $OUT/bwd-bench.json > $OUT/bwd-bench.log 2>&1
grep -hE "^NVIDIA|FAIL|checks:|determinism|junit rc" $L
grep -hE "ERROR SUMMARY|RACECHECK SUMMARY|checks:" $S
[ -f $OUT/junit.log ] && grep -E "tests (successful|failed|aborted|found)" $OUT/junit.log
grep -E "x0\." $OUT/fwd-bench.log $OUT/bwd-bench.log | cut -c1-130
