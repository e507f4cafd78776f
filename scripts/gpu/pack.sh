#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on a GPU machine that has no node and no network, into the
# ignored folders the device tool carries (carry: [".node", ".bundle"], 64 MiB in all):
#   .node/node.xz          this machine's node binary
#   .bundle/ditty.tar.xz   ditty/: bin, dist, configs, package.json, the production node_modules and
#                          the built addon (build/Release, with its CUDA device when nvcc built it)
#   .bundle/shared.tar.xz  shared/: the tiny fixture models and the Dolly sample the parity run uses
# Run `npm ci` (or npm run build:native) and `npx tsc -p .` first.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
shared=${DITTY_SHARED:-$root/../shared}
[ -f build/Release/ditty_native.node ] || { echo "pack: build/Release/ditty_native.node is missing: run npm run build:native" >&2; exit 1; }
[ -d dist ] || { echo "pack: dist/ is missing: run npx tsc -p ." >&2; exit 1; }
mkdir -p .node .bundle
xz -T0 -6 -c "$(command -v node)" >.node/node.xz
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/ditty/build"
cp -r bin dist configs package.json "$stage/ditty/"
cp -r build/Release "$stage/ditty/build/"
cp build/*.txt "$stage/ditty/build/" 2>/dev/null || true
npm ls --omit=dev --parseable --all 2>/dev/null | sed "s|^$root/||" | grep '^node_modules/' | sort -u | while read -r d; do
  mkdir -p "$stage/ditty/$(dirname "$d")"
  cp -r "$d" "$stage/ditty/$d"
done
find "$stage/ditty/node_modules" \( -name '*.map' -o -name '*.md' -o -name '*.d.ts' \) -delete
tar -C "$stage" -cf - ditty | xz -T0 -6 >.bundle/ditty.tar.xz
mkdir -p "$stage/shared/fixtures" "$stage/shared/data"
for m in tiny-rwkv tiny-neox-parallel; do
  mkdir -p "$stage/shared/fixtures/$m"
  cp "$shared/fixtures/$m/config.json" "$shared/fixtures/$m/model.safetensors" "$shared/fixtures/$m/tokenizer.json" "$stage/shared/fixtures/$m/"
done
cp "$shared/data/dolly-sample.jsonl" "$stage/shared/data/"
tar -C "$stage" -cf - shared | xz -T0 -6 >.bundle/shared.tar.xz
du -ch .node/node.xz .bundle/*.tar.xz | tail -n 1
