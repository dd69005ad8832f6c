/**
 * Llama-family GGUF files (architectures `llama`, `qwen2`, `qwen3`), read and written the way
 * llama.cpp expects them (llama.cpp src/llama-arch.cpp names, src/llama-model.cpp hyper-parameter keys):
 * - `general.architecture` and `<arch>.*` hyper-parameters (`<arch>.attention.key_length` /
 *   `value_length` when the head size is not embedding_length / head_count);
 * - the tokenizer embedded as `tokenizer.ggml.*`;
 * - tensors token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate,
 *   ffn_down, ffn_up}, output_norm, and output when the head is not tied to the embedding; qwen2
 *   adds blk.N.attn_{q,k,v}.bias, qwen3 blk.N.attn_{q,k}_norm.
 * `llama` files hold attn_q / attn_k rows in the interleaved (Meta) RoPE layout, the same as
 * LlamaWeights (llama.cpp's converter un-permutes Hugging Face weights to it). `qwen2` / `qwen3`
 * files keep Hugging Face's rotate-half rows (llama.cpp runs them with NEOX RoPE), so their q/k
 * tensors are permuted on the way in and out.
 */
import { InputError } from '../errors.js';
import {
  ARCHITECTURES,
  type Architecture,
  architectureOf,
  configProblems,
  headDim,
  type LlamaConfig,
} from '../model/config.js';
import type { LlamaWeights } from '../model/weights.js';
import type { Vocabulary } from '../tokenizer/vocabulary.js';
import {
  assertReadableTensor,
  readGguf,
  readGgufTensor,
  type GgufFile,
  type GgufTensorInfo,
  type GgufValue,
} from './gguf.js';
import { vocabularyFromGgufMetadata } from './gguf-vocabulary.js';
import { GGUF_DEFAULT_ALIGNMENT, writeGguf, type GgufMetadataEntry, type GgufTensorToWrite } from './gguf-write.js';
import {
  assembleWeights,
  fromRotateHalfLayout,
  ggufTensorName,
  ggufUsesRotateHalf,
  sameShape,
  shapeText,
  shortestFloat32,
  tensorsByKey,
  toRotateHalfLayout,
} from './llama-tensors.js';

/**
 * Tensor precision of a written model file: `f16` / `bf16` store matrices in 16 bits and keep the
 * 1-D norm weights in F32 (as llama.cpp's converter does).
 */
export type WeightDtype = 'f32' | 'f16' | 'bf16';

export interface LlamaGgufWriteOptions {
  dtype?: WeightDtype;
  /** `general.name`. */
  name?: string;
}

/** llama.cpp's LLAMA_FTYPE values for `general.file_type`. */
const FILE_TYPE: Record<WeightDtype, number> = { f32: 0, f16: 1, bf16: 32 };

/** Write a llama / qwen2 / qwen3 GGUF v3 file (atomically) that llama.cpp loads as is. */
export function writeLlamaGguf(
  path: string,
  weights: LlamaWeights,
  vocabulary: Vocabulary,
  options: LlamaGgufWriteOptions = {},
): void {
  const dtype = options.dtype ?? 'f32';
  const tensors: GgufTensorToWrite[] = [];
  const rotateHalf = ggufUsesRotateHalf(weights.config);
  for (const [key, tensor] of tensorsByKey(weights)) {
    const type = dtype === 'f32' || tensor.shape.length < 2 ? 'F32' : dtype === 'f16' ? 'F16' : 'BF16';
    const data = rotateHalf ? toRotateHalfLayout(key, tensor.data, weights.config) : tensor.data;
    tensors.push({ name: ggufTensorName(key), shape: tensor.shape, type, data });
  }
  writeGguf(path, llamaGgufMetadata(weights.config, vocabulary, { ...options, dtype }), tensors);
}

/** Write a vocab-only GGUF (metadata and tokenizer, no tensors), like llama.cpp's ggml-vocab-*.gguf files. */
export function writeVocabOnlyGguf(
  path: string,
  config: LlamaConfig,
  vocabulary: Vocabulary,
  options: LlamaGgufWriteOptions = {},
): void {
  writeGguf(path, llamaGgufMetadata(config, vocabulary, options), []);
}

