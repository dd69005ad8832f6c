#!/usr/bin/env bash
# The GPU check, run on the GPU machine from the repo root with the bundle of scripts/gpu/pack.sh
# carried in scripts/gpu/bundle/ (see README, "Training on a GPU", for the device call):
#   1. unpack Node.js, the Vulkan loader (.debs, into a private folder: nothing is written to /) and the app;
#   2. point the Vulkan loader at NVIDIA's ICD (under /usr/local/nvidia/share there) and print the card;
#   3. scripts/gpu/train-check.mjs gpu: the adapter `auto` finds, correctness of a training step on
#      WebGPU against the wasm numbers carried in the bundle, tokens/s on WebGPU per shape;
#   4. bench/train_torch.py --device cuda for the same shapes;
#   5. scripts/gpu/decode-check.mjs gpu: real `fireopt distill` (tfjs target: KV-cache decoding) and
#      `fireopt eval` (teacher-forced draft pass) on `auto`, which must choose webgpu, against the
#      wasm results carried in the bundle (skipped when less than a minute of the 8 is left);
#   6. the ratios and both verdicts, into $OUT/results.json.
# Without an adapter it says so, checks the bundle on wasm, skips the timings, and exits 0.
# Environment: OUT (results folder; default ./gpu-out), STEPS (timed WebGPU steps per shape, default 20),
# TORCH_STEPS (default 30), TORCH_DEVICE (default cuda; cpu for a local test), PYTHON (default python3),
# TIMINGS=always (time the shapes even without an adapter, on wasm: a local test), WORK (unpack folder).
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bundle=${BUNDLE:-$repo/scripts/gpu/bundle}
out=${OUT:-$repo/gpu-out}
work=${WORK:-$(mktemp -d /tmp/fireopt-gpu.XXXXXX)}
torch_device=${TORCH_DEVICE:-cuda}
python=${PYTHON:-python3}
mkdir -p "$out" "$work"
exec > >(tee "$out/run.log") 2>&1
start=$SECONDS
say() { echo "[gpu-check $((SECONDS - start))s] $*"; }

