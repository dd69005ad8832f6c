#!/usr/bin/env python3
"""Check a fireopt Hugging Face export against fireopt's own logits, without Node.js or network.

fireopt export writes <out>/hf/ (config.json, model.safetensors, ...) and <out>/hf/reference/
(reference.json + logits.f32: fireopt's raw logits after every token of a few prompts). This script
runs the same prompts through

  transformers  AutoModelForCausalLM.from_pretrained(<hf>) (LlamaForCausalLM, Qwen2ForCausalLM or
                Qwen3ForCausalLM by config.json), the way vLLM / SGLang / transformers load it;
  torch         a hand-written Llama / Qwen2 / Qwen3 forward pass over the safetensors (this file's
                own reader), an independent check that needs only PyTorch and NumPy;

and compares the logits. Prints one JSON object per engine and a summary; exits 0 when every engine
that ran agrees (max |difference| <= tol * max(1, max |logit|), and the same greedy token wherever
fireopt's top two logits are further apart than that), 1 when one does not, 2 on bad input.

    python3 check_hf_export.py --export out/export/hf [--engine auto|transformers|torch|both] [--device cuda] [--tol 1e-4]
"""
import argparse
import json
import os
import struct
import sys

import numpy as np


def read_safetensors(path):
    """name -> float32 numpy array, from the file's own header (F32, F16, BF16)."""
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len).decode("utf-8"))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[begin:end]
        dtype = info["dtype"]
        if dtype == "F32":
            values = np.frombuffer(raw, dtype="<f4")
        elif dtype == "F16":
            values = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dtype == "BF16":
            values = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f"{path}: tensor {name} has dtype {dtype}")
        tensors[name] = values.reshape(info["shape"])
    return tensors, header


def load_reference(reference_dir):
    with open(os.path.join(reference_dir, "reference.json")) as f:
        meta = json.load(f)
    logits = np.fromfile(os.path.join(reference_dir, "logits.f32"), dtype="<f4")
    return meta, logits.reshape(meta["rows"], meta["vocab_size"])


