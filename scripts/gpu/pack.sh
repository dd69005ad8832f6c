#!/usr/bin/env bash
# Build the bundle that scripts/gpu/run.sh needs on the GPU machine (NVIDIA driver, Python and
# PyTorch there; no Node.js, no Vulkan loader, no network) into scripts/gpu/bundle/ (git-ignored,
# carried by the device tool; must stay under 64 MiB):
#   node.xz         this machine's Node.js binary (process.execPath), xz-compressed
#   debs/*.deb      the Vulkan loader (libvulkan1) and the GLVND/X11 libraries NVIDIA's ICD loads
#   app.tar.xz      dist/, bin/, package.json, the runtime node_modules subset (pruned), the check
#                   programs, bench/train_torch.py, real training targets (stories260K, vocab 512),
#                   reference.json (the wasm training numbers measured here) and data/decode/ (the
#                   inputs and wasm results of decode-check.mjs: fireopt distill with the tfjs target
#                   and fireopt eval)
#   MANIFEST.txt    what is inside, with sizes
# Usage: bash scripts/gpu/pack.sh            (needs: npm ci done, network for apt-get download)
#        REFERENCE_STEPS=3 bash scripts/gpu/pack.sh
# Takes ~10 minutes on the 2-core dev machine (distill ~2.5 min, wasm reference ~4 min, decode/eval
# reference ~20 s, xz ~3 min);
# node.xz, debs/ and the targets are reused when present.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bundle=$repo/scripts/gpu/bundle
work=$repo/scripts/gpu/bundle.work
stage=$work/app
mkdir -p "$bundle/debs" "$work"
cd "$repo"
say() { echo "[pack] $*"; }

say "build"
npx tsc -p tsconfig.json

node_bin=$(node -p process.execPath)
node_version=$(node -p process.version)
if [[ ! -s $bundle/node.xz || "$(cat "$bundle/node.version" 2>/dev/null)" != "$node_version" ]]; then
  say "compress $node_bin ($node_version)"
  xz -9 -T0 -c "$node_bin" >"$bundle/node.xz.tmp" && mv "$bundle/node.xz.tmp" "$bundle/node.xz"
  echo "$node_version" >"$bundle/node.version"
fi

