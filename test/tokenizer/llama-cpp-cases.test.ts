/**
 * llama.cpp's own tokenizer test cases (the `*.gguf.inp` / `*.gguf.out` pairs its test-tokenizer-0
 * reads, copied into ../shared/models/vocab): every string must give exactly the expected ids
 * through fireopt's GGUF tokenizer (no BOS/EOS, special-token text read as text, as that test does).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadTokenizer } from '../../src/tokenizer/index.js';
import { haveShared, sharedPath } from '../helpers/shared.js';

const VOCAB_DIR = 'models/vocab';
const CASE_SEPARATOR = '\n__ggml_vocab_test__\n';

const caseFiles = haveShared(VOCAB_DIR)
  ? readdirSync(sharedPath(VOCAB_DIR))
      .filter((name) => name.endsWith('.gguf.inp'))
      .map((name) => name.slice(0, -'.inp'.length))
  : [];

/** The test strings and their expected ids, in test-tokenizer-0's format. */
function readCases(gguf: string): Array<{ text: string; ids: number[] }> {
  const inputs = readFileSync(sharedPath(VOCAB_DIR, `${gguf}.inp`), 'utf8').split(CASE_SEPARATOR);
  // The .inp file ends with a separator line: the piece after it is not a case.
  if (inputs[inputs.length - 1].trim() === '' && inputs.length > 1) inputs.pop();
  const outputs = readFileSync(sharedPath(VOCAB_DIR, `${gguf}.out`), 'utf8').split('\n');
  return inputs.map((text, i) => ({
    text,
    ids: outputs[i].trim() === '' ? [] : outputs[i].trim().split(/\s+/).map(Number),
  }));
}

describe.skipIf(caseFiles.length === 0)("llama.cpp's tokenizer test cases", () => {
  it('covers the seven vocabularies that ship cases', () => {
    expect(caseFiles.sort()).toEqual([
      'ggml-vocab-deepseek-llm.gguf',
      'ggml-vocab-gpt-2.gguf',
      'ggml-vocab-llama-spm.gguf',
      'ggml-vocab-mpt.gguf',
      'ggml-vocab-phi-3.gguf',
      'ggml-vocab-refact.gguf',
      'ggml-vocab-starcoder.gguf',
    ]);
  });

  it.each(caseFiles)(
    '%s: every case tokenizes to the expected ids',
    async (gguf) => {
      expect(existsSync(sharedPath(VOCAB_DIR, `${gguf}.out`))).toBe(true);
      const tokenizer = await loadTokenizer(sharedPath(VOCAB_DIR, gguf));
      const cases = readCases(gguf);
      expect(cases.length).toBeGreaterThan(40);
      const wrong = cases
        .map(({ text, ids }) => {
          const actual = tokenizer.encode(text, { addBos: false, addEos: false }).join(' ');
          return { text, expected: ids.join(' '), actual };
        })
        .filter(({ expected, actual }) => expected !== actual);
      expect(wrong).toEqual([]);
    },
    60_000,
  );
});
