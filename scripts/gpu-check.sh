#!/usr/bin/env bash
# ONE prepared command for a GPU machine (an H200 with CUDA 13, PyTorch, transformers and PEFT; no
# node, no network). It proves and measures the CUDA device of the native engine and prints a table;
# full logs and JSON land in OUT.
#   scripts/gpu/pack.sh                      # here, first: node (xz), the built ditty, the fixtures
#   bash scripts/gpu-check.sh OUT            # there (the device tool carries .node and .bundle)
#   bash scripts/gpu-check.sh OUT --dry      # here, on a CPU: every step, GPU calls replaced by the
#                                            # emulated CUDA device and CPU stand-ins
# Steps: env; the kernel tests on the GPU against their CPU twins; compute-sanitizer memcheck and
# racecheck on them; the tiny fixtures trained 20 steps on cuda vs cpu (fp32 and bf16); the measured
# bf16 GEMM peak; `ditty bench` on rwkv-14b and dolly-v2-12b (block 512, batch 1, selective and full
# checkpointing); transformers + PEFT bf16 LoRA on the same shapes.
# Environment: STEPS (timed bench steps, default 3), ONLY (space-separated step names to run).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: gpu-check.sh OUT [--dry]}
dry=0
[ "${2:-}" = --dry ] && dry=1
mkdir -p "$out"
out=$(cd "$out" && pwd)
steps=${STEPS:-3}
started=$(date +%s)
status_file="$out/status.tsv"
: >"$status_file"
log() { printf '[%4ss] %s\n' "$(($(date +%s) - started))" "$*" >&2; }
want() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }
# run_step NAME TIMEOUT CMD...: the command's output goes to OUT/NAME.log; its status to status.tsv
run_step() {
  local name=$1 limit=$2
  shift 2
  want "$name" || return 0
  log "$name: $*"
  local t0=$(date +%s) rc
  timeout --kill-after=10 "$limit" "$@" >"$out/$name.log" 2>&1
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(($(date +%s) - t0))" >>"$status_file"
  [ $rc = 0 ] || log "$name: exit $rc (see $out/$name.log)"
  return $rc
}

# --- where ditty and node come from
if [ $dry = 1 ]; then
  work=$here
  node_bin=$(command -v node)
  shared=${DITTY_SHARED:-$here/../shared}
  python=${PYTHON:-$(for p in python3 /usr/bin/python3; do "$p" -c 'import torch' 2>/dev/null && { echo "$p"; break; }; done)}
  # the emulated CUDA device: the addon built with the emulator and the stand-in cuBLASLt
  emu_addon=$here/build/emu/ditty_native.node
  if [ ! -f "$emu_addon" ]; then
    run_step build-emu-addon 900 node "$here/scripts/build-native-emu.mjs" || true
  fi
  export DITTY_NATIVE_ADDON=$emu_addon
  export DITTY_CUBLASLT=${DITTY_CUBLASLT:-$here/build/emu/libcublaslt-standin.so}
  # tiny shapes: every kernel runs emulated on the CPU, thousands of times slower than a GPU
  mkdir -p "$out/shapes"
  printf '%s' '{"architectures":["RwkvForCausalLM"],"model_type":"rwkv","vocab_size":512,"context_length":256,"hidden_size":64,"num_hidden_layers":2,"attention_hidden_size":64,"intermediate_size":256,"layer_norm_epsilon":1e-5,"bos_token_id":0,"eos_token_id":0,"rescale_every":6,"tie_word_embeddings":false}' >"$out/shapes/rwkv-tiny.json"
  printf '%s' '{"architectures":["GPTNeoXForCausalLM"],"model_type":"gpt_neox","vocab_size":512,"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,"intermediate_size":256,"hidden_act":"gelu","rotary_pct":0.25,"rotary_emb_base":10000,"max_position_embeddings":2048,"layer_norm_eps":1e-5,"use_parallel_residual":true,"tie_word_embeddings":false,"bos_token_id":0,"eos_token_id":0}' >"$out/shapes/neox-tiny.json"
  models=("$out/shapes/rwkv-tiny.json" "$out/shapes/neox-tiny.json")
  block=64
  peft_models=(rwkv-tiny neox-tiny)
  peft_block=64
