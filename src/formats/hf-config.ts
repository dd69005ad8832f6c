/**
 * Hugging Face `config.json` for Llama models (transformers' LlamaConfig) ↔ fireopt's LlamaConfig.
 * Defaults are transformers' LlamaConfig defaults (rms_norm_eps 1e-6, rope_theta 10000,
 * tie_word_embeddings false, max_position_embeddings 2048). Features fireopt's model does not
 * implement (RoPE scaling, attention / MLP biases, other activations, a head_dim that is not
 * hidden_size / num_attention_heads) are rejected rather than silently ignored.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { InputError } from '../errors.js';
import { configProblems, type LlamaConfig } from '../model/config.js';
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
  if (hf.model_type !== undefined && hf.model_type !== 'llama')
    problems.push(`model_type is '${hf.model_type}'; fireopt reads 'llama' models`);
  if (hf.hidden_act !== undefined && hf.hidden_act !== 'silu')
    problems.push(`hidden_act '${hf.hidden_act}' is not supported (Llama uses 'silu')`);
  if (hf.rope_scaling !== undefined && hf.rope_scaling !== null) problems.push('rope_scaling is not supported');
  if (hf.attention_bias) problems.push('attention_bias is not supported');
  if (hf.mlp_bias) problems.push('mlp_bias is not supported');
  if (hf.head_dim != null && hf.head_dim * hf.num_attention_heads !== hf.hidden_size) {
    problems.push(
      `head_dim ${hf.head_dim} × num_attention_heads ${hf.num_attention_heads} is not hidden_size ${hf.hidden_size}`,
    );
  }
  const config: LlamaConfig = {
    dim: hf.hidden_size,
    hiddenDim: hf.intermediate_size,
    nLayers: hf.num_hidden_layers,
    nHeads: hf.num_attention_heads,
    nKvHeads: hf.num_key_value_heads ?? hf.num_attention_heads,
    vocabSize: hf.vocab_size,
    maxSeqLen: hf.max_position_embeddings ?? 2048,
    normEps: hf.rms_norm_eps ?? 1e-6,
    ropeTheta: hf.rope_theta ?? 10000,
    tiedEmbeddings: hf.tie_word_embeddings ?? false,
  };
  problems.push(...configProblems(config));
  if (problems.length)
    throw new InputError(
      `${path}: unsupported Hugging Face Llama config:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
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

/** The config.json object transformers' LlamaForCausalLM loads for this config. */
export function hfConfigJson(config: LlamaConfig, options: HfConfigOptions = {}): HfLlamaConfigJson {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: config.dim,
    intermediate_size: config.hiddenDim,
    num_hidden_layers: config.nLayers,
    num_attention_heads: config.nHeads,
    num_key_value_heads: config.nKvHeads,
    head_dim: config.dim / config.nHeads,
    vocab_size: config.vocabSize,
    max_position_embeddings: config.maxSeqLen,
    rms_norm_eps: config.normEps,
    rope_theta: config.ropeTheta,
    rope_scaling: null,
    tie_word_embeddings: config.tiedEmbeddings,
    hidden_act: 'silu',
    attention_bias: false,
    mlp_bias: false,
    ...(options.bosTokenId !== undefined ? { bos_token_id: options.bosTokenId } : {}),
    ...(options.eosTokenId !== undefined ? { eos_token_id: options.eosTokenId } : {}),
    torch_dtype: options.torchDtype ?? 'float32',
  };
}

/** Write config.json atomically. */
export function writeHfConfig(path: string, config: LlamaConfig, options: HfConfigOptions = {}): void {
  writeFileAtomic(path, JSON.stringify(hfConfigJson(config, options), null, 2) + '\n');
}
