/**
 * The Hugging Face tokenizer.json wrapper against llama.cpp. No tokenizer.json ships in ../shared,
 * so the test writes GPT-2's (the standard ByteLevel BPE layout) from the vocabulary and merges in
 * ggml-vocab-gpt-2.gguf, and compares with llama.cpp on that same GGUF.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LlamaModel } from 'node-llama-cpp';
import { vocabularyFromGguf } from '../../src/formats/gguf-vocabulary.js';
import { loadTokenizer, type Tokenizer, type Vocabulary } from '../../src/tokenizer/index.js';
import { sharedPath } from '../helpers/shared.js';
import { tokenizerCorpus } from './corpus.js';
import { compareWithLlamaCpp, loadReferenceVocab, mismatchReport } from './llama-cpp-reference.js';

/** GPT-2's tokenizer.json layout (as Hugging Face's `gpt2` repository has it) for a byte-level BPE vocabulary. */
function gpt2TokenizerJson(vocabulary: Vocabulary): object {
  const vocab: Record<string, number> = {};
  vocabulary.tokens.forEach((token, id) => {
    vocab[token] = id;
  });
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const endOfText = vocabulary.tokens.indexOf('<|endoftext|>');
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: endOfText, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, vocab, merges: vocabulary.merges },
  };
}

describe('Hugging Face tokenizer.json (GPT-2) agrees with llama.cpp', () => {
  const ggufPath = () => sharedPath('models/vocab/ggml-vocab-gpt-2.gguf');
  let directory: string;
  let model: LlamaModel;
  let tokenizer: Tokenizer;
  const corpus = tokenizerCorpus();

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'fireopt-hf-'));
    writeFileSync(join(directory, 'tokenizer.json'), JSON.stringify(gpt2TokenizerJson(vocabularyFromGguf(ggufPath()))));
    writeFileSync(join(directory, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', add_bos_token: false }));
    tokenizer = loadTokenizer(join(directory, 'tokenizer.json'));
    model = await loadReferenceVocab(ggufPath());
  });
  afterAll(async () => {
    await model?.dispose();
    if (directory) rmSync(directory, { recursive: true, force: true });
  });

  it('reads the vocabulary and special tokens', () => {
    expect(tokenizer.kind).toBe('huggingface');
    expect(tokenizer.vocabSize).toBe(50257);
    expect(tokenizer.bosId).toBe(50256);
    expect(tokenizer.eosId).toBe(50256);
    expect(tokenizer.isSpecial(50256)).toBe(true);
    expect(tokenizer.pieceToId('Ġthe')).toBe(262);
    expect(new TextDecoder().decode(tokenizer.tokenBytes(262))).toBe(' the');
    expect(tokenizer.bytesToId(new TextEncoder().encode(' the'))).toBe(262);
  });

  it('encodes and decodes 1,000 real strings exactly as llama.cpp', () => {
    // The library always matches added tokens in text, so the reference is llama.cpp with parse_special on.
    const result = compareWithLlamaCpp(model, tokenizer, corpus, true);
    expect(result.checked).toBe(1000);
    expect(mismatchReport('encode', result.encodeMismatches, result.checked)).toBe('');
    expect(mismatchReport('decode', result.decodeMismatches, result.checked)).toBe('');
  });
});