/** All metadata of a llama / qwen2 / qwen3 GGUF: general.*, <arch>.* and tokenizer.*. */
export function llamaGgufMetadata(
  config: LlamaConfig,
  vocabulary: Vocabulary,
  options: LlamaGgufWriteOptions = {},
): GgufMetadataEntry[] {
  const problems = configProblems(config);
  if (problems.length) throw new InputError(`cannot write GGUF: invalid model config: ${problems.join('; ')}`);
  if (vocabulary.tokens.length !== config.vocabSize) {
    throw new InputError(
      `cannot write GGUF: the tokenizer has ${vocabulary.tokens.length} ` +
        `tokens but the model's vocabulary size is ${config.vocabSize}`,
      'HINT: pass the tokenizer that belongs to this checkpoint (--tokenizer)',
    );
  }
  const arch = architectureOf(config);
  // The head size is written only where llama.cpp cannot derive it (embedding_length / head_count).
  const headSize: GgufMetadataEntry[] =
    headDim(config) === config.dim / config.nHeads
      ? []
      : [
          { key: `${arch}.attention.key_length`, type: 'uint32', value: headDim(config) },
          { key: `${arch}.attention.value_length`, type: 'uint32', value: headDim(config) },
        ];
  return [
    { key: 'general.architecture', type: 'string', value: arch },
    { key: 'general.type', type: 'string', value: 'model' },
    { key: 'general.name', type: 'string', value: options.name ?? `fireopt-${arch}` },
    { key: 'general.file_type', type: 'uint32', value: FILE_TYPE[options.dtype ?? 'f32'] },
    { key: 'general.alignment', type: 'uint32', value: GGUF_DEFAULT_ALIGNMENT },
    { key: `${arch}.vocab_size`, type: 'uint32', value: config.vocabSize },
    { key: `${arch}.context_length`, type: 'uint32', value: config.maxSeqLen },
    { key: `${arch}.embedding_length`, type: 'uint32', value: config.dim },
    { key: `${arch}.block_count`, type: 'uint32', value: config.nLayers },
    { key: `${arch}.feed_forward_length`, type: 'uint32', value: config.hiddenDim },
    { key: `${arch}.rope.dimension_count`, type: 'uint32', value: headDim(config) },
    { key: `${arch}.attention.head_count`, type: 'uint32', value: config.nHeads },
    { key: `${arch}.attention.head_count_kv`, type: 'uint32', value: config.nKvHeads },
    ...headSize,
    { key: `${arch}.attention.layer_norm_rms_epsilon`, type: 'float32', value: config.normEps },
    { key: `${arch}.rope.freq_base`, type: 'float32', value: config.ropeTheta },
    ...vocabularyMetadata(vocabulary),
  ];
}

