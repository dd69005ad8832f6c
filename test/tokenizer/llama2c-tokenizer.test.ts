/**
 * stories260K's llama2.c tokenizer (tok512.bin) against llama.cpp. llama.cpp cannot read tok512.bin,
 * so the same vocabulary is written into a vocab-only GGUF (fireopt's GGUF writer, with the
 * checkpoint's real hyper-parameters) and loaded by llama.cpp; fireopt's tokenizer is built from
 * tok512.bin directly.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LlamaModel } from 'node-llama-cpp';
import { writeVocabOnlyGguf } from '../../src/formats/gguf-llama.js';
import { readLlama2cCheckpoint } from '../../src/formats/llama2c.js';
import { readLlama2cTokenizer } from '../../src/formats/llama2c-tokenizer.js';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.js';
import { haveShared, STORIES260K, stories260K, TOK512, tok512 } from '../helpers/shared.js';
import { CORPUS_FILES, tokenizerCorpus, type CorpusString } from './corpus.js';
import {
  asTokens,
  compareEveryTokenDecode,
  compareWithLlamaCpp,
  loadReferenceVocab,
  mismatchReport,
} from './llama-cpp-reference.js';

describe.skipIf(!haveShared(STORIES260K, TOK512, ...CORPUS_FILES))(
  'stories260K tok512 tokenizer agrees with llama.cpp',
  () => {
    let directory: string;
    let model: LlamaModel;
    let tokenizer: Tokenizer;
    let corpus: CorpusString[];

    beforeAll(async () => {
      corpus = tokenizerCorpus();
      const { config } = readLlama2cCheckpoint(stories260K());
      directory = mkdtempSync(join(tmpdir(), 'fireopt-tok512-'));
      const ggufPath = join(directory, 'tok512-vocab.gguf');
      writeVocabOnlyGguf(ggufPath, config, readLlama2cTokenizer(tok512(), config.vocabSize), { name: 'stories260K' });
      model = await loadReferenceVocab(ggufPath);
      tokenizer = await loadTokenizer({ kind: 'llama2c', path: tok512(), vocabSize: config.vocabSize });
    });
    afterAll(async () => {
      await model?.dispose();
      if (directory) rmSync(directory, { recursive: true, force: true });
    });

    it('has 512 tokens with <s> and </s> as llama.cpp sees them', () => {
      expect(tokenizer.kind).toBe('sentencepiece');
      expect(tokenizer.vocabSize).toBe(512);
      expect(tokenizer.bosId).toBe(model.tokens.bos);
      expect(tokenizer.eosId).toBe(model.tokens.eos);
      expect(tokenizer.tokenPiece(1)).toBe('<s>');
    });

    it('encodes and decodes 1,000 real strings exactly as llama.cpp', () => {
      const result = compareWithLlamaCpp(model, tokenizer, corpus, false);
      expect(result.checked).toBe(1000);
      expect(mismatchReport('encode', result.encodeMismatches, result.checked)).toBe('');
      expect(mismatchReport('decode', result.decodeMismatches, result.checked)).toBe('');
    });

    it('matches llama.cpp with special-token parsing on', () => {
      const subset = corpus.filter((entry, i) => entry.text.includes('<') || i % 10 === 0);
      const result = compareWithLlamaCpp(model, tokenizer, subset, true);
      expect(mismatchReport('encode(parseSpecial)', result.encodeMismatches, result.checked)).toBe('');
    });

    it('decodes every single token as llama.cpp does', () => {
      expect(
        mismatchReport('single-token decode', compareEveryTokenDecode(model, tokenizer), tokenizer.vocabSize),
      ).toBe('');
    });

    it('adds BOS by default, as the model was trained', () => {
      const ids = tokenizer.encode('Once upon a time');
      expect(ids[0]).toBe(1);
      expect(ids.slice(1)).toEqual(Array.from(model.tokenize('Once upon a time', false)));
      expect(tokenizer.decode(ids)).toBe(model.detokenize(asTokens(ids), false));
    });
  },
);
