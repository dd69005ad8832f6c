import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { getLlama, LlamaLogLevel, type Token } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLlamaGguf } from '../../src/formats/gguf-llama.js';
import { readHfLlama } from '../../src/formats/safetensors.js';
import { runBin, runCli } from '../helpers/cli.js';
import { haveShared, repoRoot, STORIES260K, stories260K, TOK512, tok512 } from '../helpers/shared.js';
import { bitDifferences, loadStories260K, roundingError, tempDir } from './fixtures.js';

const temp = tempDir('convert');
afterAll(() => temp.cleanup());
const haveStories = haveShared(STORIES260K, TOK512);
let stories: ReturnType<typeof loadStories260K>;
beforeAll(() => {
  stories = loadStories260K();
});
const out = (name: string) => join(temp.dir, name);

describe.skipIf(!haveStories)('fireopt convert (in-process)', () => {
  it('llama2.c → GGUF with the tokenizer, bit-identical, with a JSON summary', async () => {
    const result = await runCli([
      '--json',
      'convert',
      stories260K(),
      '--to',
      'gguf',
      '--out',
      out('a.gguf'),
      '--tokenizer',
      tok512(),
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      inputKind: 'llama2c',
      format: 'gguf',
      dtype: 'f32',
      parameters: 260_032,
      tokenizer: tok512(),
    });
    const back = readLlamaGguf(out('a.gguf'));
    expect(bitDifferences(stories.weights, back.weights)).toEqual([]);
    expect(back.vocabulary.tokens).toEqual(stories.vocabulary.tokens);
  });

  it(
    'llama2.c → HF (f16) → GGUF → HF, keeping the tokenizer; the GGUF ' + 'decodes the known story in llama.cpp',
    async () => {
      const toHf = await runCli([
        'convert',
        stories260K(),
        '--to',
        'hf',
        '--out',
        out('hf16'),
        '--dtype',
        'f16',
        '--tokenizer',
        tok512(),
      ]);
      expect(toHf).toMatchObject({ code: 0, stderr: '' });
      expect(toHf.stdout).toMatch(/^wrote .*hf16 \(hf, f16\) from llama2c checkpoint .*260,032 parameters/);
      expect(existsSync(join(out('hf16'), 'tokenizer.gguf'))).toBe(true);

      const toGguf = await runCli(['convert', out('hf16'), '--to', 'gguf', '--out', out('from-hf.gguf')]);
      expect(toGguf).toMatchObject({ code: 0, stderr: '' });
      expect(toGguf.stdout).toMatch(/from hf checkpoint .*tokenizer from .*tokenizer\.gguf/);
      const gguf = readLlamaGguf(out('from-hf.gguf'));
      const error = roundingError(stories.weights, gguf.weights, 2 ** -14);
      expect(error.maxRelative).toBeLessThanOrEqual(2 ** -11);

      const backToHf = await runCli(['convert', out('from-hf.gguf'), '--to', 'hf', '--out', out('hf32')]);
      expect(backToHf).toMatchObject({ code: 0, stderr: '' });
      expect(bitDifferences(gguf.weights, readHfLlama(out('hf32')).weights)).toEqual([]);

      const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
      const model = await llama.loadModel({ modelPath: out('from-hf.gguf') });
      const context = await model.createContext({ threads: 1, contextSize: 128 });
      const tokens: Token[] = [];
      const bos = model.tokens.bos;
      expect(bos).toBe(stories.vocabulary.bosId);
      for await (const token of context.getSequence().evaluate(bos === null ? [] : [bos], { temperature: 0 })) {
        tokens.push(token);
        if (tokens.length >= 40) break;
      }
      const known = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park';
      expect(model.detokenize(tokens).slice(0, known.length)).toBe(known);
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    },
  );

  it('usage and input errors exit with code 2 and a message that names the file', async () => {
    const noTokenizer = await runCli(['convert', stories260K(), '--to', 'gguf', '--out', out('x.gguf')]);
    expect(noTokenizer.code).toBe(2);
    expect(noTokenizer.stderr).toMatch(
      /^fireopt: error: .*stories260K\.bin: a GGUF file must embed its tokenizer.*\nHINT: pass --tokenizer/,
    );
    const badFormat = await runCli(['convert', stories260K(), '--to', 'onnx', '--out', out('x')]);
    expect(badFormat.code).toBe(2);
    expect(badFormat.stderr).toMatch(/argument 'onnx' is invalid/);
    const missingTo = await runCli(['convert', stories260K(), '--out', out('x')]);
    expect(missingTo.code).toBe(2);
    expect(missingTo.stderr).toMatch(/required option '--to <format>' not specified/);
    const notAModel = await runCli(['convert', tok512(), '--to', 'hf', '--out', out('x')]);
    expect(notAModel.code).toBe(2);
    expect(notAModel.stderr).toMatch(/^fireopt: error: .*tok512\.bin: not a llama2\.c v0 checkpoint/);
    const underAFile = join(stories260K(), 'out.gguf'); // a folder path inside a file
    const unwritable = await runCli([
      'convert',
      stories260K(),
      '--to',
      'gguf',
      '--tokenizer',
      tok512(),
      '--out',
      underAFile,
    ]);
    expect(unwritable.code).toBe(2);
    expect(unwritable.stderr).toMatch(/out\.gguf: cannot write output \(E(NOTDIR|EXIST)\)/);
    expect(existsSync(out('x'))).toBe(false);
    expect(existsSync(out('x.gguf'))).toBe(false);
  });
});

describe.skipIf(!haveStories)('fireopt convert (spawned bin/fireopt)', () => {
  it('converts with exit code 0, and fails with exit code 2 on a bad input', () => {
    expect(existsSync(join(repoRoot, 'dist/cli/commands/convert.js')), 'run `npm run build` first').toBe(true);
    const ok = runBin([
      'convert',
      stories260K(),
      '--to',
      'gguf',
      '--out',
      out('spawned.gguf'),
      '--tokenizer',
      tok512(),
      '--dtype',
      'f16',
    ]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(readLlamaGguf(out('spawned.gguf')).weights.config).toEqual(stories.weights.config);
    const bad = runBin(['convert', join(temp.dir, 'nothing-here.bin'), '--to', 'gguf', '--out', out('never.gguf')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/nothing-here\.bin: no such checkpoint file or folder/);
  });
});
