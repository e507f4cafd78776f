#!/usr/bin/env bash
# Builds the CUDA kernel test programs (native/cuda/test/test_*.cpp) with nvcc for the GPU this
# machine has: the same sources scripts/build-cuda-emu.mjs builds with g++ for the emulator.
#   scripts/gpu/build-cuda-tests.sh OUT_DIR [ARCH]    (ARCH default: sm_90)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: build-cuda-tests.sh OUT_DIR [ARCH]}
arch=${2:-sm_90}
nvcc=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
mkdir -p "$out/obj"
jobs=$(nproc 2>/dev/null || echo 2)
inc=(-Inative/include -Inative/cuda/include -Inative/cuda)
common=(-std=c++20 -O2 -g -lineinfo "${inc[@]}")
objs=()
compile() { # src obj cmd...: skipped when obj is newer than src and every header
  local src=$1 obj=$2
  shift 2
  if [ -f "$obj" ] && [ -z "$(find "$src" native/include native/cuda -newer "$obj" \( -name '*.h' -o -name '*.cuh' -o -path "$src" \) -print -quit)" ]; then return 0; fi
  "$@" -c "$src" -o "$obj" || { echo "compile failed: $src" >&2; return 1; }
}
pids=()
for f in native/cpu/*.cpp; do
  o="$out/obj/cpu_$(basename "$f" .cpp).o"
  objs+=("$o")
  compile "$f" "$o" g++ -std=c++20 -O2 -fPIC -pthread -Inative/include &
  pids+=($!)
  if [ ${#pids[@]} -ge "$jobs" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for f in native/cuda/kernels/*.cu native/cuda/cublaslt.cpp native/cuda/allocator.cpp; do
  [ -e "$f" ] || continue
  o="$out/obj/cuda_$(basename "$f" | tr . _).o"
  objs+=("$o")
  compile "$f" "$o" "$nvcc" -x cu "${common[@]}" -arch="$arch" -Xcompiler -Wall,-Wextra &
  pids+=($!)
  if [ ${#pids[@]} -ge "$jobs" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done
for t in native/cuda/test/test_*.cpp; do
  name=$(basename "$t" .cpp)
  [ "$name" = test_emu ] && continue  # the emulator's own self-test has no GPU meaning
  compile "$t" "$out/obj/$name.o" "$nvcc" -x cu "${common[@]}" -arch="$arch"
  "$nvcc" -arch="$arch" "$out/obj/$name.o" "${objs[@]}" -o "$out/$name" -lcudart_static -ldl -lrt -lpthread
  echo "$out/$name"
done
