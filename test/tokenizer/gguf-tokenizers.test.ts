/**
 * The GGUF tokenizers (SentencePiece Llama-2 and Phi-3, byte-level BPE GPT-2) against llama.cpp on
 * 1,000 real strings: identical ids, identical detokenized text.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LlamaModel } from 'node-llama-cpp';
import { readGguf } from '../../src/formats/gguf.js';
import { vocabularyFromGgufMetadata } from '../../src/formats/gguf-vocabulary.js';
import { writeGguf, type GgufMetadataEntry } from '../../src/formats/gguf-write.js';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.js';
import { haveShared, sharedPath } from '../helpers/shared.js';
import { CORPUS_FILES, tokenizerCorpus, type CorpusString } from './corpus.js';
import {
  compareEveryTokenDecode,
  compareWithLlamaCpp,
  loadReferenceVocab,
  mismatchReport,
} from './llama-cpp-reference.js';

const vocabularies = [
  { name: 'Llama-2 (SentencePiece)', file: 'ggml-vocab-llama-spm.gguf', kind: 'sentencepiece', vocabSize: 32000 },
  { name: 'Phi-3 (SentencePiece)', file: 'ggml-vocab-phi-3.gguf', kind: 'sentencepiece', vocabSize: 32064 },
  { name: 'GPT-2 (byte-level BPE)', file: 'ggml-vocab-gpt-2.gguf', kind: 'bpe', vocabSize: 50257 },
] as const;

const haveVocabularies = haveShared(...CORPUS_FILES, ...vocabularies.map(({ file }) => `models/vocab/${file}`));

describe.skipIf(!haveVocabularies).each(vocabularies)(
  '$name GGUF tokenizer agrees with llama.cpp',
  ({ file, kind, vocabSize }) => {
    const path = () => sharedPath('models/vocab', file);
    let model: LlamaModel;
    let tokenizer: Tokenizer;
    let corpus: CorpusString[];

    beforeAll(async () => {
      corpus = tokenizerCorpus();
      model = await loadReferenceVocab(path());
      tokenizer = await loadTokenizer(path());
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
      expect(
        mismatchReport('single-token decode', compareEveryTokenDecode(model, tokenizer), tokenizer.vocabSize),
      ).toBe('');
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
  },
);

/**
 * The llama3 pre-tokenizer (`pre = llama-bpe`: Llama-3's split regex, digits in threes, merges
 * skipped for whole-token words). No Llama-3 vocabulary ships in ../shared, so GPT-2's vocabulary
 * and merges are rewritten into a GGUF that names `llama-bpe`: llama.cpp then runs its llama3 code
 * path on them, and so must fireopt.
 */
describe.skipIf(!haveVocabularies)('llama3 (llama-bpe) pre-tokenizer agrees with llama.cpp', () => {
  let directory: string;
  let model: LlamaModel;
  let tokenizer: Tokenizer;
  let corpus: CorpusString[];

  beforeAll(async () => {
    corpus = tokenizerCorpus();
    const source = readGguf(sharedPath('models/vocab/ggml-vocab-gpt-2.gguf'));
    const vocabulary = vocabularyFromGgufMetadata(source.metadata, source.path);
    const uint32 = (key: string): GgufMetadataEntry => ({
      key,
      type: 'uint32',
      value: Number(source.metadata.get(key)),
    });
    const metadata: GgufMetadataEntry[] = [
      { key: 'general.architecture', type: 'string', value: 'gpt2' },
      { key: 'general.name', type: 'string', value: 'gpt-2 vocabulary with the llama-bpe pre-tokenizer' },
      uint32('gpt2.block_count'),
      uint32('gpt2.context_length'),
      uint32('gpt2.embedding_length'),
      uint32('gpt2.feed_forward_length'),
      uint32('gpt2.attention.head_count'),
      { key: 'gpt2.attention.layer_norm_epsilon', type: 'float32', value: 1e-5 },
      { key: 'tokenizer.ggml.model', type: 'string', value: 'gpt2' },
      { key: 'tokenizer.ggml.pre', type: 'string', value: 'llama-bpe' },
      { key: 'tokenizer.ggml.tokens', type: 'string[]', value: vocabulary.tokens },
      { key: 'tokenizer.ggml.token_type', type: 'int32[]', value: vocabulary.tokenTypes },
      { key: 'tokenizer.ggml.merges', type: 'string[]', value: vocabulary.merges ?? [] },
      { key: 'tokenizer.ggml.bos_token_id', type: 'uint32', value: vocabulary.bosId ?? 0 },
      { key: 'tokenizer.ggml.eos_token_id', type: 'uint32', value: vocabulary.eosId ?? 0 },
    ];
    directory = mkdtempSync(join(tmpdir(), 'fireopt-llama-bpe-'));
    const path = join(directory, 'gpt2-llama-bpe.gguf');
    writeGguf(path, metadata, []);
    model = await loadReferenceVocab(path);
    tokenizer = await loadTokenizer(path);
  });
  afterAll(async () => {
    await model?.dispose();
    if (directory) rmSync(directory, { recursive: true, force: true });
  });

  it('encodes and decodes 1,000 real strings exactly as llama.cpp', () => {
    const result = compareWithLlamaCpp(model, tokenizer, corpus, false);
    expect(result.checked).toBe(1000);
    expect(mismatchReport('encode', result.encodeMismatches, result.checked)).toBe('');
    expect(mismatchReport('decode', result.decodeMismatches, result.checked)).toBe('');
  });

  it('splits differently from gpt-2 (the test exercises the llama3 path)', async () => {
    const gpt2 = await loadTokenizer(sharedPath('models/vocab/ggml-vocab-gpt-2.gguf'));
    const differing = corpus.filter(({ text }) => gpt2.encode(text).join() !== tokenizer.encode(text).join());
    expect(differing.length).toBeGreaterThan(100);
  });
});
