/**
 * The GGUF tokenizers (SentencePiece Llama-2 and Phi-3, byte-level BPE GPT-2) against llama.cpp on
 * 1,000 real strings: identical ids, identical detokenized text.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LlamaModel } from 'node-llama-cpp';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.js';
import { sharedPath } from '../helpers/shared.js';
import { tokenizerCorpus } from './corpus.js';
import { compareEveryTokenDecode, compareWithLlamaCpp, loadReferenceVocab, mismatchReport } from './llama-cpp-reference.js';

const vocabularies = [
  { name: 'Llama-2 (SentencePiece)', file: 'ggml-vocab-llama-spm.gguf', kind: 'sentencepiece', vocabSize: 32000 },
  { name: 'Phi-3 (SentencePiece)', file: 'ggml-vocab-phi-3.gguf', kind: 'sentencepiece', vocabSize: 32064 },
  { name: 'GPT-2 (byte-level BPE)', file: 'ggml-vocab-gpt-2.gguf', kind: 'bpe', vocabSize: 50257 },
] as const;

describe.each(vocabularies)('$name GGUF tokenizer agrees with llama.cpp', ({ file, kind, vocabSize }) => {
  const path = () => sharedPath('models/vocab', file);
  let model: LlamaModel;
  let tokenizer: Tokenizer;
  const corpus = tokenizerCorpus();

  beforeAll(async () => {
    model = await loadReferenceVocab(path());
    tokenizer = loadTokenizer(path());
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('has the vocabulary llama.cpp has', () => {
    expect(tokenizer.kind).toBe(kind);
    expect(tokenizer.vocabSize).toBe(vocabSize);
    expect(tokenizer.bosId).toBe(model.tokens.bos ?? undefined);
    expect(tokenizer.eosId).toBe(model.tokens.eos ?? undefined);
  });

  it('encodes and decodes 1,000 real strings exactly as llama.cpp', () => {
    const result = compareWithLlamaCpp(model, tokenizer, corpus, false);
    expect(result.checked).toBe(1000);
    expect(mismatchReport('encode', result.encodeMismatches, result.checked)).toBe('');
    expect(mismatchReport('decode', result.decodeMismatches, result.checked)).toBe('');
  });

  it('matches llama.cpp with special-token parsing on', () => {
    // Every string containing a '<' or '[' (where special-token text can be), plus every 10th string.
    const subset = corpus.filter((entry, i) => /[<[]/.test(entry.text) || i % 10 === 0);
    const result = compareWithLlamaCpp(model, tokenizer, subset, true);
    expect(result.checked).toBeGreaterThan(100);
    expect(mismatchReport('encode(parseSpecial)', result.encodeMismatches, result.checked)).toBe('');
  });

  it('decodes every single token as llama.cpp does', () => {
    expect(mismatchReport('single-token decode', compareEveryTokenDecode(model, tokenizer), tokenizer.vocabSize)).toBe('');
  });

  it('maps each token back from its bytes and piece', () => {
    for (const id of [tokenizer.bosId ?? 0, 100, 1000, tokenizer.vocabSize - 1]) {
      expect(tokenizer.pieceToId(tokenizer.tokenPiece(id))).toBe(id);
    }
    // The ids llama.cpp produces for a real sentence are found again from their bytes.
    const ids = Array.from(model.tokenize('Once upon a time, naïve café owners sold 42 crêpes 🥞.', false));
    const fromBytes = ids.map((id) => tokenizer.bytesToId(tokenizer.tokenBytes(id)));
    const byteTokens = ids.filter((id, i) => fromBytes[i] !== id);
    // Only byte-fallback pieces may map to a different id (a normal piece with the same bytes wins).
    for (const id of byteTokens) expect(tokenizer.tokenPiece(id)).toMatch(/^<0x[0-9A-F]{2}>$/);
    expect(fromBytes.filter((id, i) => id === ids[i]).length).toBeGreaterThan(ids.length / 2);
  });
});
