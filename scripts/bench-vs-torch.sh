#!/usr/bin/env bash
# Side by side on this CPU: ditty's native cpu engine, ditty's wasm engine, and PyTorch (Debian's
# python3-torch on OpenBLAS), the same LoRA training step (block 512, batch 1, r 8, random weights of
# the same shapes, same thread count). Prints tokens/s of each and the ratio ditty/torch.
#   scripts/bench-vs-torch.sh [OUT_DIR]     (default /tmp/bench-vs-torch; raw JSON lines land there)
# Environment: PYTHON (a python with torch; default: the first of python3, /usr/bin/python3 that has it),
#   STEPS (timed steps, default 3), DITTY_BENCH_ARGS (extra `ditty bench` arguments, e.g. "--bits 16":
#   ditty bench defaults to an NF4 base, the torch peer always runs a float32 base).
set -euo pipefail

cd "$(dirname "$0")/.."
out=${1:-/tmp/bench-vs-torch}
steps=${STEPS:-3}
models="rwkv-169m pythia-160m"
threads="1 2"
extra=${DITTY_BENCH_ARGS:-}
mkdir -p "$out"
log() { printf '%s\n' "$*" >&2; }

# --- (a) PyTorch and OpenBLAS from Debian, when missing
find_python() {
  local p
  for p in ${PYTHON:-} python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import torch' >/dev/null 2>&1; then
      echo "$p"
      return 0
    fi
  done
  return 1
}
python=$(find_python || true)
have_openblas() { compgen -G '/usr/lib/*/openblas*/libopenblas*.so*' >/dev/null || compgen -G '/usr/lib/*/libopenblas*.so*' >/dev/null; }
if [ -z "$python" ] || ! have_openblas; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    log "installing python3-torch and libopenblas0 with apt-get"
    if ! { $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q python3-torch libopenblas0; } >"$out/apt.log" 2>&1; then
      log "apt-get failed (see $out/apt.log); the torch column will be empty"
    fi
    python=$(find_python || true)
  else
    log "no apt-get here: install PyTorch yourself and set PYTHON=/path/to/python; the torch column will be empty"
  fi
fi

# --- helpers: last JSON line of a file -> one field (node, since python may be absent)
field() { # file key
  node -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter((l) => l.startsWith("{"));
    if (lines.length === 0) process.exit(1);
    const v = JSON.parse(lines[lines.length - 1])[process.argv[2]];
    if (typeof v !== "number") process.exit(1);
    console.log(v.toFixed(1));' "$1" "$2" 2>/dev/null
}
fail_line() { # file: the last non-empty line of its stderr, as the error to show
  grep -v '^[[:space:]]*$' "$1" | grep -v '^    at ' | tail -n 1 || true
}

# runs "$@" with stdout to $name.json and stderr to $name.err; prints the figure or "-"
run_one() { # name key command...
  local name=$1 key=$2
  shift 2
  log "$(date -u +%T) $name: $*"
  if "$@" >"$out/$name.json" 2>"$out/$name.err" && field "$out/$name.json" "$key" >/dev/null; then
    field "$out/$name.json" "$key"
  else
    log "  $name failed: $(fail_line "$out/$name.err")"
    echo "-"
  fi
}

# --- (b) the runs
declare -A native torch wasm
for m in $models; do
  # shellcheck disable=SC2086  # $extra is a list of arguments
  wasm[$m]=$(run_one "ditty-wasm-$m-1" tokensPerSecond env DITTY_THREADS=1 \
    node bin/ditty.js bench --model "$m" --backend wasm --block-size 512 --batch-size 1 --lora-r 8 --steps "$steps" --json $extra)
  for t in $threads; do
    # shellcheck disable=SC2086
    native[$m.$t]=$(run_one "ditty-cpu-$m-$t" tokensPerSecond env DITTY_THREADS="$t" \
      node bin/ditty.js bench --model "$m" --backend cpu --block-size 512 --batch-size 1 --lora-r 8 --steps "$steps" --json $extra)
    if [ -n "$python" ]; then
      torch[$m.$t]=$(run_one "torch-$m-$t" tokens_per_s env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS="$t" \
        "$python" scripts/torch-peer/lora_step.py --model "$m" --threads "$t" --steps "$steps" --json)
    else
      torch[$m.$t]="-"
    fi
  done
done

# --- (c) the table
ratio() { # a b
  node -e 'const [a, b] = process.argv.slice(1).map(Number); console.log(a > 0 && b > 0 ? (a / b).toFixed(2) + "x" : "-")' "$1" "$2"
}
num() { case $1 in -) echo 0 ;; *) echo "$1" ;; esac; }
echo
echo "LoRA training step, block 512, batch 1, r 8, tokens/s ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?'))"
printf '%-12s %7s %12s %12s %12s %13s %13s\n' model threads ditty-cpu torch ditty-wasm cpu/torch cpu/wasm
for m in $models; do
  for t in $threads; do
    w="-"
    if [ "$t" = 1 ]; then w=${wasm[$m]}; fi
    printf '%-12s %7s %12s %12s %12s %13s %13s\n' "$m" "$t" "${native[$m.$t]}" "${torch[$m.$t]}" "$w" \
      "$(ratio "$(num "${native[$m.$t]}")" "$(num "${torch[$m.$t]}")")" \
      "$(ratio "$(num "${native[$m.$t]}")" "$(num "${wasm[$m]}")")"
  done
done
echo "ditty: ${extra:-NF4 base, the default of ditty bench}; torch: float32 base (scripts/torch-peer/lora_step.py)"
echo "raw JSON lines and stderr: $out/"
