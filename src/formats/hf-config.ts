/**
 * Hugging Face `config.json` for Llama, Qwen2 and Qwen3 models (transformers' LlamaConfig,
 * Qwen2Config, Qwen3Config) ↔ fireopt's LlamaConfig. Defaults are transformers' own for each
 * model_type (rms_norm_eps 1e-6, rope_theta 10000, tie_word_embeddings false;
 * max_position_embeddings 2048 for Llama, 32768 for Qwen; head_dim 128 for Qwen3). Features
 * fireopt's model does not implement (RoPE scaling, sliding-window attention, MLP biases, attention
 * biases outside Qwen2, other activations) are rejected rather than silently ignored.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { InputError } from '../errors.js';
import { type Architecture, architectureOf, configProblems, headDim, type LlamaConfig } from '../model/config.js';

/** transformers' class and model_type for each architecture. */
const HF_ARCHITECTURES: Record<Architecture, { modelType: string; className: string }> = {
  llama: { modelType: 'llama', className: 'LlamaForCausalLM' },
  qwen2: { modelType: 'qwen2', className: 'Qwen2ForCausalLM' },
  qwen3: { modelType: 'qwen3', className: 'Qwen3ForCausalLM' },
};
import { writeFileAtomic } from '../util/atomic.js';

const positiveInt = z.number().int().positive();

const hfLlamaConfigSchema = z.looseObject({
  model_type: z.string().optional(),
  architectures: z.array(z.string()).optional(),
  hidden_size: positiveInt,
  intermediate_size: positiveInt,
  num_hidden_layers: positiveInt,
  num_attention_heads: positiveInt,
  num_key_value_heads: positiveInt.nullable().optional(),
  head_dim: positiveInt.nullable().optional(),
  vocab_size: positiveInt,
  max_position_embeddings: positiveInt.optional(),
  rms_norm_eps: z.number().positive().optional(),
  rope_theta: z.number().positive().optional(),
  tie_word_embeddings: z.boolean().optional(),
  hidden_act: z.string().optional(),
  rope_scaling: z.unknown().optional(),
  attention_bias: z.boolean().optional(),
  mlp_bias: z.boolean().optional(),
  use_sliding_window: z.boolean().optional(),
  bos_token_id: z
    .union([z.number().int(), z.array(z.number().int())])
    .nullable()
    .optional(),
  eos_token_id: z
    .union([z.number().int(), z.array(z.number().int())])
    .nullable()
    .optional(),
  torch_dtype: z.string().nullable().optional(),
});

export type HfLlamaConfigJson = z.infer<typeof hfLlamaConfigSchema>;

/** Parse a config.json object into a LlamaConfig; every problem is reported at once, with its key. */
export function parseHfConfig(json: unknown, path: string): LlamaConfig {
  const parsed = hfLlamaConfigSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new InputError(
      `${path}: not a usable Hugging Face Llama config:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
  }
  const hf = parsed.data;
  const problems: string[] = [];
  const architecture = (Object.keys(HF_ARCHITECTURES) as Architecture[]).find(
    (name) => HF_ARCHITECTURES[name].modelType === (hf.model_type ?? 'llama'),
  );
  if (!architecture) {
    const known = Object.values(HF_ARCHITECTURES).map((a) => `'${a.modelType}'`);
    problems.push(`model_type is '${hf.model_type}'; fireopt reads ${known.join(', ')} models`);
  }
  if (hf.hidden_act !== undefined && hf.hidden_act !== 'silu')
    problems.push(`hidden_act '${hf.hidden_act}' is not supported (Llama and Qwen use 'silu')`);
  if (hf.rope_scaling !== undefined && hf.rope_scaling !== null) problems.push('rope_scaling is not supported');
  // Qwen2 always has q/k/v biases (Qwen2Config has no attention_bias key); elsewhere they are not implemented.
  if (hf.attention_bias && architecture !== 'qwen2') problems.push('attention_bias is not supported');
  if (hf.mlp_bias) problems.push('mlp_bias is not supported');
  if (hf.use_sliding_window) problems.push('use_sliding_window (sliding-window attention) is not supported');
  const isQwen = architecture === 'qwen2' || architecture === 'qwen3';
  // Qwen3Config's head_dim defaults to 128 whatever the width; the others derive it.
  const explicitHeadDim = hf.head_dim ?? (architecture === 'qwen3' ? 128 : undefined);
  const config: LlamaConfig = {
    ...(architecture && architecture !== 'llama' && { architecture }),
    dim: hf.hidden_size,
    hiddenDim: hf.intermediate_size,
    nLayers: hf.num_hidden_layers,
    nHeads: hf.num_attention_heads,
    nKvHeads: hf.num_key_value_heads ?? hf.num_attention_heads,
    vocabSize: hf.vocab_size,
    maxSeqLen: hf.max_position_embeddings ?? (isQwen ? 32768 : 2048),
    normEps: hf.rms_norm_eps ?? 1e-6,
    ropeTheta: hf.rope_theta ?? 10000,
    tiedEmbeddings: hf.tie_word_embeddings ?? false,
    ...(explicitHeadDim !== undefined &&
      explicitHeadDim * hf.num_attention_heads !== hf.hidden_size && { headDim: explicitHeadDim }),
  };
  problems.push(...configProblems(config));
  if (problems.length)
    throw new InputError(
      `${path}: unsupported Hugging Face model config:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
  return config;
}

/** Read and parse a Hugging Face config.json. */
export function readHfConfig(path: string): LlamaConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InputError(`${path}: cannot read config (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InputError(
      `${path}: config is not valid JSON (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  return parseHfConfig(json, path);
}

export interface HfConfigOptions {
  /** transformers' torch_dtype name of the weights. */
  torchDtype?: 'float32' | 'float16' | 'bfloat16';
  bosTokenId?: number;
  eosTokenId?: number;
}

/**
 * The config.json object transformers loads for this config: LlamaForCausalLM, Qwen2ForCausalLM
 * or Qwen3ForCausalLM, by the config's architecture.
 */
export function hfConfigJson(config: LlamaConfig, options: HfConfigOptions = {}): HfLlamaConfigJson {
  const architecture = architectureOf(config);
  const { modelType, className } = HF_ARCHITECTURES[architecture];
  return {
    architectures: [className],
    model_type: modelType,
    hidden_size: config.dim,
    intermediate_size: config.hiddenDim,
    num_hidden_layers: config.nLayers,
    num_attention_heads: config.nHeads,
    num_key_value_heads: config.nKvHeads,
    head_dim: headDim(config),
    vocab_size: config.vocabSize,
    max_position_embeddings: config.maxSeqLen,
    rms_norm_eps: config.normEps,
    rope_theta: config.ropeTheta,
    rope_scaling: null,
    tie_word_embeddings: config.tiedEmbeddings,
    hidden_act: 'silu',
    // Qwen2Config has neither key (its biases are fixed); Qwen2's sliding window stays off.
    ...(architecture === 'qwen2' ? { use_sliding_window: false } : { attention_bias: false, mlp_bias: false }),
    ...(options.bosTokenId !== undefined ? { bos_token_id: options.bosTokenId } : {}),
    ...(options.eosTokenId !== undefined ? { eos_token_id: options.eosTokenId } : {}),
    torch_dtype: options.torchDtype ?? 'float32',
  };
}

/** Write config.json atomically. */
export function writeHfConfig(path: string, config: LlamaConfig, options: HfConfigOptions = {}): void {
  writeFileAtomic(path, JSON.stringify(hfConfigJson(config, options), null, 2) + '\n');
}