/** The `tokenizer.*` metadata for a vocabulary (the inverse of vocabularyFromGgufMetadata). */
export function vocabularyMetadata(vocabulary: Vocabulary): GgufMetadataEntry[] {
  const n = vocabulary.tokens.length;
  if (vocabulary.tokenTypes.length !== n)
    throw new InputError(`cannot write GGUF tokenizer: ${vocabulary.tokenTypes.length} token types for ${n} tokens`);
  if (vocabulary.scores && vocabulary.scores.length !== n)
    throw new InputError(`cannot write GGUF tokenizer: ${vocabulary.scores.length} scores for ${n} tokens`);
  const entries: GgufMetadataEntry[] = [{ key: 'tokenizer.ggml.model', type: 'string', value: vocabulary.model }];
  // llama.cpp warns and guesses when a BPE vocabulary has no `pre`; SentencePiece uses "default".
  const pre = vocabulary.pre ?? (vocabulary.model === 'llama' ? 'default' : undefined);
  if (pre !== undefined) entries.push({ key: 'tokenizer.ggml.pre', type: 'string', value: pre });
  entries.push({ key: 'tokenizer.ggml.tokens', type: 'string[]', value: vocabulary.tokens });
  if (vocabulary.scores) entries.push({ key: 'tokenizer.ggml.scores', type: 'float32[]', value: vocabulary.scores });
  entries.push({ key: 'tokenizer.ggml.token_type', type: 'int32[]', value: vocabulary.tokenTypes });
  if (vocabulary.merges) entries.push({ key: 'tokenizer.ggml.merges', type: 'string[]', value: vocabulary.merges });
  const ids: Array<[string, number | undefined]> = [
    ['tokenizer.ggml.bos_token_id', vocabulary.bosId],
    ['tokenizer.ggml.eos_token_id', vocabulary.eosId],
    ['tokenizer.ggml.unknown_token_id', vocabulary.unkId],
    ['tokenizer.ggml.padding_token_id', vocabulary.padId],
  ];
  for (const [key, id] of ids) {
    if (id === undefined) continue;
    if (!Number.isInteger(id) || id < 0 || id >= n)
      throw new InputError(`cannot write GGUF tokenizer: ${key} ${id} is outside the ${n}-token vocabulary`);
    entries.push({ key, type: 'uint32', value: id });
  }
  entries.push({ key: 'tokenizer.ggml.add_bos_token', type: 'bool', value: vocabulary.addBos });
  entries.push({ key: 'tokenizer.ggml.add_eos_token', type: 'bool', value: vocabulary.addEos });
  if (vocabulary.addSpacePrefix !== undefined)
    entries.push({ key: 'tokenizer.ggml.add_space_prefix', type: 'bool', value: vocabulary.addSpacePrefix });
  if (vocabulary.chatTemplate !== undefined)
    entries.push({ key: 'tokenizer.chat_template', type: 'string', value: vocabulary.chatTemplate });
  return entries;
}

/** The model config a llama / qwen2 / qwen3 GGUF describes (checked against its tensors by readLlamaGguf). */
export function llamaConfigFromGguf(file: GgufFile): LlamaConfig {
  const { path, metadata } = file;
  const arch = metadata.get('general.architecture');
  if (typeof arch !== 'string' || !(ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new InputError(
      `${path}: GGUF architecture is '${String(arch)}'; fireopt reads ` +
        `${ARCHITECTURES.map((a) => `'${a}'`).join(', ')} models`,
    );
  }
  const integer = (key: string, fallback?: number): number => {
    const value = metadata.get(`${arch}.${key}`);
    if (value === undefined && fallback !== undefined) return fallback;
    if (value === undefined) throw new InputError(`${path}: GGUF metadata '${arch}.${key}' is missing`);
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
      throw new InputError(
        `${path}: GGUF metadata '${arch}.${key}' is ${describeValue(value)}; ` +
          `expected a positive integer (per-layer values are not supported)`,
      );
    }
    return value;
  };
  const real = (key: string, fallback?: number): number => {
    const value = metadata.get(`${arch}.${key}`);
    if (value === undefined && fallback !== undefined) return fallback;
    if (value === undefined) throw new InputError(`${path}: GGUF metadata '${arch}.${key}' is missing`);
    if (typeof value !== 'number' || !(value > 0))
      throw new InputError(
        `${path}: GGUF metadata '${arch}.${key}' is ${describeValue(value)}; expected a positive number`,
      );
    return shortestFloat32(value);
  };
  const experts = metadata.get(`${arch}.expert_count`);
  if (typeof experts === 'number' && experts > 0)
    throw new InputError(`${path}: mixture-of-experts GGUF (${arch}.expert_count ${experts}) is not supported`);
  const ropeScaling = metadata.get(`${arch}.rope.scaling.type`);
  if (ropeScaling !== undefined && ropeScaling !== 'none')
    throw new InputError(`${path}: RoPE scaling '${String(ropeScaling)}' is not supported`);

  const embedding = file.tensors.find((t) => t.name === 'token_embd.weight');
  const nHeads = integer('attention.head_count');
  const dim = integer('embedding_length');
  const keyLength = integer('attention.key_length', dim / nHeads);
  const valueLength = integer('attention.value_length', keyLength);
  if (valueLength !== keyLength) {
    throw new InputError(
      `${path}: ${arch}.attention.value_length ${valueLength} differs from ` +
        `key_length ${keyLength}; fireopt's attention needs them equal`,
    );
  }
  const config: LlamaConfig = {
    ...(arch !== 'llama' && { architecture: arch as Architecture }),
    ...(keyLength !== dim / nHeads && { headDim: keyLength }),
    dim,
    hiddenDim: integer('feed_forward_length'),
    nLayers: integer('block_count'),
    nHeads,
    nKvHeads: integer('attention.head_count_kv', nHeads),
    vocabSize: integer('vocab_size', embedding?.dims[1] ?? 0),
    maxSeqLen: integer('context_length'),
    normEps: real('attention.layer_norm_rms_epsilon'),
    ropeTheta: real('rope.freq_base', 10000),
    tiedEmbeddings: !file.tensors.some((t) => t.name === 'output.weight'),
  };
  const problems = configProblems(config);
  if (problems.length) throw new InputError(`${path}: inconsistent ${arch} hyper-parameters: ${problems.join('; ')}`);
  const ropeDims = metadata.get(`${arch}.rope.dimension_count`);
  if (ropeDims !== undefined && ropeDims !== headDim(config)) {
    throw new InputError(
      `${path}: ${arch}.rope.dimension_count is ${describeValue(ropeDims)} ` +
        `but the head size is ${headDim(config)}; partial rotary embeddings are not supported`,
    );
  }
  return config;
}