else
  work=/tmp/ditty-gpu
  rm -rf "$work" && mkdir -p "$work/bin"
  xz -dc "$here/.node/node.xz" >"$work/bin/node" && chmod +x "$work/bin/node"
  node_bin=$work/bin/node
  tar -xJf "$here/.bundle/ditty.tar.xz" -C "$work"
  tar -xJf "$here/.bundle/shared.tar.xz" -C "$work"
  cp -r "$here/scripts" "$work/ditty/" 2>/dev/null
  work=$work/ditty
  shared=$work/../shared
  python=${PYTHON:-python3}
  models=(rwkv-14b dolly-v2-12b)
  block=512
  peft_models=(rwkv-14b dolly-v2-12b)
  peft_block=512
fi
export PATH=$(dirname "$node_bin"):$PATH
# cuBLASLt: the toolkit's, else the one inside PyTorch's nvidia-cublas wheel (not on the loader path)
if [ $dry = 0 ] && [ -z "${DITTY_CUBLASLT:-}" ]; then
  for d in /usr/local/cuda/lib64 /usr/local/cuda-13.0/lib64 $("$python" -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
    f=$(find "$d" -name 'libcublasLt.so.1[23]*' 2>/dev/null | sort | head -n 1)
    if [ -n "$f" ]; then export DITTY_CUBLASLT=$f; break; fi
  done
fi

# --- 0. the machine
{
  date -u +%FT%TZ
  nvidia-smi 2>&1 || echo "no nvidia-smi"
  nvcc --version 2>&1 | tail -n 2 || echo "no nvcc"
  "$node_bin" --version
  "$python" -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1
  "$python" -c 'import transformers, peft; print("transformers", transformers.__version__, "peft", peft.__version__)' 2>&1 | tail -n 1
  (cd "$work" && "$node_bin" bin/ditty.js env) 2>&1
} >"$out/env.log" 2>&1
printf 'env\t0\t0\n' >>"$status_file"

# --- 1. kernel tests against the CPU twins, then the sanitizers on them
if [ $dry = 1 ]; then
  # the emulated kernel suite (several schedules) and its ASan/UBSan build stand in for the GPU and
  # compute-sanitizer
  run_step kernels 1200 node "$here/scripts/build-cuda-emu.mjs" --run
  DITTY_EMU_QUICK=1 run_step sanitizers 1200 node "$here/scripts/build-cuda-emu.mjs" --run --asan
  # what the GPU run builds with nvcc: the same test programs for sm_90 (they stop at the first CUDA
  # call here, without a driver)
  run_step build-kernel-tests 900 bash "$here/scripts/gpu/build-cuda-tests.sh" "$out/kernel-tests" sm_90
else
  run_step build-kernel-tests 300 bash "$here/scripts/gpu/build-cuda-tests.sh" "$out/kernel-tests" sm_90
  kernels_ok=0
  for t in "$out"/kernel-tests/test_*; do
    [ -x "$t" ] || continue
    n=$(basename "$t")
    run_step "kernels-$n" 120 "$t" && kernels_ok=$((kernels_ok + 1))
    DITTY_EMU_QUICK=1 run_step "memcheck-$n" 180 compute-sanitizer --tool memcheck --error-exitcode 9 "$t"
    DITTY_EMU_QUICK=1 run_step "racecheck-$n" 180 compute-sanitizer --tool racecheck --error-exitcode 9 "$t"
  done
fi

# --- 2. the tiny fixtures, 20 steps, cuda vs cpu
run_step parity 600 "$node_bin" "$here/scripts/gpu/train-parity.mjs" "$out/parity" --steps 20 --ditty "$work" --shared "$shared"

# --- 3. the measured ceiling
run_step peak 120 "$python" "$here/scripts/gpu/matmul_peak.py"

# --- 4. ditty bench on the big shapes
for m in "${models[@]}"; do
  for ck in selective full; do
    run_step "bench-$(basename "$m" .json)-$ck" 600 bash -c "cd '$work' && '$node_bin' bin/ditty.js bench --model $m --backend cuda --block-size $block --batch-size 1 --steps $steps --warmup 1 --checkpointing $ck --json"
  done
done

# --- 5. transformers + PEFT, bf16, the same shapes
for m in "${peft_models[@]}"; do
  for ck in "" --checkpointing; do
    run_step "peft-$m${ck:+-ckpt}" 600 "$python" "$here/scripts/gpu/peft_baseline.py" --model "$m" --block-size "$peft_block" --steps "$steps" $ck
  done
done

# --- the table
"$node_bin" "$here/scripts/gpu/summarize.mjs" "$out" | tee "$out/summary.txt"
