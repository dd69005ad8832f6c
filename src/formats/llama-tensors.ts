/**
 * The tensors of a Llama-family model under one stable key each (the keys of model/weights.ts's
 * expectedShapes: `tokenEmbedding`, `layers.3.wq`, `layers.3.bq`, `finalNorm`, `output`), with their
 * names in GGUF (llama.cpp's llama-arch.cpp) and in Hugging Face checkpoints (transformers'
 * modeling_llama / modeling_qwen2 / modeling_qwen3), the conversions between LlamaWeights and a
 * key → tensor map, and the RoPE row permutation between the interleaved and rotate-half layouts.
 */
import { InputError } from '../errors.js';
import type { LlamaConfig } from '../model/config.js';
import { dense, expectedShapes, type DenseTensor, type LayerWeights, type LlamaWeights } from '../model/weights.js';

type LayerField = keyof LayerWeights;

/** Every per-layer field, in file order (the optional Qwen tensors last). */
const LAYER_FIELDS: readonly LayerField[] = [
  'attnNorm',
  'wq',
  'wk',
  'wv',
  'wo',
  'ffnNorm',
  'w1',
  'w2',
  'w3',
  'bq',
  'bk',
  'bv',
  'qNorm',
  'kNorm',
];

/** GGUF name of each field inside `blk.N.`. */
const GGUF_LAYER_NAMES: Record<LayerField, string> = {
  attnNorm: 'attn_norm.weight',
  wq: 'attn_q.weight',
  wk: 'attn_k.weight',
  wv: 'attn_v.weight',
  wo: 'attn_output.weight',
  ffnNorm: 'ffn_norm.weight',
  w1: 'ffn_gate.weight',
  w2: 'ffn_down.weight',
  w3: 'ffn_up.weight',
  bq: 'attn_q.bias',
  bk: 'attn_k.bias',
  bv: 'attn_v.bias',
  qNorm: 'attn_q_norm.weight',
  kNorm: 'attn_k_norm.weight',
};

/** Hugging Face name of each field inside `model.layers.N.`. */
const HF_LAYER_NAMES: Record<LayerField, string> = {
  attnNorm: 'input_layernorm.weight',
  wq: 'self_attn.q_proj.weight',
  wk: 'self_attn.k_proj.weight',
  wv: 'self_attn.v_proj.weight',
  wo: 'self_attn.o_proj.weight',
  ffnNorm: 'post_attention_layernorm.weight',
  w1: 'mlp.gate_proj.weight',
  w2: 'mlp.down_proj.weight',
  w3: 'mlp.up_proj.weight',
  bq: 'self_attn.q_proj.bias',
  bk: 'self_attn.k_proj.bias',
  bv: 'self_attn.v_proj.bias',
  qNorm: 'self_attn.q_norm.weight',
  kNorm: 'self_attn.k_norm.weight',
};

function parseKey(key: string): { layer: number; field: LayerField } | undefined {
  const match = /^layers\.(\d+)\.(\w+)$/.exec(key);
  if (!match || !(LAYER_FIELDS as readonly string[]).includes(match[2])) return undefined;
  return { layer: Number(match[1]), field: match[2] as LayerField };
}

/** GGUF tensor name for a stable key (`layers.0.wq` → `blk.0.attn_q.weight`). */
export function ggufTensorName(key: string): string {
  if (key === 'tokenEmbedding') return 'token_embd.weight';
  if (key === 'finalNorm') return 'output_norm.weight';
  if (key === 'output') return 'output.weight';
  const parsed = parseKey(key);
  if (!parsed) throw new Error(`unknown Llama tensor key '${key}'`);
  return `blk.${parsed.layer}.${GGUF_LAYER_NAMES[parsed.field]}`;
}

/** Hugging Face tensor name for a stable key (`layers.0.wq` → `model.layers.0.self_attn.q_proj.weight`). */
export function hfTensorName(key: string): string {
  if (key === 'tokenEmbedding') return 'model.embed_tokens.weight';
  if (key === 'finalNorm') return 'model.norm.weight';
  if (key === 'output') return 'lm_head.weight';
  const parsed = parseKey(key);
  if (!parsed) throw new Error(`unknown Llama tensor key '${key}'`);
  return `model.layers.${parsed.layer}.${HF_LAYER_NAMES[parsed.field]}`;
}

/** Every tensor of `weights` by stable key, in canonical order (embedding, layers, final norm, output). */
export function tensorsByKey(weights: LlamaWeights): Map<string, DenseTensor> {
  const tensors = new Map<string, DenseTensor>();
  tensors.set('tokenEmbedding', weights.tokenEmbedding);
  weights.layers.forEach((layer, l) => {
    for (const field of LAYER_FIELDS) {
      const tensor = layer[field];
      if (tensor) tensors.set(`layers.${l}.${field}`, tensor);
    }
  });
  tensors.set('finalNorm', weights.finalNorm);
  if (weights.output) tensors.set('output', weights.output);
  return tensors;
}

/**
 * Assemble LlamaWeights from a loader called once per expected key with the expected shape.
 * The loader returns the values or undefined when the file lacks the tensor; shapes are the
 * loader's to check (it knows the file's own shape), sizes are checked here.
 */