say "unpack the bundle into $work"
for f in node.xz app.tar.xz; do [[ -s $bundle/$f ]] || { say "missing $bundle/$f: run scripts/gpu/pack.sh and carry scripts/gpu/bundle"; exit 2; }; done
xz -dc "$bundle/node.xz" >"$work/node" && chmod +x "$work/node" || { say "cannot unpack Node.js"; exit 2; }
mkdir -p "$work/sys"
for deb in "$bundle"/debs/*.deb; do dpkg-deb -x "$deb" "$work/sys" || say "cannot unpack $deb"; done
tar -C "$work" -xJf "$bundle/app.tar.xz" || { say "cannot unpack the app"; exit 2; }
node=$work/node
app=$work/app
export LD_LIBRARY_PATH="$work/sys/usr/lib/x86_64-linux-gnu:$work/sys/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
say "node $("$node" --version); $(head -1 "$bundle/MANIFEST.txt" 2>/dev/null)"

say "GPU and Vulkan driver"
card=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
say "card: ${card:-none (nvidia-smi found no GPU)}"
icd=""
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/local/nvidia/share/vulkan/icd.d/*.json /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json; do
  if [[ -f $f ]]; then icd=$f; break; fi
done
[[ -n $icd ]] || icd=$(find /usr/local/nvidia/share -name '*icd*.json' 2>/dev/null | head -1)
if [[ -n $icd ]]; then
  export VK_ICD_FILENAMES=$icd VK_DRIVER_FILES=$icd
  say "Vulkan ICD: $icd: $(tr -d ' \n' <"$icd" | cut -c1-200)"
  icd_lib=$(sed -n 's/.*"library_path" *: *"\([^"]*\)".*/\1/p' "$icd" | head -1)
  icd_path=$icd_lib
  if [[ $icd_lib != /* ]]; then
    icd_path=$(ldconfig -p 2>/dev/null | awk -v l="$icd_lib" '$1 == l {print $NF; exit}')
    [[ -n $icd_path ]] || icd_path=$(find /usr/local/nvidia /usr/lib/x86_64-linux-gnu -name "$icd_lib" 2>/dev/null | head -1)
  fi
  if [[ -n $icd_path && -e $icd_path ]]; then
    missing=$(ldd "$icd_path" 2>/dev/null | grep 'not found' | tr -s ' \t' ' ')
    say "ICD library $icd_path${missing:+; MISSING:$missing}"
  else
    say "ICD library $icd_lib not found on this machine"
  fi
else
  say "no Vulkan ICD JSON under /usr/local/nvidia/share (or /usr/share/vulkan, /etc/vulkan): WebGPU will find no adapter"
fi

say "WebGPU: adapter, correctness against the carried wasm numbers, tokens/s"
timeout -k 10 280 "$node" "$app/scripts/gpu/train-check.mjs" gpu --targets "$app/data/targets" --reference "$app/reference.json" \
  --out "$out/webgpu.json" ${STEPS:+--steps "$STEPS"} ${TIMINGS:+--timings "$TIMINGS"} 2> >(grep -v 'Closing file descriptor\|DEP0137\|trace-warnings' >&2)
check_rc=$?
say "train-check exit $check_rc"

torch_json=$out/torch.jsonl
: >"$torch_json"
if [[ -s $out/webgpu.json ]] && grep -q '"backend": "webgpu"' "$out/webgpu.json" || [[ -n ${TIMINGS:-} ]]; then
  if "$python" -c "import torch, sys; sys.exit(0 if '$torch_device' == 'cpu' or torch.cuda.is_available() else 1)" 2>/dev/null; then
    say "PyTorch ($torch_device), same architecture and shapes"
    "$python" - "$app/reference.json" >"$work/torch-args.txt" <<'EOF'
import json, sys
for s in json.load(open(sys.argv[1]))["shapes"]:
    print(s["name"] + "\t" + " ".join(str(s[k]) for k in ("dim", "nLayers", "nHeads", "nKvHeads", "hiddenDim", "vocab", "batch", "seq")))
EOF
    while IFS=$'\t' read -r name shape_args; do
      # shellcheck disable=SC2086
      line=$(timeout -k 5 60 "$python" "$app/bench/train_torch.py" $shape_args "${TORCH_STEPS:-30}" 8 --device "$torch_device" | tail -1)
      say "torch $torch_device, $name: ${line:-FAILED}"
      [[ -n $line ]] && "$python" -c "import json,sys; d=json.loads(sys.argv[2]); d['shape']=sys.argv[1]; print(json.dumps(d))" "$name" "$line" >>"$torch_json"
    done <"$work/torch-args.txt"
  else
    say "PyTorch with CUDA not available: the PyTorch comparison is skipped"
  fi
else
  say "no WebGPU adapter: the timings are skipped"
fi

# The whole run stays within 8 minutes: the decode/eval check gets what is left, at most 90 s.
decode_budget=$((470 - (SECONDS - start)))
((decode_budget > 90)) && decode_budget=90
decode_rc=0
rm -f "$out/decode.json"
if ((decode_budget >= 45)); then
  say "decode and eval: fireopt distill (tfjs target) and fireopt eval on auto, against the carried wasm results (at most ${decode_budget} s)"
  timeout -k 5 "$decode_budget" "$node" "$app/scripts/gpu/decode-check.mjs" gpu --data "$app/data/decode" --targets "$app/data/targets" --out "$out/decode.json"
  decode_rc=$?
  # 3: it passed, but not on webgpu (no adapter); 124: out of time.
  say "decode-check exit $decode_rc"
else
  say "decode/eval check skipped: only ${decode_budget} s of the 8 minutes left"
fi

say "summary"
"$python" - "$out/webgpu.json" "$torch_json" "$out/results.json" "$card" "$out/decode.json" <<'EOF'
import json, sys
webgpu_path, torch_path, results_path, card, decode_path = sys.argv[1:6]
try:
    webgpu = json.load(open(webgpu_path))
except Exception as error:
    webgpu = {"error": f"no webgpu.json: {error}"}
torch_rows = {}
for line in open(torch_path):
    row = json.loads(line)
    torch_rows[row["shape"]] = row
rows = []
for r in webgpu.get("throughput", []):
    t = torch_rows.get(r["shape"], {})
    w = next((w for w in webgpu.get("wasm_reference", []) if w.get("shape") == r["shape"]), {})
    tps = r.get("tokens_per_s")
    rows.append({
        "shape": r["shape"], "webgpu_tokens_per_s": tps, "torch_tokens_per_s": round(t["tokens_per_s"]) if t else None,
        "webgpu_over_torch": round(tps / t["tokens_per_s"], 3) if tps and t else None,
        "wasm_2threads_tokens_per_s": w.get("tokens_per_s"), "webgpu_over_wasm": round(tps / w["tokens_per_s"], 1) if tps and w.get("tokens_per_s") else None,
        "webgpu_median_step_ms": r.get("median_step_ms"), "error": r.get("error"),
    })
adapter = webgpu.get("adapter")
correctness = webgpu.get("correctness") or {}
try:
    decode = json.load(open(decode_path))
except Exception as error:
    decode = {"error": f"no decode.json: {error}"}
decode_comparison = decode.get("comparison") or {}
decode_on_webgpu = all(str(b or "").startswith("webgpu") for b in (decode.get("backend") or {"": None}).values())
results = {
    "card": card or None, "adapter": adapter, "auto_choice": webgpu.get("auto_choice"), "backend": webgpu.get("backend"),
    "correctness_pass": correctness.get("pass"), "correctness": correctness, "rows": rows,
    "torch": next(iter(torch_rows.values()), {}).get("torch"), "reference_machine": webgpu.get("reference_machine"),
    "verdict": ("no adapter" if adapter is None else "ok" if correctness.get("pass") else "correctness FAILED"),
    "decode_eval": decode,
    "decode_eval_verdict": (f"error: {decode['error']}" if decode.get("error") else "FAILED" if not decode_comparison.get("pass")
                            else "ok" if decode_on_webgpu else "ok, but not on webgpu"),
}
json.dump(results, open(results_path, "w"), indent=2)
print(f"card: {card or 'none'}")
print(f"adapter: {adapter['vendor'] + ' ' + adapter['architecture'] + ' (' + adapter['description'] + ')' if adapter else 'NONE (no WebGPU adapter)'}")
print(f"auto: {webgpu.get('auto_choice')}")
if correctness:
    print(f"correctness on {webgpu.get('backend')}: {'PASS' if correctness.get('pass') else 'FAIL'} (loss rel {correctness['loss']['relError']:.2e}, worst gradient rel {correctness['worstGradient']['relError']:.2e}, AdamW steps rel {correctness['trajectoryRelError']:.2e})")
if rows:
    print("| shape | WebGPU tokens/s | PyTorch tokens/s | WebGPU / PyTorch | wasm 2 threads (carried) | WebGPU / wasm |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['shape']} | {r['webgpu_tokens_per_s']} | {r['torch_tokens_per_s']} | {r['webgpu_over_torch']} | {r['wasm_2threads_tokens_per_s']} | {r['webgpu_over_wasm']} |")
print(f"verdict: {results['verdict']}")
if decode_comparison:
    d, e = decode_comparison["decode"], decode_comparison["eval"]
    print(f"decode (fireopt distill, tfjs target) on {(decode.get('backend') or {}).get('decode')}: {d['identical_rows']}/{d['rows']} rows identical to wasm, "
          f"max |Δ log p| {d['max_logprob_diff']:.2e}, {decode['decode']['seconds']} s (wasm here {decode['decode']['reference_wasm_seconds']} s)")
    print(f"eval (fireopt eval, draft): τ(k=8) {e['tau_k8']:.4f} vs wasm {e['reference_tau_k8']:.4f}, max relative Δτ {e['max_tau_rel_diff']:.2e}, "
          f"{decode['eval']['seconds']} s (wasm here {decode['eval']['reference_wasm_seconds']} s)")
print(f"decode/eval verdict: {results['decode_eval_verdict']}")
EOF
say "done; results in $out (results.json, webgpu.json, torch.jsonl, decode.json, run.log)"
if ((check_rc != 0)); then exit $check_rc; fi
((decode_rc == 0 || decode_rc == 3)) || exit 1
