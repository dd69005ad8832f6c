/** Bad tokenizer inputs give InputErrors that name the file and the problem. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { writeGguf, type GgufMetadataEntry } from '../../src/formats/gguf-write.js';
import { loadTokenizer, tokenizerFromVocabulary, TokenType } from '../../src/tokenizer/index.js';
import { haveShared, sharedPath, STORIES260K, stories260K, TOK512, tok512 } from '../helpers/shared.js';

/** The error `run` throws or rejects with (fails the test when there is none). */
async function thrown(run: () => unknown): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error, none was thrown');
}

async function expectInputError(run: () => unknown, ...fragments: string[]): Promise<void> {
  const error = await thrown(run);
  expect(error).toBeInstanceOf(InputError);
  for (const fragment of fragments) expect((error as InputError).message).toContain(fragment);
}

const LLAMA_SPM_VOCAB = 'models/vocab/ggml-vocab-llama-spm.gguf';

describe('tokenizer input errors', () => {
  let directory: string;
  const file = (name: string) => join(directory, name);
  const tokenizerMetadata = (model: string, pre?: string): GgufMetadataEntry[] => [
    { key: 'general.architecture', type: 'string', value: 'llama' },
    { key: 'tokenizer.ggml.model', type: 'string', value: model },
    ...(pre ? [{ key: 'tokenizer.ggml.pre', type: 'string', value: pre } as const] : []),
    { key: 'tokenizer.ggml.tokens', type: 'string[]', value: ['a', 'b', 'ab'] },
    { key: 'tokenizer.ggml.token_type', type: 'int32[]', value: [1, 1, 1] },
    { key: 'tokenizer.ggml.merges', type: 'string[]', value: ['a b'] },
  ];

  beforeAll(() => {
    directory = mkdtempSync(join(tmpdir(), 'fireopt-tokenizer-errors-'));
  });
  afterAll(() => {
    if (directory) rmSync(directory, { recursive: true, force: true });
  });

  it('names a missing file', async () => {
    await expectInputError(() => loadTokenizer(file('missing.gguf')), 'missing.gguf', 'ENOENT');
    await expectInputError(() => loadTokenizer({ kind: 'gguf', path: file('missing.gguf') }), 'missing.gguf');
    await expectInputError(
      () => loadTokenizer({ kind: 'huggingface', path: file('tokenizer.json') }),
      'tokenizer.json',
      'ENOENT',
    );
  });

  it.skipIf(!haveShared(STORIES260K))(
    'rejects a file that is neither GGUF nor tokenizer.json, pointing llama2.c users at vocabSize',
    async () => {
      const error = await thrown(() => loadTokenizer(stories260K()));
      expect(error).toBeInstanceOf(InputError);
      expect((error as InputError).message).toContain('not a GGUF file or a tokenizer.json');
      expect((error as InputError).hint).toContain('vocabSize');
    },
  );

  it('rejects a GGUF whose tokenizer model fireopt does not implement', async () => {
    writeGguf(file('bert.gguf'), tokenizerMetadata('bert'), []);
    await expectInputError(
      () => loadTokenizer(file('bert.gguf')),
      'bert.gguf',
      "unsupported GGUF tokenizer model 'bert'",
    );
  });

  it('rejects a BPE GGUF whose pre-tokenizer llama.cpp does not know, naming it', async () => {
    writeGguf(file('proto.gguf'), tokenizerMetadata('gpt2', 'constructor'), []);
    await expectInputError(
      () => loadTokenizer(file('proto.gguf')),
      'proto.gguf',
      'llama.cpp cannot load this tokenizer',
      "'constructor'",
    );
  });

  it('loads pre-tokenizers the hand-written port refused (qwen2, deepseek-coder)', async () => {
    for (const pre of ['qwen2', 'deepseek-coder']) {
      writeGguf(file(`${pre}.gguf`), tokenizerMetadata('gpt2', pre), []);
      const tokenizer = await loadTokenizer(file(`${pre}.gguf`));
      expect(tokenizer.encode('ab')).toEqual([2]);
    }
  });

  it('loads a tiny BPE GGUF with a supported pre-tokenizer', async () => {
    writeGguf(file('tiny.gguf'), tokenizerMetadata('gpt2', 'gpt-2'), []);
    const tokenizer = await loadTokenizer(file('tiny.gguf'));
    expect(tokenizer.encode('ab')).toEqual([2]);
    expect(tokenizer.encode('aba')).toEqual([2, 0]);
  });

  it('rejects a GGUF model file without an embedded tokenizer', async () => {
    writeGguf(file('no-vocab.gguf'), [{ key: 'general.architecture', type: 'string', value: 'llama' }], []);
    await expectInputError(() => loadTokenizer(file('no-vocab.gguf')), 'no-vocab.gguf', 'no embedded tokenizer');
  });

  it('rejects broken tokenizer.json files', async () => {
    writeFileSync(file('broken.json'), '{ "model": ');
    await expectInputError(() => loadTokenizer(file('broken.json')), 'broken.json', 'not valid JSON');
    writeFileSync(file('not-tokenizer.json'), '{ "hello": 1 }');
    await expectInputError(
      () => loadTokenizer(file('not-tokenizer.json')),
      'not-tokenizer.json',
      'not a Hugging Face tokenizer.json',
    );
  });

  it.skipIf(!haveShared(TOK512))('rejects a llama2.c tokenizer read with the wrong vocabulary size', async () => {
    await expectInputError(
      () => loadTokenizer({ kind: 'llama2c', path: tok512(), vocabSize: 500 }),
      'tok512.bin',
      'trailing bytes',
    );
    await expectInputError(
      () => loadTokenizer({ kind: 'llama2c', path: tok512(), vocabSize: 600 }),
      'tok512.bin',
      'truncated',
    );
  });

  it('rejects vocabularies missing what their algorithm needs', async () => {
    const tokens = ['<unk>', '<s>', '</s>'];
    const tokenTypes = Int32Array.from([TokenType.Unknown, TokenType.Control, TokenType.Control]);
    await expectInputError(
      () =>
        tokenizerFromVocabulary(
          { model: 'gpt2', tokens, tokenTypes, addBos: false, addEos: false, pre: 'gpt-2' },
          { path: 'bpe.gguf' },
        ),
      'bpe.gguf',
      'merges',
    );
  });

  it.skipIf(!haveShared(LLAMA_SPM_VOCAB))('rejects token ids outside the vocabulary', async () => {
    const tokenizer = await loadTokenizer(sharedPath(LLAMA_SPM_VOCAB));
    await expectInputError(() => tokenizer.decode([5, 32000]), 'token id 32000', '32000-token vocabulary');
    await expectInputError(() => tokenizer.tokenPiece(-1), 'token id -1');
  });
});