/**
 * Read a llama / qwen2 / qwen3 GGUF (F32, F16, BF16 or block-quantized tensors, dequantized) into
 * LlamaWeights (interleaved RoPE rows) and its embedded tokenizer.
 */
export function readLlamaGguf(path: string): { weights: LlamaWeights; vocabulary: Vocabulary } {
  const file = readGguf(path);
  const config = llamaConfigFromGguf(file);
  const vocabulary = vocabularyFromGgufMetadata(file.metadata, path);
  if (vocabulary.tokens.length !== config.vocabSize) {
    throw new InputError(
      `${path}: the embedded tokenizer has ${vocabulary.tokens.length} tokens ` +
        `but the model's vocabulary size is ${config.vocabSize}`,
    );
  }
  const byName = new Map<string, GgufTensorInfo>();
  for (const info of file.tensors) {
    if (byName.has(info.name)) throw new InputError(`${path}: corrupt GGUF: tensor '${info.name}' appears twice`);
    byName.set(info.name, info);
  }
  if (file.tensors.length === 0)
    throw new InputError(`${path}: vocab-only GGUF (no tensors): it holds a tokenizer but no model weights`);
  // Check every tensor's type before reading any data, so a quantized model fails at once.
  for (const info of file.tensors) {
    assertReadableTensor(path, info);
  }
  const used = new Set<string>();
  const rotateHalf = ggufUsesRotateHalf(config);
  const weights = assembleWeights(config, path, (key, shape) => {
    const name = ggufTensorName(key);
    const info = byName.get(name);
    if (!info) throw new InputError(`${path}: missing tensor '${name}' (expected shape ${shapeText(shape)})`);
    used.add(name);
    const fileShape = [...info.dims].reverse();
    if (!sameShape(fileShape, shape)) {
      throw new InputError(
        `${path}: tensor '${name}' has shape ${shapeText(fileShape)}, the metadata needs ${shapeText(shape)}`,
      );
    }
    const data = readGgufTensor(file, info);
    return rotateHalf ? fromRotateHalfLayout(key, data, config) : data;
  });
  const unexpected = file.tensors.filter((t) => !used.has(t.name)).map((t) => t.name);
  if (unexpected.length) {
    throw new InputError(
      `${path}: unexpected tensors for a ${architectureOf(config)} model: ` +
        `${unexpected.slice(0, 5).join(', ')}${unexpected.length > 5 ? ` and ${unexpected.length - 5} more` : ''}`,
    );
  }
  return { weights, vocabulary };
}

function describeValue(value: GgufValue | undefined): string {
  if (value === undefined) return 'missing';
  if (typeof value === 'object') return `an array of ${value.length}`;
  return JSON.stringify(typeof value === 'bigint' ? value.toString() : value);
}