if ! ls "$bundle"/debs/libvulkan1_*.deb >/dev/null 2>&1; then
  say "download the Vulkan loader and the libraries NVIDIA's Vulkan ICD loads"
  apt-get update -qq
  (cd "$bundle/debs" && apt-get download libvulkan1 libglvnd0 libglx0 libegl1 libx11-6 libx11-data libxext6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0 2>&1 | grep -v unsandboxed || true)
  # Epochs in Debian file names ("2%3a1.8.4") are awkward in carried paths.
  for f in "$bundle"/debs/*%3a*; do [[ -e $f ]] && mv "$f" "${f//%3a/_}"; done
fi

targets=$work/targets-work/targets
if [[ ! -s $targets/train.arrow ]]; then
  say "make training targets (stories260K distill)"
  node scripts/gpu/make-targets.mjs "$work/targets-work" >/dev/null
fi

if [[ ! -s $work/reference.json || scripts/gpu/train-check.mjs -nt $work/reference.json ]]; then
  say "wasm reference (correctness batch and tokens/s; load average $(cut -d' ' -f1-3 /proc/loadavg))"
  node scripts/gpu/train-check.mjs reference --targets "$targets" --out "$work/reference.json" ${REFERENCE_STEPS:+--steps $REFERENCE_STEPS}
fi

decode_data=$work/decode-data
say "decode/eval reference on wasm (fireopt distill with the tfjs target, fireopt eval)"
node scripts/gpu/decode-check.mjs reference --prompts "$work/targets-work/prompts.jsonl" --model "$work/targets-work/stories260K.gguf" \
  --targets "$targets" --out "$decode_data"

say "stage the app"
rm -rf "$stage"
mkdir -p "$stage/scripts/gpu" "$stage/bench" "$stage/data/targets" "$stage/node_modules"
cp -r dist bin package.json "$stage/"
find "$stage/dist" -name '*.map' -delete
cp scripts/gpu/train-check.mjs scripts/gpu/decode-check.mjs "$stage/scripts/gpu/"
cp bench/train_torch.py "$stage/bench/"
cp "$targets/train.arrow" "$targets/manifest.json" "$stage/data/targets/"
cp "$work/reference.json" "$stage/reference.json"
mkdir -p "$stage/data/decode"
cp -r "$decode_data"/{dataset,draft,stories260K.gguf,reference.json} "$stage/data/decode/"

# The runtime closure of dist/backend, dist/model, dist/train and dist/formats/targets-schema, plus
# the WebGPU packages, plus what bin/fireopt's distill (tfjs target) and eval commands load (checked
# by running decode-check.mjs in a staged copy with no other node_modules above it).
packages=(
  @tensorflow/tfjs-core @tensorflow/tfjs-backend-cpu @tensorflow/tfjs-backend-wasm @tensorflow/tfjs-backend-webgpu
  long seedrandom node-fetch whatwg-url tr46 webidl-conversions
  webgpu
  apache-arrow flatbuffers json-with-bigint tslib
  zod commander cli-progress string-width emoji-regex yaml @huggingface/tokenizers @huggingface/jinja p-queue eventemitter3 p-timeout
)
for p in "${packages[@]}"; do
  mkdir -p "$stage/node_modules/$(dirname "$p")"
  cp -r "node_modules/$p" "$stage/node_modules/$p"
done
nm=$stage/node_modules
# Prune: source maps, typings, browser bundles, tests, sources, nested node_modules, other platforms' Dawn.
find "$nm" \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.min.js' -o -name '*_test.js' -o -name '*.md' -o -name '*.ts' \) -type f -delete
for p in tfjs-core/dist/tf-core tfjs-backend-cpu/dist/tf-backend-cpu tfjs-backend-wasm/dist/tf-backend-wasm tfjs-backend-webgpu/dist/tf-backend-webgpu; do
  rm -f "$nm/@tensorflow/$p.js" "$nm/@tensorflow/$p.es2017.js" "$nm/@tensorflow/$p.fesm.js" "$nm/@tensorflow/$p.esm.js"
done
# Only tfjs-core's ESM tree is imported (the gradient registrations); the other backends load their node bundles.
for p in tfjs-backend-cpu tfjs-backend-webgpu; do
  find "$nm/@tensorflow/$p/dist" -mindepth 1 -maxdepth 1 ! -name "tf-backend-${p#tfjs-backend-}.node.js" -exec rm -rf {} +
done
find "$nm/@tensorflow/tfjs-backend-wasm/dist" -mindepth 1 -maxdepth 1 ! -name 'tf-backend-wasm.node.js' ! -name '*.wasm' -exec rm -rf {} +
rm -rf "$nm/@tensorflow/tfjs-backend-wasm/src" "$nm/@tensorflow/tfjs-backend-wasm/wasm-out/"*.d.ts
rm -rf "$nm/@tensorflow/tfjs-core/src" "$nm/@tensorflow/tfjs-core/dist/miniprogram" "$nm/@tensorflow/tfjs-core/dist/tf-core.node.js.map"
# string-width 4 (of cli-progress) keeps older strip-ansi, ansi-regex and is-fullwidth-code-point
# nested: they move to the top, where nothing else of the stage has them.
for p in strip-ansi ansi-regex is-fullwidth-code-point; do cp -r "node_modules/string-width/node_modules/$p" "$nm/$p"; done
find "$nm" -mindepth 2 -type d -name node_modules -prune -exec rm -rf {} +
find "$nm/webgpu/dist" -mindepth 1 -maxdepth 1 ! -name linux-x64 -exec rm -rf {} +
rm -rf "$nm/webgpu/build" "$nm/apache-arrow/src" "$nm/flatbuffers/ts" "$nm/flatbuffers/mjs" "$nm/flatbuffers/js/flexbuffers"
# apache-arrow ships CJS, ESM and UMD builds side by side: Node's ESM import takes Arrow.node.mjs (*.mjs).
find "$nm/apache-arrow" -type f \( -name '*.js' -o -name '*.cjs' \) ! -name 'package.json' -delete
rm -rf "$nm/apache-arrow/bin"

say "compress the app"
tar -C "$work" -cf - app | xz -6 -T0 >"$bundle/app.tar.xz.tmp" && mv "$bundle/app.tar.xz.tmp" "$bundle/app.tar.xz"

{
  echo "fireopt GPU bundle, packed $(date -u +%FT%TZ) from commit $(git rev-parse --short HEAD)$(git diff --quiet -- src scripts/gpu || echo '+changes')"
  echo "node $node_version ($node_bin)"
  echo
  echo "== files (bytes) =="
  (cd "$bundle" && find . -type f ! -name MANIFEST.txt -printf '%10s  %p\n' | sort -k2)
  echo
  echo "== app, unpacked (KiB) =="
  du -sk "$stage"/* "$nm"/* "$nm"/@tensorflow/* | sed "s#$work/##" | sort -k2
} >"$bundle/MANIFEST.txt"
total=$(find "$bundle" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
say "bundle: $((total / 1024 / 1024)) MiB in $bundle (limit 64 MiB; scripts/gpu/bundle.work/ is not carried)"
if ((total > 60 * 1024 * 1024)); then say "TOO LARGE"; exit 1; fi
