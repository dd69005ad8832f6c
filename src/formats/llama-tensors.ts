/**
 * The tensors of a Llama model under one stable key each (the keys of model/weights.ts's
 * expectedShapes: `tokenEmbedding`, `layers.3.wq`, `finalNorm`, `output`), with their names in
 * GGUF and in Hugging Face checkpoints, and the conversions between LlamaWeights and a key → tensor map.
 */
import { InputError } from '../errors.js';
import type { LlamaConfig } from '../model/config.js';
import { dense, expectedShapes, type DenseTensor, type LayerWeights, type LlamaWeights } from '../model/weights.js';

type LayerField = keyof LayerWeights;

const LAYER_FIELDS: readonly LayerField[] = ['attnNorm', 'wq', 'wk', 'wv', 'wo', 'ffnNorm', 'w1', 'w2', 'w3'];

const GGUF_LAYER_NAMES: Record<LayerField, string> = {
  attnNorm: 'attn_norm',
  wq: 'attn_q',
  wk: 'attn_k',
  wv: 'attn_v',
  wo: 'attn_output',
  ffnNorm: 'ffn_norm',
  w1: 'ffn_gate',
  w2: 'ffn_down',
  w3: 'ffn_up',
};

const HF_LAYER_NAMES: Record<LayerField, string> = {
  attnNorm: 'input_layernorm',
  wq: 'self_attn.q_proj',
  wk: 'self_attn.k_proj',
  wv: 'self_attn.v_proj',
  wo: 'self_attn.o_proj',
  ffnNorm: 'post_attention_layernorm',
  w1: 'mlp.gate_proj',
  w2: 'mlp.down_proj',
  w3: 'mlp.up_proj',
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
  return `blk.${parsed.layer}.${GGUF_LAYER_NAMES[parsed.field]}.weight`;
}

/** Hugging Face tensor name for a stable key (`layers.0.wq` → `model.layers.0.self_attn.q_proj.weight`). */
export function hfTensorName(key: string): string {
  if (key === 'tokenEmbedding') return 'model.embed_tokens.weight';
  if (key === 'finalNorm') return 'model.norm.weight';
  if (key === 'output') return 'lm_head.weight';
  const parsed = parseKey(key);
  if (!parsed) throw new Error(`unknown Llama tensor key '${key}'`);
  return `model.layers.${parsed.layer}.${HF_LAYER_NAMES[parsed.field]}.weight`;
}

/** Every tensor of `weights` by stable key, in canonical order (embedding, layers, final norm, output). */
export function tensorsByKey(weights: LlamaWeights): Map<string, DenseTensor> {
  const tensors = new Map<string, DenseTensor>();
  tensors.set('tokenEmbedding', weights.tokenEmbedding);
  weights.layers.forEach((layer, l) => {
    for (const field of LAYER_FIELDS) tensors.set(`layers.${l}.${field}`, layer[field]);
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
    for (const field of LAYER_FIELDS) layer[field] = get(`layers.${l}.${field}`);
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
