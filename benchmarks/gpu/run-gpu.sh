#!/usr/bin/env bash
# The GPU tables and the PyTorch comparison, on the GPU host, from the project root of the bundle:
#
#   here:         benchmarks/gpu/bundle.sh    (the shared GPU-host bundle, libtorch left out, a runtime with java.desktop)
#   on the host:  benchmarks/gpu/run-gpu.sh PART [extra options for BenchMain gpu, e.g. --providers cuda-flash]
#
# PART (each fits one 10-minute command on an H100; see benchmarks/README.md for the times):
#   quick                                    every part on benchmarks/gpu/shapes-quick.json (11 shapes, ~2 min)
#   post                                     the post's figures in one run: the sets figures, figures-long,
#                                            figures-training and figures-training-long (REPEATS=10, 6-7 min on an H100)
#   inference | training-fp16 | training-bf16 | decode | figures | figures-long | figures-training |
#   figures-training-long                    that set of benchmarks/gpu/shapes.json (sets: gpu/make_shapes.py)
#   all                                      every set in turn (about 35 minutes: for a host without a time limit)
#   compare                                  the comparison tables of every part run today (quick and post
#                                            have their own)
#
# A part runs, in one call:
# 1. sdpa4j (BenchMain gpu): every available CUDA provider on device tensors (CUDA events; training steps through
#    AttentionResult.backward, a provider that refuses training is recorded UNSUPPORTED with its reason), the cuBLAS
#    eager baseline (eager-cublas) and provider-opencl on the OpenCL GPU   -> results/gpu-sdpa4j-PART-<date>.json/.csv
# 2. PyTorch (python3 with torch 2.11, or $PYTHON): flash, efficient, cuDNN and math backends plus the post's eager
#    attention on the same shapes                                          -> results/gpu-torch-PART-<date>.json
# 3. the comparison tables (sdpa4j / each PyTorch backend; fused / eager)   -> results/gpu-comparison-PART-<date>.md
# 4. the figures (PNG and SVG under results/figures), drawn by gpu-compare where the runtime has java.desktop (the
#    runtime of benchmarks/gpu/bundle.sh has it; with another bundle, fetch the JSON and run gpu-compare here).
set -euo pipefail
cd "$(dirname "$0")/../.."
PART=${1:?usage: run-gpu.sh quick|post|inference|training-fp16|training-bf16|decode|figures|figures-long|figures-training|figures-training-long|all|compare [gpu options]}
shift
OUT=${OUT_DIR:-benchmarks/results}
REPEATS=${REPEATS:-}     # timed calls per case, both sides (default 20; 10 for post, so that it fits 10 minutes)
PY=${PYTHON:-python3}
DAY=$(date -u +%F)
RUN=${BUNDLE_RUN:-}
if [ -z "$RUN" ]; then
  for b in .gpu .gpu-bench; do [ -x "$b/run" ] && { RUN=$b/run; break; }; done
fi
[ -n "$RUN" ] || { echo "run-gpu.sh: no bundle (.gpu/run); build one with the bundle script" >&2; exit 2; }
# the commit the bundle's benchmarks jar was built from, for the PyTorch side's result file (the Java side reads it
# from its class path): the host's checkout may be stale
JAR=$(ls "$(dirname "$RUN")"/lib/sdpa4j-benchmarks-*.jar 2>/dev/null | head -n 1 || true)
if [ -n "$JAR" ] && PROPS=$("$PY" -c 'import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).read("dev/sdpa4j/benchmarks/git.properties").decode())' "$JAR" 2>/dev/null); then
  SDPA4J_COMMIT=$(sed -n 's/^git.commit.id=//p' <<<"$PROPS"); SDPA4J_DIRTY=$(sed -n 's/^git.dirty=//p' <<<"$PROPS")
  export SDPA4J_COMMIT SDPA4J_DIRTY
fi
# cuBLAS (libcublas.so.13, loaded by org.bytedeco:cuda for eager-cublas) from the CUDA toolkit or PyTorch's wheels,
# handed to JavaCPP's preloader only (LD_LIBRARY_PATH stays as it is)
if ! ldconfig -p 2>/dev/null | grep -q 'libcublas.so.13'; then
  for d in /usr/local/cuda/lib64 $("$PY" -c 'import nvidia, os; print(" ".join(os.path.join(p, q, "lib") for p in nvidia.__path__ for q in os.listdir(p)))' 2>/dev/null || true); do
    if compgen -G "$d/libcublas.so.13*" >/dev/null; then
      export GPU_HOST_JAVA_OPTS="${GPU_HOST_JAVA_OPTS:-} -Dorg.bytedeco.javacpp.platform.preloadpath=$d"
      break
    fi
  done
fi
mkdir -p "$OUT"
if ! "$RUN" java --list-modules 2>/dev/null | grep -q '^java.desktop@'; then
  echo "run-gpu.sh: this bundle's Java runtime has no java.desktop: tables only, no figures (build the bundle with benchmarks/gpu/bundle.sh)" >&2
fi

part() {  # part NAME SHAPES SETS [gpu options]
  local name=$1 shapes=$2 sets=$3; shift 3
  local setopt=(); [ -n "$sets" ] && setopt=(--sets "$sets")
  local repeats=${REPEATS:-20}; [ "$name" = post ] && repeats=${REPEATS:-10}
  "$RUN" java dev.sdpa4j.benchmarks.BenchMain gpu --shapes "$shapes" "${setopt[@]}" --out "$OUT" \
      --name "gpu-sdpa4j-$name" --repeats "$repeats" "$@"
  "$PY" benchmarks/gpu/pytorch_peer.py --shapes "$shapes" ${sets:+--sets "$sets"} --repeats "$repeats" --out "$OUT/gpu-torch-$name-$DAY.json"
  "$RUN" java dev.sdpa4j.benchmarks.BenchMain gpu-compare --sdpa4j "$OUT/gpu-sdpa4j-$name-$DAY.json" \
      --torch "$OUT/gpu-torch-$name-$DAY.json" --out "$OUT" --name "gpu-comparison-$name" > /dev/null
  echo "run-gpu.sh: $name done: $OUT/gpu-comparison-$name-$DAY.md"
}

SETS="inference training-fp16 training-bf16 decode figures figures-long figures-training figures-training-long"
case "$PART" in
  quick) part quick benchmarks/gpu/shapes-quick.json "" "$@" ;;
  post) part post benchmarks/gpu/shapes.json figures,figures-long,figures-training,figures-training-long "$@" ;;
  inference|training-fp16|training-bf16|decode|figures|figures-long|figures-training|figures-training-long)
    part "$PART" benchmarks/gpu/shapes.json "$PART" "$@" ;;
  all) for s in $SETS; do part "$s" benchmarks/gpu/shapes.json "$s" "$@"; done ;;
  compare)
    mine=$(ls "$OUT"/gpu-sdpa4j-*-"$DAY".json | grep -v -- '-quick-\|-post-' | paste -sd, -)
    theirs=$(ls "$OUT"/gpu-torch-*-"$DAY".json | grep -v -- '-quick-\|-post-' | paste -sd, -)
    "$RUN" java dev.sdpa4j.benchmarks.BenchMain gpu-compare --sdpa4j "$mine" --torch "$theirs" --out "$OUT" ;;
  *) echo "run-gpu.sh: unknown part $PART" >&2; exit 2 ;;
esac