def torch_llama_logits(config, tensors, ids, device):
    """Llama forward pass in float64, Hugging Face layout (rotate-half RoPE), written from the paper.

    Qwen2 adds q/k/v projection biases; Qwen3 applies an RMSNorm (q_norm / k_norm, over head_dim) to
    every head of q and k before RoPE. Both are taken from the tensors present, as config.json's
    model_type says they must be."""
    import torch

    t = lambda name: torch.from_numpy(np.array(tensors[name], dtype=np.float64)).to(device)
    model_type = config.get("model_type", "llama")
    if model_type not in ("llama", "qwen2", "qwen3"):
        raise ValueError(f"model_type {model_type!r} is not implemented by the torch reference")
    dim = config["hidden_size"]
    n_heads = config["num_attention_heads"]
    n_kv = config.get("num_key_value_heads") or n_heads
    hd = config.get("head_dim") or (128 if model_type == "qwen3" else dim // n_heads)
    eps = config.get("rms_norm_eps", 1e-6)
    theta = config.get("rope_theta", 10000.0)
    if config.get("rope_scaling"):
        raise ValueError("rope_scaling is not implemented by the torch reference")

    def rms_norm(x, weight):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight

    def rotate_half(x):
        half = x.shape[-1] // 2
        return torch.cat([-x[..., half:], x[..., :half]], dim=-1)

    T = len(ids)
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64, device=device) / hd))
    angles = torch.outer(torch.arange(T, dtype=torch.float64, device=device), inv_freq)  # [T, hd/2]
    cos = torch.cat([angles, angles], dim=-1).cos()  # [T, hd]
    sin = torch.cat([angles, angles], dim=-1).sin()
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64, device=device).triu(1)

    x = t("model.embed_tokens.weight")[torch.tensor(ids, device=device)]  # [T, dim]
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        h = rms_norm(x, t(p + "input_layernorm.weight"))
        def project(name, heads):  # [T, dim] -> [heads, T, hd], with the bias Qwen2 has
            y = h @ t(p + f"self_attn.{name}.weight").T
            if model_type == "qwen2":
                y = y + t(p + f"self_attn.{name}.bias")
            return y.view(T, heads, hd).transpose(0, 1)

        q = project("q_proj", n_heads)  # [H, T, hd]
        k = project("k_proj", n_kv)
        v = project("v_proj", n_kv)
        if model_type == "qwen3":
            q = rms_norm(q, t(p + "self_attn.q_norm.weight"))
            k = rms_norm(k, t(p + "self_attn.k_norm.weight"))
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(n_heads // n_kv, dim=0)
        v = v.repeat_interleave(n_heads // n_kv, dim=0)
        attention = torch.softmax(q @ k.transpose(1, 2) / hd ** 0.5 + mask, dim=-1)  # [H, T, T]
        out = (attention @ v).transpose(0, 1).reshape(T, n_heads * hd)
        x = x + out @ t(p + "self_attn.o_proj.weight").T
        h = rms_norm(x, t(p + "post_attention_layernorm.weight"))
        gate = h @ t(p + "mlp.gate_proj.weight").T
        up = h @ t(p + "mlp.up_proj.weight").T
        x = x + (torch.nn.functional.silu(gate) * up) @ t(p + "mlp.down_proj.weight").T
    x = rms_norm(x, t("model.norm.weight"))
    head = "model.embed_tokens.weight" if config.get("tie_word_embeddings") else "lm_head.weight"
    return (x @ t(head).T).cpu().numpy()


def transformers_logits_fn(export_dir, device):
    import torch
    from transformers import AutoModelForCausalLM

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = AutoModelForCausalLM.from_pretrained(export_dir, torch_dtype=torch.float32).to(device).eval()

    def run(ids):
        with torch.no_grad():
            return model(torch.tensor([ids], device=device)).logits[0].float().cpu().numpy()

    return run


def compare(name, reference_meta, reference_logits, logits_of, tol):
    worst = 0.0
    scale = 1.0
    positions = 0
    greedy_same = 0
    greedy_decisive = 0
    greedy_decisive_same = 0
    for prompt in reference_meta["prompts"]:
        ids = prompt["token_ids"]
        expected = reference_logits[prompt["row"] : prompt["row"] + len(ids)].astype(np.float64)
        got = np.asarray(logits_of(ids), dtype=np.float64)
        if got.shape != expected.shape:
            raise ValueError(f"{name}: logits of shape {got.shape}, fireopt's are {expected.shape}")
        worst = max(worst, float(np.abs(got - expected).max()))
        scale = max(scale, float(np.abs(expected).max()))
        top2 = np.sort(expected, axis=-1)[:, -2:]
        for row in range(len(ids)):
            positions += 1
            same = int(np.argmax(got[row]) == np.argmax(expected[row]))
            greedy_same += same
            if top2[row, 1] - top2[row, 0] > tol * scale:
                greedy_decisive += 1
                greedy_decisive_same += same
    passed = worst <= tol * scale and greedy_decisive_same == greedy_decisive
    return {
        "engine": name,
        "passed": passed,
        "positions": positions,
        "max_abs_diff": worst,
        "max_abs_logit": scale,
        "tolerance": tol * scale,
        "greedy_agreement": greedy_same / positions if positions else None,
        "greedy_decisive_positions": greedy_decisive,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export", required=True, help="the HF folder fireopt export wrote (<out>/hf)")
    parser.add_argument("--reference", help="reference folder (default: <export>/reference)")
    parser.add_argument("--engine", default="auto", choices=["auto", "transformers", "torch", "both"])
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--tol", type=float, default=1e-4, help="relative tolerance on the logits (default 1e-4)")
    args = parser.parse_args()

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    export_dir = args.export
    if os.path.isdir(os.path.join(export_dir, "hf")):
        export_dir = os.path.join(export_dir, "hf")
    try:
        with open(os.path.join(export_dir, "config.json")) as f:
            config = json.load(f)
        meta, reference_logits = load_reference(args.reference or os.path.join(export_dir, "reference"))
    except (OSError, ValueError) as error:
        print(json.dumps({"error": str(error)}))
        return 2

    engines = []
    if args.engine in ("transformers", "both", "auto"):
        try:
            import transformers  # noqa: F401

            engines.append("transformers")
        except ImportError:
            if args.engine != "auto":
                print(json.dumps({"error": "transformers is not installed"}))
                return 2
    if args.engine in ("torch", "both") or (args.engine == "auto" and not engines):
        engines.append("torch")

    results = []
    for engine in engines:
        if engine == "transformers":
            logits_of = transformers_logits_fn(export_dir, device)
        else:
            tensors, _ = read_safetensors(os.path.join(export_dir, "model.safetensors"))
            logits_of = lambda ids: torch_llama_logits(config, tensors, ids, device)
        result = compare(engine, meta, reference_logits, logits_of, args.tol)
        result["device"] = device
        result["torch"] = torch.__version__
        if engine == "transformers":
            import transformers

            result["transformers"] = transformers.__version__
        results.append(result)
        print(json.dumps(result))
    summary = {"export": os.path.abspath(export_dir), "passed": all(r["passed"] for r in results), "engines": [r["engine"] for r in results]}
    print(json.dumps(summary))
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
