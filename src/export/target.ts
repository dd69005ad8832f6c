/**
 * What the export needs to know about the target it will serve beside, from whichever file the
 * user has: a Hugging Face folder (config.json, tokenizer files, and fireopt's tokenizer.gguf when
 * present), a GGUF model or vocab-only GGUF (any architecture: only `general.*`, `<arch>.*` and
 * `tokenizer.*` metadata are read, never tensors), or a llama2.c checkpoint.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FireoptError, InputError, describeError } from '../errors.js';
import { detectCheckpointKind } from '../formats/load-model.js';
import { readGguf } from '../formats/gguf.js';
import { vocabularyFromGguf, vocabularyFromGgufMetadata } from '../formats/gguf-vocabulary.js';
import { readLlama2cCheckpoint } from '../formats/llama2c.js';
import { readLlama2cTokenizer } from '../formats/llama2c-tokenizer.js';
import { readHuggingFaceTokenizer } from '../tokenizer/huggingface.js';
import type { Vocabulary } from '../tokenizer/vocabulary.js';

/** Tokenizer files of a Hugging Face folder that are copied verbatim into the HF export. */
export const HF_TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'tokenizer.model',
  'vocab.json',
  'merges.txt',
  'added_tokens.json',
  'chat_template.jinja',
  'chat_template.json',
] as const;

export type TokenId = number | number[];

export interface TargetDescription {
  path: string;
  kind: 'hf' | 'gguf' | 'llama2c';
  /** The vocab_size serving engines compare: an HF config's `vocab_size`, else the model's rows. */
  vocabSize?: number;
  /** The target's trained context (max_position_embeddings / context_length / seq_len). */
  contextLength?: number;
  ropeTheta?: number;
  /** HF `rope_scaling` (null when none), or a GGUF's `rope.scaling.type`. */
  ropeScaling?: unknown;
  rmsNormEps?: number;
  /** As the target's config.json writes them (a list for models with several end tokens). */
  bosTokenId?: TokenId;
  eosTokenId?: TokenId;
  /**
   * The target's tokenizer as llama.cpp sees it: a GGUF's, an HF folder's tokenizer.gguf, or its
   * tokenizer.json converted to GGUF metadata (as llama.cpp's convert_hf_to_gguf.py does).
   */
  vocabulary?: Vocabulary;
  vocabularySource?: string;
  /** Why an HF folder's tokenizer.json cannot become GGUF metadata (a GGUF export is then refused). */
  vocabularyRefusal?: string;
  /** HF tokenizer files present in the target folder (absolute paths), copied verbatim. */
  tokenizerFiles: string[];
  /** `model_type` / GGUF `general.architecture`. */
  architecture?: string;
}

/** Read what the export needs about a target path; errors name the file. */
export function describeTarget(path: string): TargetDescription {
  if (!existsSync(path))
    throw new InputError(
      `${path}: no such target model file or folder`,
      'HINT: --target takes a Hugging Face folder, a GGUF file or a llama2.c checkpoint',
    );
  if (statSync(path).isDirectory()) return describeHfTarget(path);
  const kind = detectCheckpointKind(path);
  if (kind === 'gguf') return describeGgufTarget(path);
  if (kind === 'hf') {
    throw new InputError(
      `${path}: pass the Hugging Face folder (with config.json) as --target, not the safetensors file`,
    );
  }
  const weights = readLlama2cCheckpoint(path);
  const beside = join(path, '..', 'tokenizer.bin');
  return {
    path,
    kind: 'llama2c',
    vocabSize: weights.config.vocabSize,
    contextLength: weights.config.maxSeqLen,
    ropeTheta: weights.config.ropeTheta,
    ropeScaling: null,
    rmsNormEps: weights.config.normEps,
    tokenizerFiles: [],
    architecture: 'llama',
    ...(existsSync(beside)
      ? { vocabulary: readLlama2cTokenizer(beside, weights.config.vocabSize), vocabularySource: beside }
      : {}),
  };
}

