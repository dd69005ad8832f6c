/**
 * Qwen2 and Qwen3 in the model core against llama.cpp: small random-weight models of each
 * architecture (random q/k/v biases, random q/k norm gains, Qwen3's explicit head size), written by
 * fireopt as GGUF (`qwen2` / `qwen3`), run by llama.cpp (node-llama-cpp) and by the tfjs model read
 * back from that file: the same logits at every position (≤ 1e-4 of the largest) and the same 40
 * greedy tokens. The files and their Hugging Face twins also round-trip exactly.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Llama } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { writeDraftCheckpoint } from '../../src/formats/draft-checkpoint.js';
import { readGguf } from '../../src/formats/gguf.js';
import { readLlamaGguf, writeLlamaGguf } from '../../src/formats/gguf-llama.js';
import { tensorsByKey } from '../../src/formats/llama-tensors.js';
import { readLlama2cTokenizer } from '../../src/formats/llama2c-tokenizer.js';
import { readHfLlama, writeHfLlama } from '../../src/formats/safetensors.js';
import { samplingOptions } from '../../src/targets/engine.js';
import { LlamaCppEngine } from '../../src/targets/llama-cpp/engine.js';
import { TfjsEngine } from '../../src/targets/tfjs/engine.js';
import { generate, LlamaModel } from '../../src/model/index.js';
import { runBin, runCli } from '../helpers/cli.js';
import { EXACT_CONTEXT, engineGreedy, logitGap } from '../helpers/llama-cpp-logits.js';
import { haveShared, TOK512, tok512 } from '../helpers/shared.js';
import { qwenCases, qwenWeights } from './qwen-fixtures.js';

const cases = qwenCases(512, 128);

describe.skipIf(!haveShared(TOK512))('Qwen2 / Qwen3: fireopt and llama.cpp on the same GGUF', () => {
  let work: string;
  let llama: Llama;

  beforeAll(async () => {
    await initBackend('wasm');
    work = mkdtempSync(join(tmpdir(), 'fireopt-qwen-'));
    const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
    llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  });
  afterAll(async () => {
    await llama?.dispose();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it.each(cases)(
    '$name: logits within 1e-4 of the largest at every position, and the same greedy tokens',
    async ({ name, config }) => {
      const vocabulary = readLlama2cTokenizer(tok512(), config.vocabSize);
      const path = join(work, `${name}.gguf`);
      writeLlamaGguf(path, qwenWeights(config, 3), vocabulary, { name: `random-${name}` });
      const model = LlamaModel.fromWeights(readLlamaGguf(path).weights, { trainable: false });
      const engineModel = await llama.loadModel({ modelPath: path });
      const context = await engineModel.createContext({ ...EXACT_CONTEXT, contextSize: 128 });
      try {
        const ids = Array.from({ length: 24 }, (_, i) => (i === 0 ? 1 : (i * 131 + 7) % config.vocabSize));
        const { largest, worst } = await logitGap(context, model, ids);
        expect(largest).toBeGreaterThan(0.5);
        expect(worst / largest).toBeLessThan(1e-4);

        const prompt = [1, 300, 17, 42];
        const greedy = { maxNewTokens: 40, temperature: 0, topK: 0, topP: 1, seed: 0, stopIds: [] };
        const fireoptTokens = (await generate(model, prompt, greedy)).tokens;
        expect(new Set(fireoptTokens).size).toBeGreaterThan(3); // not a degenerate repetition
        expect(await engineGreedy(context, prompt, 40)).toEqual(fireoptTokens);
      } finally {
        await context.dispose();
        await engineModel.dispose();
        model.dispose();
      }
    },
    120_000,
  );

  it.each(cases)('$name: GGUF and Hugging Face files round-trip every tensor exactly', ({ name, config }) => {
    const vocabulary = readLlama2cTokenizer(tok512(), config.vocabSize);
    const weights = qwenWeights(config, 5);
    const gguf = join(work, `${name}-trip.gguf`);
    writeLlamaGguf(gguf, weights, vocabulary);
    const metadata = readGguf(gguf).metadata;
    expect(metadata.get('general.architecture')).toBe(name);
    expect(metadata.get(`${name}.rope.freq_base`)).toBe(1_000_000);
    const fromGguf = readLlamaGguf(gguf).weights;

    const hf = join(work, `${name}-hf`);
    writeHfLlama(hf, weights);
    const json = JSON.parse(readFileSync(join(hf, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(json.model_type).toBe(name);
    expect(json.architectures).toEqual([name === 'qwen2' ? 'Qwen2ForCausalLM' : 'Qwen3ForCausalLM']);
    expect(json.head_dim).toBe(name === 'qwen3' ? 32 : 16);
    const fromHf = readHfLlama(hf).weights;

    const model = LlamaModel.fromWeights(weights, { trainable: false });
    const fromModel = model.toWeights();
    model.dispose();
    for (const copy of [fromGguf, fromHf, fromModel]) {
      expect(copy.config).toEqual(config);
      const tensors = tensorsByKey(copy);
      expect([...tensors.keys()]).toEqual([...tensorsByKey(weights).keys()]);
      for (const [key, tensor] of tensorsByKey(weights)) expect(tensors.get(key)?.data, key).toEqual(tensor.data);
    }
    if (name === 'qwen2') expect(tensorsByKey(weights).has('layers.0.bq')).toBe(true);
    if (name === 'qwen3') expect(tensorsByKey(weights).has('layers.1.kNorm')).toBe(true);
  });

  it(
    'fireopt convert (spawned CLI) turns a qwen3 GGUF into a ' +
      'Qwen3ForCausalLM folder and back, tensors bit-identical',
    () => {
      const { config } = cases[1];
      const vocabulary = readLlama2cTokenizer(tok512(), config.vocabSize);
      const weights = qwenWeights(config, 7);
      const gguf = join(work, 'convert.gguf');
      writeLlamaGguf(gguf, weights, vocabulary);
      const toHf = runBin(['convert', gguf, '--to', 'hf', '--out', join(work, 'convert-hf')]);
      expect(toHf, toHf.stderr).toMatchObject({ code: 0 });
      const json = JSON.parse(readFileSync(join(work, 'convert-hf', 'config.json'), 'utf8')) as Record<string, unknown>;
      expect(json).toMatchObject({ model_type: 'qwen3', architectures: ['Qwen3ForCausalLM'], head_dim: 32 });
      const back = runBin(['convert', join(work, 'convert-hf'), '--to', 'gguf', '--out', join(work, 'back.gguf')]);
      expect(back, back.stderr).toMatchObject({ code: 0 });
      const again = readLlamaGguf(join(work, 'back.gguf')).weights;
      expect(again.config).toEqual(config);
      for (const [key, tensor] of tensorsByKey(weights))
        expect(tensorsByKey(again).get(key)?.data, key).toEqual(tensor.data);
    },
  );

  it.each(cases)(
    "$name: the tfjs target engine generates the llama-cpp target engine's greedy tokens",
    async ({ name, config }) => {
      const vocabulary = readLlama2cTokenizer(tok512(), config.vocabSize);
      const path = join(work, `${name}-engine.gguf`);
      writeLlamaGguf(path, qwenWeights(config, 11), vocabulary);
      const tfjs = await TfjsEngine.open({ model: path, backend: 'wasm' });
      const llamaCpp = await LlamaCppEngine.open({
        model: path,
        contextSize: 128,
        threads: 1,
        sequences: 1,
        batchSize: 128,
        kvCacheType: 'f32',
      });
      try {
        const sampling = samplingOptions({ maxTokens: 30, topLogprobs: 4 });
        const prompt = { tokenIds: [1, 400, 23, 99, 7] };
        const [fromTfjs] = await tfjs.generate(prompt, sampling);
        const [fromLlamaCpp] = await llamaCpp.generate(prompt, sampling);
        expect(fromTfjs.tokenIds.length).toBeGreaterThan(5);
        expect(fromTfjs.tokenIds).toEqual(fromLlamaCpp.tokenIds);
        expect(fromTfjs.logprobs).toHaveLength(fromTfjs.tokenIds.length);
        fromTfjs.logprobs?.forEach((position, i) =>
          expect(position.tokenLogprob).toBeCloseTo(fromLlamaCpp.logprobs?.[i]?.tokenLogprob ?? Number.NaN, 4),
        );
      } finally {
        await tfjs.close();
        await llamaCpp.close();
      }
    },
    120_000,
  );

  it.each(cases)(
    'fireopt export of a $name draft: GGUF and HF folder of that ' +
      'architecture; llama.cpp greedy-decodes the GGUF as the draft',
    async ({ name, config }) => {
      const vocabulary = readLlama2cTokenizer(tok512(), config.vocabSize);
      const weights = qwenWeights(config, 13);
      const draft = join(work, `${name}-draft`);
      writeDraftCheckpoint(
        draft,
        { weights, vocabulary, target: {}, training: { made_by: 'test: random weights' } },
        {},
      );
      const out = join(work, `${name}-export`);
      const result = await runCli([
        '--json',
        '--quiet',
        'export',
        '--model',
        draft,
        '--out',
        out,
        '--set',
        'export.reference_prompts=0',
      ]);
      expect(result.code, result.stderr).toBe(0);
      const summary = JSON.parse(result.stdout) as { gguf: string; hf: string };
      expect(readGguf(summary.gguf).metadata.get('general.architecture')).toBe(name);
      const json = JSON.parse(readFileSync(join(summary.hf, 'config.json'), 'utf8')) as Record<string, unknown>;
      expect(json.model_type).toBe(name);
      const engineModel = await llama.loadModel({ modelPath: summary.gguf });
      const context = await engineModel.createContext({ ...EXACT_CONTEXT, contextSize: 128 });
      const model = LlamaModel.fromWeights(weights, { trainable: false });
      try {
        const prompt = [1, 250, 9];
        const greedy = { maxNewTokens: 20, temperature: 0, topK: 0, topP: 1, seed: 0, stopIds: [] };
        expect(await engineGreedy(context, prompt, 20)).toEqual((await generate(model, prompt, greedy)).tokens);
      } finally {
        await context.dispose();
        await engineModel.dispose();
        model.dispose();
      }
    },
    120_000,
  );
});
