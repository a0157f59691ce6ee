#!/usr/bin/env bash
# Compiles one CUDA C++ kernel file into the resources a sdpa4j CUDA provider packages (see
# dev.sdpa4j.cuda.KernelModule): sm_80.cubin, sm_86.cubin, sm_89.cubin, sm_90a.cubin, compute_80.ptx, and a copy
# of the source for NVRTC with the headers (*.cuh) of its folder, which it may include by quoted name.
#
#   compile-kernels.sh <kernel.cu> <output-dir> <require-nvcc: true|false>
#
# Without nvcc on the PATH (or /usr/local/cuda/bin) it copies the source, warns and succeeds, unless
# require-nvcc is true (CI sets -Dsdpa4j.cuda.requireNvcc=true). Outputs newer than the source and every header of
# its folder are kept, so an unchanged kernel costs nothing. SDPA4J_CUDA_ARCHS overrides the architecture list (e.g. "90a" for a quick
# local build); SDPA4J_NVCC_JOBS the parallelism (default 2).
set -euo pipefail
src=$1; out=$2; require=${3:-false}
[ -f "$src" ] || { echo "compile-kernels: no such file $src" >&2; exit 2; }
mkdir -p "$out"
cp -p "$src" "$out/"
headers=("$(dirname "$src")"/*.cuh)
[ -e "${headers[0]}" ] || headers=()
[ ${#headers[@]} -eq 0 ] || cp -p "${headers[@]}" "$out/"
NVCC=$(command -v nvcc || true)
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
if [ -z "$NVCC" ]; then
  if [ "$require" = "true" ]; then
    echo "compile-kernels: nvcc not found and sdpa4j.cuda.requireNvcc=true" >&2; exit 1
  fi
  echo "[WARNING] compile-kernels: nvcc not found; packaging $src without cubins (NVRTC compiles at run time)" >&2
  exit 0
fi
archs=${SDPA4J_CUDA_ARCHS:-"80 86 89 90a"}
jobs=${SDPA4J_NVCC_JOBS:-2}
flags=(-std=c++17 -O3 -Xptxas=-warn-spills --expt-relaxed-constexpr)
targets=()
for a in $archs; do targets+=("sm_$a.cubin"); done
targets+=("compute_80.ptx")
# stale outputs of other architecture lists would be packaged too: remove them
for f in "$out"/*.cubin "$out"/*.ptx; do
  [ -e "$f" ] || continue
  keep=false; for t in "${targets[@]}"; do [ "$(basename "$f")" = "$t" ] && keep=true; done
  $keep || rm -f "$f"
done
if [ "${4:-}" = "--one" ]; then
  t=$5
  tmp="$out/.$t.tmp"
  case "$t" in
    compute_80.ptx) "$NVCC" "${flags[@]}" -gencode=arch=compute_80,code=compute_80 -ptx "$src" -o "$tmp" ;;
    sm_*.cubin) a=${t#sm_}; a=${a%.cubin}; "$NVCC" "${flags[@]}" -gencode=arch=compute_$a,code=sm_$a -cubin "$src" -o "$tmp" ;;
  esac
  mv "$tmp" "$out/$t"
  echo "compile-kernels: $(basename "$src") -> $t" >&2
  exit 0
fi
todo=()
for t in "${targets[@]}"; do
  fresh=false
  if [ -s "$out/$t" ] && [ "$out/$t" -nt "$src" ]; then
    fresh=true
    for h in "${headers[@]}"; do [ "$out/$t" -nt "$h" ] || fresh=false; done
  fi
  $fresh || todo+=("$t")
done
[ ${#todo[@]} -eq 0 ] && exit 0
printf '%s\n' "${todo[@]}" | xargs -P "$jobs" -I{} bash "$0" "$src" "$out" "$require" --one {} \
  || { echo "compile-kernels: nvcc failed for $src" >&2; exit 1; }
