#!/usr/bin/env bash
# Check a `fireopt export` Hugging Face folder on a GPU machine that has Python, PyTorch and
# transformers but no Node.js and no network: loads it with transformers' LlamaForCausalLM (and a
# hand-written PyTorch Llama over the safetensors) and compares the logits with fireopt's own,
# which the export wrote into hf/reference/.
#
# Pack on the machine that ran fireopt (the export folder and this folder travel together):
#   fireopt export --model out/run/draft --format hf --out out/export --target <target HF folder>
#   tar czf hf-check.tgz out/export/hf scripts/gpu
# Run on the GPU machine:
#   tar xzf hf-check.tgz
#   scripts/gpu/check-hf-export.sh out/export                # transformers on cuda (torch reference if no transformers)
#   scripts/gpu/check-hf-export.sh out/export --engine both  # both engines
# It prints one JSON line per engine and a summary line; exit 0 = the logits agree, 1 = they do not,
# 2 = bad input. Paste the lines into bench/RESULTS.md under "## Export".
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ $# -lt 1 ]; then
  echo "usage: $0 <export dir or its hf/ folder> [--engine auto|transformers|torch|both] [--device cuda|cpu] [--tol 1e-4]" >&2
  exit 2
fi
export_dir="$1"
shift
if [ -d "$export_dir/hf" ]; then export_dir="$export_dir/hf"; fi
exec "${PYTHON:-python3}" "$here/check_hf_export.py" --export "$export_dir" "$@"
