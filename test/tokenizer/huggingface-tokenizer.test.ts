/**
 * The Hugging Face tokenizer.json wrapper against llama.cpp. No tokenizer.json ships in ../shared,
 * so the test writes two from the vocab-only GGUFs, in the layouts Hugging Face's own repositories
 * use, and compares with llama.cpp on the same GGUF:
 * - GPT-2: ByteLevel pre-tokenizer and decoder, BPE with the GGUF's merges;
 * - Llama-2: the legacy Llama layout (Prepend '▁' + Replace ' '→'▁' normalizer, BPE with byte
 *   fallback, merges derived from the SentencePiece scores as transformers' converter does).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LlamaModel } from 'node-llama-cpp';
import { vocabularyFromGguf } from '../../src/formats/gguf-vocabulary.js';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.js';
import { haveShared, sharedPath } from '../helpers/shared.js';
import { CORPUS_FILES, tokenizerCorpus, type CorpusString } from './corpus.js';
import { compareWithLlamaCpp, loadReferenceVocab, mismatchReport } from './llama-cpp-reference.js';
import { gpt2TokenizerJson, llamaTokenizerJson } from './tokenizer-json-layouts.js';

const layouts = [
  {
    name: 'GPT-2',
    gguf: 'ggml-vocab-gpt-2.gguf',
    build: gpt2TokenizerJson,
    vocabSize: 50257,
    bosId: 50256,
    addBos: false,
    decodeAfterBos: true,
    config: { bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', add_bos_token: false },
    piece: { text: '\u0120the', id: 262, bytes: ' the' },
  },
  {
    // Decoding after a BOS differs by design: llama.cpp keeps the first piece's space after BOS
    // ("<s> Hello" → " Hello"), Hugging Face's Strip decoder drops it ("Hello").
    name: 'Llama-2',
    gguf: 'ggml-vocab-llama-spm.gguf',
    build: llamaTokenizerJson,
    vocabSize: 32000,
    bosId: 1,
    addBos: true,
    decodeAfterBos: false,
    config: {
      bos_token: '<s>',
      eos_token: '</s>',
      unk_token: '<unk>',
      add_bos_token: true,
      legacy: true,
      clean_up_tokenization_spaces: false,
    },
    piece: { text: '\u2581the', id: 278, bytes: ' the' },
  },
] as const;

const haveVocabularies = haveShared(...CORPUS_FILES, ...layouts.map(({ gguf }) => `models/vocab/${gguf}`));

describe.skipIf(!haveVocabularies).each(layouts)(
  'Hugging Face tokenizer.json ($name layout) agrees with llama.cpp',
  (layout) => {
    const ggufPath = () => sharedPath('models/vocab', layout.gguf);
    let directory: string;
    let model: LlamaModel;
    let tokenizer: Tokenizer;
    let corpus: CorpusString[];

    beforeAll(async () => {
      corpus = tokenizerCorpus();
      directory = mkdtempSync(join(tmpdir(), 'fireopt-hf-'));
      writeFileSync(join(directory, 'tokenizer.json'), JSON.stringify(layout.build(vocabularyFromGguf(ggufPath()))));
      writeFileSync(join(directory, 'tokenizer_config.json'), JSON.stringify(layout.config));
      tokenizer = await loadTokenizer(join(directory, 'tokenizer.json'));
      model = await loadReferenceVocab(ggufPath());
    });
    afterAll(async () => {
      await model?.dispose();
      if (directory) rmSync(directory, { recursive: true, force: true });
    });

    it('reads the vocabulary and special tokens', () => {
      expect(tokenizer.kind).toBe('huggingface');
      expect(tokenizer.vocabSize).toBe(layout.vocabSize);
      expect(tokenizer.bosId).toBe(layout.bosId);
      expect(tokenizer.eosId).toBe(model.tokens.eos);
      expect(tokenizer.isSpecial(layout.bosId)).toBe(true);
      expect(tokenizer.pieceToId(layout.piece.text)).toBe(layout.piece.id);
      expect(new TextDecoder().decode(tokenizer.tokenBytes(layout.piece.id))).toBe(layout.piece.bytes);
      expect(tokenizer.bytesToId(new TextEncoder().encode(layout.piece.bytes))).toBe(layout.piece.id);
      const ids = tokenizer.encode('Hello world');
      expect(ids[0] === layout.bosId).toBe(layout.addBos);
    });

    it('encodes and decodes 1,000 real strings exactly as llama.cpp', () => {
      // The library always matches added tokens in text, so the reference is llama.cpp with parse_special on.
      const result = compareWithLlamaCpp(model, tokenizer, corpus, true, { decodeAfterBos: layout.decodeAfterBos });
      expect(result.checked).toBe(1000);
      expect(mismatchReport('encode', result.encodeMismatches, result.checked)).toBe('');
      expect(mismatchReport('decode', result.decodeMismatches, result.checked)).toBe('');
    });
  },
);
