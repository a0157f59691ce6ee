#!/usr/bin/env bash
# One call on the GPU host for the backward (run from the repository root): kernel checks against float64 autograd,
# bit-reproducibility, compute-sanitizer memcheck and racecheck, and the training-step timing against PyTorch
# efficient. Cubins from CUBINS (default .gpu-memeff/cubins: fwd.cubin and bwd.cubin, compiled for sm_90a).
#   BENCH=bench|qbench|none (default qbench)   VARIANTS="file.cubin:ENV=VALUE ..." extra qbench runs of edited copies
export PYTHONUNBUFFERED=1
H=provider-cuda-memeff/bench/memeff_bwd_harness.py
C=${CUBINS:-.gpu-memeff/cubins}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader > $OUT/gpu.txt
timeout ${CTIME:-200} python3 $H $C/fwd.cubin $C/bwd.cubin check > $OUT/bwd-check.log 2>&1
timeout 60 python3 $H $C/fwd.cubin $C/bwd.cubin determinism > $OUT/bwd-determinism.log 2>&1
timeout 120 compute-sanitizer --tool memcheck --kernel-name kns=memeff_bwd python3 $H $C/fwd.cubin $C/bwd.cubin quick > $OUT/bwd-memcheck.log 2>&1
timeout 120 compute-sanitizer --tool racecheck --kernel-name kns=memeff_bwd python3 $H $C/fwd.cubin $C/bwd.cubin quick > $OUT/bwd-racecheck.log 2>&1
if [ "${BENCH:-qbench}" != none ]; then
  timeout ${BTIME:-300} python3 $H $C/fwd.cubin $C/bwd.cubin ${BENCH:-qbench} $OUT/bwd-bench.json > $OUT/bwd-bench.log 2>&1
fi
for v in ${VARIANTS:-}; do
  f=${v%%:*}; e=${v#*:}
  env $e timeout 200 python3 $H $C/fwd.cubin $C/$f qbench > $OUT/bwd-variant-$f.log 2>&1
  echo "== variant $v"; cat $OUT/bwd-variant-$f.log
done
cat $OUT/gpu.txt
grep -hE "FAIL|checks:" $OUT/bwd-check.log
cat $OUT/bwd-determinism.log
grep -hE "FAIL|checks:|ERROR SUMMARY|RACECHECK SUMMARY|Error" $OUT/bwd-memcheck.log $OUT/bwd-racecheck.log | head -20
[ -f $OUT/bwd-bench.log ] && cat $OUT/bwd-bench.log
