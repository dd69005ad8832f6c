/**
 * llama.cpp (through node-llama-cpp 3.21.1, CPU prebuilt) as the reference tokenizer: load a
 * vocab-only GGUF once and compare fireopt's encode/decode with llama_tokenize/llama_detokenize.
 */
import { getLlama, LlamaLogLevel, type Llama, type LlamaModel, type Token } from 'node-llama-cpp';
import type { Tokenizer } from '../../src/tokenizer/index.js';
import type { CorpusString } from './corpus.js';

/** Plain ids as node-llama-cpp's branded Token type. */
export const asTokens = (ids: readonly number[]): Token[] => ids as Token[];

let llamaPromise: Promise<Llama> | undefined;

/** A vocab-only llama.cpp model (tokenizer only, no weights). */
export async function loadReferenceVocab(modelPath: string): Promise<LlamaModel> {
  // Vocab-only files have no tensors; llama.cpp logs that as an error and loads the vocabulary anyway.
  llamaPromise ??= getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.disabled });
  const llama = await llamaPromise;
  return llama.loadModel({ modelPath, vocabOnly: true });
}

export interface Mismatch {
  source: string;
  text: string;
  expected: string;
  actual: string;
}

const show = (value: unknown): string => JSON.stringify(value).slice(0, 300);

/** Where two id lists first differ, with a few ids of context on each side. */
function describeIdDifference(
  expected: readonly number[],
  actual: readonly number[],
): { expected: string; actual: string } {
  let at = 0;
  while (at < expected.length && expected[at] === actual[at]) at++;
  const window = (ids: readonly number[]): string =>
    `@${at} of ${ids.length}: ${show(ids.slice(Math.max(0, at - 2), at + 6))}`;
  return { expected: window(expected), actual: window(actual) };
}

/** Human-readable report of the first few mismatches (empty when there are none). */
export function mismatchReport(label: string, mismatches: Mismatch[], total: number): string {
  if (mismatches.length === 0) return '';
  const lines = mismatches
    .slice(0, 8)
    .map(
      (m) => `  [${m.source}] ${show(m.text.slice(0, 120))}\n    llama.cpp: ${m.expected}\n    fireopt:   ${m.actual}`,
    );
  return `${label}: ${mismatches.length} of ${total} strings differ from llama.cpp\n${lines.join('\n')}`;
}

export interface AgreementResult {
  checked: number;
  encodeMismatches: Mismatch[];
  decodeMismatches: Mismatch[];
}

/**
 * Compare on every corpus string: encode (no BOS) against llama_tokenize(add_special = false,
 * parse_special); decode of llama.cpp's ids against llama_detokenize, plain, with special tokens
 * rendered, and after a BOS (which changes SentencePiece's leading-space rule).
 */
export function compareWithLlamaCpp(
  model: LlamaModel,
  tokenizer: Tokenizer,
  corpus: readonly CorpusString[],
  parseSpecial: boolean,
  { decodeAfterBos = true }: { decodeAfterBos?: boolean } = {},
): AgreementResult {
  const encodeMismatches: Mismatch[] = [];
  const decodeMismatches: Mismatch[] = [];
  for (const { source, text } of corpus) {
    const expected = Array.from(model.tokenize(text, parseSpecial));
    const actual = tokenizer.encode(text, { addBos: false, addEos: false, parseSpecial });
    if (expected.length !== actual.length || expected.some((id, i) => id !== actual[i])) {
      encodeMismatches.push({ source, text, ...describeIdDifference(expected, actual) });
    }
    const withBos = tokenizer.bosId === undefined ? expected : [tokenizer.bosId, ...expected];
    const decodeCases: Array<[readonly number[], boolean]> = [
      [expected, false],
      [expected, true],
    ];
    if (decodeAfterBos) decodeCases.push([withBos, false]);
    for (const [ids, renderSpecial] of decodeCases) {
      const expectedText = model.detokenize(asTokens(ids), renderSpecial);
      const actualText = tokenizer.decode(ids, { renderSpecial });
      if (expectedText !== actualText) {
        decodeMismatches.push({
          source,
          text,
          expected: `renderSpecial=${renderSpecial} ${show(expectedText.slice(0, 200))}`,
          actual: show(actualText.slice(0, 200)),
        });
      }
    }
  }
  return { checked: corpus.length, encodeMismatches, decodeMismatches };
}

/** Decode every single token id alone (plain and with specials rendered) and compare. */
export function compareEveryTokenDecode(model: LlamaModel, tokenizer: Tokenizer): Mismatch[] {
  const mismatches: Mismatch[] = [];
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    for (const renderSpecial of [false, true]) {
      const expected = model.detokenize(asTokens([id]), renderSpecial);
      const actual = tokenizer.decode([id], { renderSpecial });
      if (expected !== actual) {
        mismatches.push({
          source: `token ${id}`,
          text: tokenizer.tokenPiece(id),
          expected: `renderSpecial=${renderSpecial} ${show(expected)}`,
          actual: show(actual),
        });
      }
    }
  }
  return mismatches;
}
