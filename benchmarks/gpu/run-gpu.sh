#!/usr/bin/env bash
# The GPU tables in one run, on the GPU host, from the project root of the bundle:
#
#   here:          ../shared/gpu-host/bundle -Dnolibtorch      (libtorch's CPU natives stay out of the bundle)
#   on the host:   benchmarks/gpu/run-gpu.sh [extra options for BenchMain gpu, e.g. --providers cuda-flash]
#
# 1. sdpa4j: every available CUDA provider on benchmarks/gpu/shapes.json, device tensors, CUDA events
#    -> benchmarks/results/gpu-sdpa4j-<date>.json/.csv
# 2. PyTorch (python3 with torch 2.11, or $PYTHON): flash, efficient, cuDNN and math backends plus the post's eager
#    attention on the same shapes -> benchmarks/results/gpu-torch-<date>.json
# 3. the comparison: ratio tables (sdpa4j / each PyTorch backend) and speedup / memory saving against eager
#    -> benchmarks/results/gpu-comparison-<date>.md (figures need java.desktop, which the bundle's runtime lacks:
#    rerun step 3 here with a full JDK, see benchmarks/README.md)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=benchmarks/results
SHAPES=${SHAPES:-benchmarks/gpu/shapes.json}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
.gpu/run java dev.sdpa4j.benchmarks.BenchMain gpu --shapes "$SHAPES" --out "$OUT" "$@"
SDPA4J=$(ls -t "$OUT"/gpu-sdpa4j-*.json | head -1)
TORCH="$OUT/gpu-torch-$(date -u +%F).json"
"$PY" benchmarks/gpu/pytorch_peer.py --shapes "$SHAPES" --out "$TORCH"
.gpu/run java dev.sdpa4j.benchmarks.BenchMain gpu-compare --sdpa4j "$SDPA4J" --torch "$TORCH" --out "$OUT"
