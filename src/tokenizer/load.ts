/** Open a tokenizer from whichever file a model came with. */
import { closeSync, openSync, readSync } from 'node:fs';
import { InputError } from '../errors.js';
import { readGguf } from '../formats/gguf.js';
import { vocabularyFromGgufMetadata } from '../formats/gguf-vocabulary.js';
import { readLlama2cTokenizer } from '../formats/llama2c-tokenizer.js';
import { readHuggingFaceTokenizer } from './huggingface.js';
import { llamaCppTokenizerFromVocabulary, openLlamaCppTokenizer } from './llama-cpp.js';
import type { Tokenizer } from './tokenizer.js';
import type { Vocabulary } from './vocabulary.js';

export type TokenizerSource =
  /** A GGUF file (full model or vocab-only) with an embedded `llama` or `gpt2` tokenizer. */
  | { kind: 'gguf'; path: string }
  /** A Hugging Face tokenizer.json (a tokenizer_config.json beside it is read too). */
  | { kind: 'huggingface'; path: string }
  /** A llama2.c tokenizer.bin; its token count is the checkpoint's vocab_size. */
  | { kind: 'llama2c'; path: string; vocabSize: number };

/**
 * Load a tokenizer. A bare path is recognised by content: GGUF magic, or a JSON object
 * (tokenizer.json); a llama2.c tokenizer needs `{ kind: 'llama2c', path, vocabSize }`.
 * GGUF and llama2.c vocabularies are tokenized by llama.cpp, tokenizer.json by @huggingface/tokenizers.
 */
export async function loadTokenizer(source: TokenizerSource | string): Promise<Tokenizer> {
  const resolved = typeof source === 'string' ? sniffSource(source) : source;
  switch (resolved.kind) {
    case 'gguf': {
      const file = readGguf(resolved.path);
      const vocabulary = vocabularyFromGgufMetadata(file.metadata, resolved.path);
      const name = file.metadata.get('general.name');
      const modelName = typeof name === 'string' ? name : undefined;
      return openLlamaCppTokenizer(resolved.path, vocabulary, { path: resolved.path, modelName });
    }
    case 'huggingface':
      return readHuggingFaceTokenizer(resolved.path);
    case 'llama2c': {
      const vocabulary = readLlama2cTokenizer(resolved.path, resolved.vocabSize);
      return llamaCppTokenizerFromVocabulary(vocabulary, { path: resolved.path });
    }
  }
}

/** A tokenizer over an in-memory vocabulary (what GGUF and llama2.c files hold). */
export async function tokenizerFromVocabulary(
  vocabulary: Vocabulary,
  options: { path?: string; modelName?: string } = {},
): Promise<Tokenizer> {
  return llamaCppTokenizerFromVocabulary(vocabulary, options);
}

function sniffSource(path: string): TokenizerSource {
  let head: Buffer;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new InputError(
      `${path}: cannot open tokenizer file (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
  try {
    head = Buffer.alloc(64);
    head = head.subarray(0, readSync(fd, head, 0, head.length, 0));
  } finally {
    closeSync(fd);
  }
  if (head.subarray(0, 4).toString('latin1') === 'GGUF') return { kind: 'gguf', path };
  if (head.toString('utf8').trimStart().startsWith('{')) return { kind: 'huggingface', path };
  throw new InputError(
    `${path}: not a GGUF file or a tokenizer.json`,
    "a llama2.c tokenizer.bin also needs the checkpoint's vocab_size" +
      " (fireopt tokenize --vocab-size N; in code { kind: 'llama2c', path, vocabSize })",
  );
}