function describeHfTarget(dir: string): TargetDescription {
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath))
    throw new InputError(
      `${dir}: no config.json in this folder; --target takes a Hugging Face ` +
        `model folder, a GGUF or a llama2.c checkpoint`,
    );
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(configPath, 'utf8'));
  } catch (error) {
    throw new InputError(`${configPath}: not valid JSON (${describeError(error)})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new InputError(`${configPath}: not a JSON object`);
  const config = json as Record<string, unknown>;
  // Multimodal and some newer configs keep the language model's numbers under text_config.
  const text =
    typeof config.text_config === 'object' && config.text_config !== null
      ? { ...config, ...(config.text_config as Record<string, unknown>) }
      : config;
  const positive = (key: string): number | undefined => {
    const value = text[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !(value > 0))
      throw new InputError(`${configPath}: '${key}' is ${JSON.stringify(value)}; expected a positive number`);
    return value;
  };
  const tokenId = (key: string): TokenId | undefined => {
    const value = text[key];
    if (typeof value === 'number' && Number.isInteger(value)) return value;
    if (Array.isArray(value) && value.every((v): v is number => typeof v === 'number' && Number.isInteger(v)))
      return value;
    return undefined;
  };
  const vocabularyPath = join(dir, 'tokenizer.gguf');
  const description: TargetDescription = {
    path: dir,
    kind: 'hf',
    vocabSize: positive('vocab_size'),
    contextLength: positive('max_position_embeddings'),
    ropeTheta: positive('rope_theta') ?? (text.rope_scaling === undefined ? undefined : 10000),
    ropeScaling: text.rope_scaling ?? null,
    rmsNormEps: positive('rms_norm_eps'),
    bosTokenId: tokenId('bos_token_id'),
    eosTokenId: tokenId('eos_token_id'),
    tokenizerFiles: HF_TOKENIZER_FILES.map((name) => join(dir, name)).filter((file) => existsSync(file)),
    architecture: typeof text.model_type === 'string' ? text.model_type : undefined,
  };
  const tokenizerJson = join(dir, 'tokenizer.json');
  if (existsSync(vocabularyPath)) {
    description.vocabulary = vocabularyFromGguf(vocabularyPath);
    description.vocabularySource = vocabularyPath;
  } else if (existsSync(tokenizerJson)) {
    try {
      // Padded to the model's vocab_size, as the converter pads it: the GGUF has one token per row.
      const tokenizer = readHuggingFaceTokenizer(tokenizerJson);
      description.vocabulary = tokenizer.ggufVocabulary(Math.max(tokenizer.vocabSize, description.vocabSize ?? 0));
      description.vocabularySource = tokenizerJson;
    } catch (error) {
      // Only a GGUF export needs it: the preflight refuses that one with this reason.
      if (!(error instanceof FireoptError && error.code === 'E_EXPORT_TOKENIZER')) throw error;
      description.vocabularyRefusal = error.message;
    }
  }
  return description;
}

function describeGgufTarget(path: string): TargetDescription {
  const file = readGguf(path);
  const { metadata } = file;
  const architecture = metadata.get('general.architecture');
  const arch = typeof architecture === 'string' ? architecture : 'llama';
  const number = (key: string): number | undefined => {
    const value = metadata.get(`${arch}.${key}`);
    return typeof value === 'number' && value > 0 ? value : undefined;
  };
  const vocabulary = vocabularyFromGgufMetadata(metadata, path);
  const embedding = file.tensors.find((t) => t.name === 'token_embd.weight');
  const scaling = metadata.get(`${arch}.rope.scaling.type`);
  return {
    path,
    kind: 'gguf',
    vocabSize: number('vocab_size') ?? embedding?.dims[1] ?? vocabulary.tokens.length,
    contextLength: number('context_length'),
    ropeTheta: number('rope.freq_base'),
    ropeScaling: typeof scaling === 'string' && scaling !== 'none' ? scaling : null,
    rmsNormEps: number('attention.layer_norm_rms_epsilon'),
    bosTokenId: vocabulary.bosId,
    eosTokenId: vocabulary.eosId,
    vocabulary,
    vocabularySource: path,
    tokenizerFiles: [],
    architecture: arch,
  };
}