export function assembleWeights(
  config: LlamaConfig,
  path: string,
  load: (key: string, shape: number[]) => Float32Array | undefined,
): LlamaWeights {
  const tensors = new Map<string, DenseTensor>();
  for (const [key, shape] of expectedShapes(config)) {
    const data = load(key, shape);
    if (!data) throw new InputError(`${path}: missing tensor for ${key} (expected shape [${shape}])`);
    const size = shape.reduce((a, b) => a * b, 1);
    if (data.length !== size)
      throw new InputError(`${path}: tensor for ${key} has ${data.length} values, shape [${shape}] needs ${size}`);
    tensors.set(key, dense(shape, data));
  }
  const get = (key: string): DenseTensor => tensors.get(key) as DenseTensor;
  const layers: LayerWeights[] = Array.from({ length: config.nLayers }, (_, l) => {
    const layer = {} as LayerWeights;
    for (const field of LAYER_FIELDS) {
      const tensor = tensors.get(`layers.${l}.${field}`);
      if (tensor) layer[field] = tensor;
    }
    return layer;
  });
  return {
    config,
    tokenEmbedding: get('tokenEmbedding'),
    layers,
    finalNorm: get('finalNorm'),
    output: config.tiedEmbeddings ? undefined : get('output'),
  };
}

/** Describe a shape for messages: [a, b]. */
export function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Same dimensions in the same order. */
export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * The shortest decimal that is the same float32 (1e-5 stored as float32 reads back as
 * 9.999999747378752e-6; this returns 1e-5), so configs survive a trip through float32 metadata.
 */
export function shortestFloat32(value: number): number {
  const target = Math.fround(value);
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(target.toPrecision(digits));
    if (Math.fround(candidate) === target) return candidate;
  }
  return target;
}

// ---------------------------------------------------------------------------------------------
// RoPE layouts. For one head of size hd (half = hd / 2), rotation pair i uses
//   interleaved (Meta, llama2.c, LlamaWeights, GGUF `llama`): rows 2i and 2i + 1;
//   rotate-half (Hugging Face; GGUF `qwen2` / `qwen3`, which llama.cpp runs with NEOX RoPE): rows i and i + half.
// transformers' convert_llama_weights_to_hf.py maps Meta → HF with
//   w.view(n_heads, hd // 2, 2, dim).transpose(1, 2).reshape(n_heads * hd, dim)
// i.e. HF row h*hd + r*half + i  =  Meta row h*hd + 2i + r  (r ∈ {0, 1}).

/** Permute wq / wk rows [nHeads * hd, inDim] from the interleaved layout to HF's rotate-half layout. */
export function interleavedToRotateHalf(data: Float32Array, nHeads: number, inDim: number): Float32Array {
  return permuteRopeRows(data, nHeads, inDim, true);
}

/** Permute wq / wk rows from HF's rotate-half layout back to the interleaved layout. */
export function rotateHalfToInterleaved(data: Float32Array, nHeads: number, inDim: number): Float32Array {
  return permuteRopeRows(data, nHeads, inDim, false);
}

function permuteRopeRows(data: Float32Array, nHeads: number, inDim: number, toRotateHalf: boolean): Float32Array {
  const rows = data.length / inDim;
  const hd = rows / nHeads;
  if (!Number.isInteger(rows) || !Number.isInteger(hd) || hd % 2 !== 0) {
    throw new Error(`cannot permute RoPE rows: ${data.length} values, ${nHeads} heads, input size ${inDim}`);
  }
  const half = hd / 2;
  const out = new Float32Array(data.length);
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (let r = 0; r < 2; r++) {
        const interleavedRow = h * hd + 2 * i + r;
        const rotateHalfRow = h * hd + r * half + i;
        const [from, to] = toRotateHalf ? [interleavedRow, rotateHalfRow] : [rotateHalfRow, interleavedRow];
        out.set(data.subarray(from * inDim, (from + 1) * inDim), to * inDim);
      }
    }
  }
  return out;
}

/**
 * The heads and input size to permute a tensor's rows by, for the tensors whose rows follow the RoPE
 * pairs (wq, wk, their biases, Qwen3's per-head q/k norms); undefined for every other tensor.
 */
function ropeRows(key: string, config: LlamaConfig): { heads: number; inDim: number } | undefined {
  const field = parseKey(key)?.field;
  if (field === 'wq') return { heads: config.nHeads, inDim: config.dim };
  if (field === 'wk') return { heads: config.nKvHeads, inDim: config.dim };
  if (field === 'bq') return { heads: config.nHeads, inDim: 1 };
  if (field === 'bk') return { heads: config.nKvHeads, inDim: 1 };
  if (field === 'qNorm' || field === 'kNorm') return { heads: 1, inDim: 1 };
  return undefined;
}

/** A tensor of LlamaWeights (interleaved RoPE rows) in the rotate-half layout of HF and NEOX-RoPE GGUF. */
export function toRotateHalfLayout(key: string, data: Float32Array, config: LlamaConfig): Float32Array {
  const rows = ropeRows(key, config);
  return rows ? interleavedToRotateHalf(data, rows.heads, rows.inDim) : data;
}

/** The inverse of toRotateHalfLayout: a rotate-half tensor in the interleaved layout of LlamaWeights. */
export function fromRotateHalfLayout(key: string, data: Float32Array, config: LlamaConfig): Float32Array {
  const rows = ropeRows(key, config);
  return rows ? rotateHalfToInterleaved(data, rows.heads, rows.inDim) : data;
}

/** Whether GGUF files of this architecture store q/k rows in the rotate-half layout (llama.cpp's NEOX RoPE). */
export function ggufUsesRotateHalf(config: LlamaConfig): boolean {
  return (config.architecture ?? 'llama') !== 'llama';
}
