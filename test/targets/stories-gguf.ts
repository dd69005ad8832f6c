/** The real stories260K model converted to GGUF by fireopt's own writer, once per test file. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readLlama2cCheckpoint } from '../../src/formats/llama2c.js';
import { readLlama2cTokenizer } from '../../src/formats/llama2c-tokenizer.js';
import { writeLlamaGguf } from '../../src/formats/gguf-llama.js';
import { stories260K, tok512 } from '../helpers/shared.js';

export interface StoriesGguf {
  path: string;
  remove(): void;
}

/**
/**
 * Write stories260K.gguf into a fresh temporary folder. `endsWithBos`: stories260K ends each story
 * with BOS, not EOS (llama2.c's training data only starts stories with BOS, and llama2.c's run.c stops
 * there), so this GGUF names BOS its EOS too, as GPT-2's `<|endoftext|>` is both: llama.cpp then
 * stops where the model does — a real model whose greedy output ends before max_tokens.
 * `swapPieces: [a, b]` exchanges the pieces of two ids (each id keeps its score): another real
 * 512-token vocabulary, for tokenizer-identity tests (there is no second 512-token vocabulary in ../shared).
 */
export function writeStoriesGguf(options: { endsWithBos?: boolean; swapPieces?: [number, number] } = {}): StoriesGguf {
  const dir = mkdtempSync(join(tmpdir(), 'fireopt-targets-'));
  const weights = readLlama2cCheckpoint(stories260K());
  const tokenizer = readLlama2cTokenizer(tok512(), weights.config.vocabSize);
  if (options.swapPieces) {
    const [a, b] = options.swapPieces;
    [tokenizer.tokens[a], tokenizer.tokens[b]] = [tokenizer.tokens[b], tokenizer.tokens[a]];
  }
  const vocabulary = options.endsWithBos ? { ...tokenizer, eosId: BOS } : tokenizer;
  const path = join(dir, options.swapPieces ? 'stories260K-swapped.gguf' : 'stories260K.gguf');
  writeLlamaGguf(path, weights, vocabulary, { name: 'stories260K' });
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** BOS of the llama2.c tokenizer. */
export const BOS = 1;
/** The known start of stories260K's greedy story from BOS. */
export const GREEDY_STORY_PREFIX = 'Once upon a time, there was a little girl named Lily.';
