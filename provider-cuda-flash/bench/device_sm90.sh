#!/usr/bin/env bash
# One device call for the Hopper wgmma kernels (flash_fwd_sm90.cu): check.py through FlashPlan's routing,
# compute-sanitizer on harness_sm90's main, explore_sm90.py (variants + timings), and with FINAL=1 the full
# benchmark (bench.py: the wgmma kernel, the mma.sync kernel on the same inputs, torch flash / efficient / cuDNN) and,
# with JAVA_BUNDLE=<bundle dir>, the module's Java tests at the conformance kit's full level on the GPU.
# Builds carried in .dev-fwd (see bench/README.md). SKIP_CHECK, SKIP_SAN, SKIP_EXPLORE, EXPLORE_DIMS, EXPLORE_LS,
# SAN_EXTRA (e.g. synccheck) adjust it; OUT is the run tool's output folder.
set -o pipefail
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1 FLASH_HARNESS=$PWD/../../.dev-fwd/libflashharness.so FLASH_SM90=$PWD/../../.dev-fwd/libflashsm90.so
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
# the builds travel xz-compressed (with a GPU bundle the carry limit is tight)
for f in ../../.dev-fwd/*.xz; do [ -e "$f" ] && xz -dkf "$f"; done
nvidia-smi --query-gpu=name,driver_version,clocks.sm,temperature.gpu --format=csv,noheader
[ -z "$SKIP_CHECK" ] && { python3 check.py ${CHECK_SEED:-20261127} 2>&1 | tee "$OUT/check.log" | grep -v "^ok" | tail -40; }
if [ -z "$SKIP_SAN" ]; then
  for tool in memcheck racecheck ${SAN_EXTRA:-}; do
    compute-sanitizer --tool $tool ../../.dev-fwd/sanitize_sm90 > "$OUT/san_$tool.log" 2>&1
    echo "sanitizer $tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|sanitize harness done' "$OUT/san_$tool.log" | tr '\n' ' ')"
  done
fi
[ -z "$SKIP_EXPLORE" ] && [ -z "$FINAL" ] && python3 explore_sm90.py "$OUT" 2>&1 | tee "$OUT/explore.log"
if [ -n "$JAVA_BUNDLE" ]; then
  (cd ../.. && GPU_HOST_JAVA_OPTS="-Dsdpa4j.conformance.level=${LEVEL:-full}" timeout ${JTIME:-400} \
    "$JAVA_BUNDLE/run" test --include-package dev.sdpa4j.provider.cuda.flash > "$OUT/java.log" 2>&1)
  echo "java rc=$?"; grep -E "tests (successful|failed|aborted|found)|MethodSource|=> " "$OUT/java.log" | head -30
fi
if [ -n "$FINAL" ]; then
  mkdir -p "$OUT/bench"
  python3 bench.py "$OUT/bench" 2>&1 | tee "$OUT/bench.log"
  tar -C "$OUT" -cf "$OUT/bench.tar" bench && rm -rf "$OUT/bench"
fi
exit 0
