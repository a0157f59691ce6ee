#!/usr/bin/env bash
# One call on the GPU host (after ../shared/gpu-host/bundle -pl '!benchmarks', carry [".gpu"]):
#   1. provider-opencl's tests and the conformance kit at the full level on NVIDIA OpenCL,
#   2. OpenClBench (fp16, B·L = 16k, hidden 2048, E = 64/128, L = 512..8192, causal and not),
#   3. PyTorch's SDPA backends (math, efficient, flash, cuDNN) and eager attention on the same shapes,
#   4. the sdpa4j command: info, and run on the best provider found.
# Everything lands in $OUT (or ./out when OUT is unset).
set -uo pipefail
OUT=${OUT:-out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
GPU_HOST_JAVA_OPTS="-Dsdpa4j.conformance.level=full" timeout 260 .gpu/run test \
  --select-package dev.sdpa4j.provider.opencl > "$OUT/opencl-tests.txt" 2>&1
echo "opencl tests rc=$?"; grep -E "tests (successful|failed|aborted|found)" "$OUT/opencl-tests.txt"
grep -B2 -A12 "MethodSource" "$OUT/opencl-tests.txt" | head -60
timeout 150 .gpu/run java dev.sdpa4j.provider.opencl.bench.OpenClBench --csv "$OUT/opencl-h100-fp16.csv" \
  > "$OUT/opencl-bench.txt" 2>&1; echo "opencl bench rc=$?"
python3 - "$OUT/shapes.json" <<'PY'
import json, sys
shapes = [{"batch": 16384 // L, "heads": 2048 // E, "seqLen": L, "headDim": E, "causal": c, "dtype": "fp16", "pass": "fwd"}
          for E in (64, 128) for L in (512, 1024, 2048, 4096, 8192) for c in (False, True)]
json.dump({"shapes": shapes}, open(sys.argv[1], "w"))
PY
timeout 150 python3 benchmarks/gpu/pytorch_peer.py --shapes "$OUT/shapes.json" --out "$OUT/torch-peer.json" \
  > "$OUT/torch-peer.txt" 2>&1; echo "torch peer rc=$?"
timeout 60 .gpu/run java dev.sdpa4j.cli.Main info > "$OUT/sdpa4j-info.txt" 2>&1; echo "info rc=$?"
timeout 60 .gpu/run java dev.sdpa4j.cli.Main run --batch 2 --heads 8 --seq 1024 --head-dim 64 --dtype fp16 \
  > "$OUT/sdpa4j-run.txt" 2>&1; echo "run rc=$?"
cat "$OUT/sdpa4j-run.txt" | grep -v WARNING
tail -30 "$OUT/opencl-bench.txt"
