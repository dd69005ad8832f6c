/**
 * One entry point for every checkpoint kind fireopt reads: it looks at the path (folder or file
 * magic), picks the reader, and returns the weights with the tokenizer when one is known.
 *   - folder, or a .safetensors file with config.json beside it → Hugging Face (safetensors.ts)
 *   - file starting with "GGUF" → GGUF (gguf-llama.ts), with its embedded tokenizer
 *   - anything else → llama2.c v0 (llama2c.ts); the tokenizer comes from `tokenizer`, or from a
 *     `tokenizer.bin` beside the checkpoint
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InputError } from '../errors.js';
import type { LlamaWeights } from '../model/weights.js';
import type { Vocabulary } from '../tokenizer/vocabulary.js';
import { GGUF_MAGIC } from './gguf.js';
import { vocabularyFromGguf } from './gguf-vocabulary.js';
import { readLlamaGguf } from './gguf-llama.js';
import { readLlama2cCheckpoint } from './llama2c.js';
import { readLlama2cTokenizer } from './llama2c-tokenizer.js';
import { readHfLlama } from './safetensors.js';

export type CheckpointKind = 'llama2c' | 'gguf' | 'hf';

export interface LoadedModel {
  kind: CheckpointKind;
  weights: LlamaWeights;
  /** The tokenizer, when the checkpoint embeds one or a tokenizer file was given / found. */
  vocabulary?: Vocabulary;
  /** Where the vocabulary came from (a file path), for messages. */
  vocabularySource?: string;
}

export interface LoadModelOptions {
  /**
   * A tokenizer file (llama2.c tokenizer.bin or any GGUF with an embedded tokenizer);
   * overrides the checkpoint's own.
   */
  tokenizer?: string;
}

/** Which reader a checkpoint path needs. */
export function detectCheckpointKind(path: string): CheckpointKind {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) throw new InputError(`${path}: no such checkpoint file or folder`);
  if (stat.isDirectory()) return 'hf';
  const head = readFileHead(path, 9);
  if (head.length >= 4 && head.readUInt32LE(0) === GGUF_MAGIC) return 'gguf';
  if (/\.gguf$/i.test(path)) {
    // Named like a GGUF: calling it a damaged llama2.c checkpoint would send the user the wrong way.
    const magic = JSON.stringify(head.subarray(0, 4).toString('latin1'));
    throw new InputError(
      `${path}: not a GGUF file (bad magic ${magic}, expected "GGUF")`,
      'check the path, or re-convert the model',
    );
  }
  if (path.endsWith('.safetensors')) return 'hf';
  // safetensors: a uint64 header length, then the JSON header's opening brace.
  if (head.length === 9 && head[8] === 0x7b && head.readBigUInt64LE(0) < 100_000_000n) return 'hf';
  return 'llama2c';
}

/** Load a checkpoint of any supported kind. */
export function loadModel(path: string, options: LoadModelOptions = {}): LoadedModel {
  const kind = detectCheckpointKind(path);
  let weights: LlamaWeights;
  let vocabulary: Vocabulary | undefined;
  let vocabularySource: string | undefined;
  if (kind === 'gguf') {
    ({ weights, vocabulary } = readLlamaGguf(path));
    vocabularySource = path;
  } else if (kind === 'hf') {
    ({ weights, vocabulary, vocabularyPath: vocabularySource } = readHfLlama(path));
  } else {
    weights = readLlama2cCheckpoint(path);
    const beside = join(dirname(path), 'tokenizer.bin');
    if (!options.tokenizer && existsSync(beside)) {
      vocabulary = readTokenizerFile(beside, weights.config.vocabSize);
      vocabularySource = beside;
    }
  }
  if (options.tokenizer) {
    vocabulary = readTokenizerFile(options.tokenizer, weights.config.vocabSize);
    vocabularySource = options.tokenizer;
  }
  if (vocabulary && vocabulary.tokens.length !== weights.config.vocabSize) {
    throw new InputError(
      `${vocabularySource}: the tokenizer has ${vocabulary.tokens.length} ` +
        `tokens but the checkpoint ${path} has a vocabulary of ${weights.config.vocabSize}`,
    );
  }
  return { kind, weights, vocabulary, vocabularySource };
}

/**
 * Read a tokenizer file into a Vocabulary: a GGUF (its embedded tokenizer; vocab-only files work)
 * or a llama2.c tokenizer.bin (which does not store its size, hence `vocabSize`).
 */
export function readTokenizerFile(path: string, vocabSize: number): Vocabulary {
  if (!existsSync(path)) throw new InputError(`${path}: no such tokenizer file`);
  const head = readFileHead(path, 4);
  if (head.length === 4 && head.readUInt32LE(0) === GGUF_MAGIC) return vocabularyFromGguf(path);
  if (path.endsWith('.json') || path.endsWith('.model')) {
    throw new InputError(
      `${path}: Hugging Face tokenizer.json / SentencePiece .model files cannot be embedded yet`,
      'HINT: pass a llama2.c tokenizer.bin or a GGUF file that embeds the same tokenizer',
    );
  }
  return readLlama2cTokenizer(path, vocabSize);
}

/** The first `bytes` bytes of a file (fewer when it is shorter), to recognise its format by magic. */
export function readFileHead(path: string, bytes: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(bytes);
    const read = readSync(fd, head, 0, bytes, 0);
    return head.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}
