/**
 * The tfjs target engine (fireopt's own model core) on the real stories260K model, against the
 * llama-cpp engine on the same weights (the GGUF fireopt converts itself, llama.cpp with an F32 KV
 * cache): identical greedy token ids and matching top-k log-probabilities over real prompts.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { targetSchema } from '../../src/targets/config.js';
import { createTargetEngine } from '../../src/targets/create.js';
import { samplingOptions, type PositionLogprobs, type TargetEngine } from '../../src/targets/engine.js';
import { LlamaCppEngine } from '../../src/targets/llama-cpp/engine.js';
import { TfjsEngine } from '../../src/targets/tfjs/engine.js';
import { tfjsTargetTokenizer } from '../../src/targets/tfjs/tokenizer.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import type { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { haveShared, sharedPath, STORIES260K, stories260K, TOK512, tok512 } from '../helpers/shared.js';
import { BOS, GREEDY_STORY_PREFIX, writeStoriesGguf, type StoriesGguf } from './stories-gguf.js';

let gguf: StoriesGguf;
let llamaCpp: LlamaCppEngine;
let tfjs: TfjsEngine;
let tokenizer: Tokenizer;

beforeAll(async () => {
  gguf = writeStoriesGguf();
  tokenizer = await loadTokenizer(gguf.path);
  llamaCpp = await LlamaCppEngine.open({
    model: gguf.path,
    contextSize: 512,
    threads: 1,
    sequences: 1,
    batchSize: 512,
    kvCacheType: 'f32',
  });
  tfjs = await TfjsEngine.open({ model: gguf.path, backend: 'wasm' });
});

afterAll(async () => {
  await llamaCpp?.close();
  await tfjs?.close();
  gguf?.remove();
});

/** 20 real prompts: openings of GSM8K questions and Taskmaster-4 coffee-order utterances. */
function realPrompts(): string[] {
  const gsm8k = readFileSync(sharedPath(GSM8K_TEST), 'utf8')
    .trim()
    .split('\n')
    .slice(20, 30)
    .map((line) => (JSON.parse(line) as { question: string }).question.split(/\s+/).slice(0, 16).join(' '));
  const dialogues = JSON.parse(readFileSync(sharedPath(TASKMASTER_02), 'utf8')) as Array<{
    utterances: Array<{ text: string }>;
  }>;
  const utterances = dialogues.slice(0, 10).map((d) =>
    d.utterances
      .slice(0, 2)
      .map((u) => u.text)
      .join(' ')
      .split(/\s+/)
      .slice(0, 16)
      .join(' '),
  );
  return [...gsm8k, ...utterances];
}

/** Largest |Δ log p| over the ids both positions list, and how many ids they share. */
function compareTopK(a: PositionLogprobs, b: PositionLogprobs): { worst: number; shared: number } {
  const other = new Map(b.topIds.map((id, i) => [id, b.topLogprobs[i]]));
  let worst = Math.abs(a.tokenLogprob - b.tokenLogprob);
  let shared = 0;
  a.topIds.forEach((id, i) => {
    const value = other.get(id);
    if (value === undefined) return;
    shared++;
    worst = Math.max(worst, Math.abs(a.topLogprobs[i] - value));
  });
  return { worst, shared };
}

const GSM8K_TEST = 'data/gsm8k/test.jsonl';
const TASKMASTER_02 = 'data/taskmaster4_coffee/data_02.json';
const haveInputs = haveShared(STORIES260K, TOK512, GSM8K_TEST, TASKMASTER_02);

describe.skipIf(!haveInputs)('tfjs engine vs llama-cpp engine on stories260K', () => {
  it('identifies the model by file hash, like llama-cpp', () => {
    expect(tfjs.identity).toEqual({ ...llamaCpp.identity, engine: 'tfjs' });
    expect(tfjs.endOfGenerationIds).toEqual(new Set([tokenizer.eosId]));
  });

  it('greedy: identical token ids and top-8 log-probabilities within 1e-4 on 20 real prompts', async () => {
    const sampling = samplingOptions({ maxTokens: 48, topLogprobs: 8 });
    let worst = 0;
    let positions = 0;
    for (const text of realPrompts()) {
      const prompt = { tokenIds: tokenizer.encode(text) };
      expect(prompt.tokenIds[0]).toBe(BOS);
      const [fromTfjs] = await tfjs.generate(prompt, sampling);
      const [fromLlamaCpp] = await llamaCpp.generate(prompt, sampling);
      expect(fromTfjs.tokenIds).toEqual(fromLlamaCpp.tokenIds);
      expect(fromTfjs.finishReason).toBe(fromLlamaCpp.finishReason);
      expect(fromTfjs.logprobs).toHaveLength(fromTfjs.tokenIds.length);
      fromTfjs.logprobs!.forEach((position, i) => {
        expect(position.topIds[0]).toBe(fromTfjs.tokenIds[i]);
        expect(position.tokenLogprob).toBe(position.topLogprobs[0]);
        const { worst: delta, shared } = compareTopK(position, fromLlamaCpp.logprobs![i]);
        expect(shared).toBeGreaterThanOrEqual(7); // the 8th may swap with a near-tie
        worst = Math.max(worst, delta);
        positions++;
      });
    }
    expect(positions).toBeGreaterThan(600);
    expect(worst).toBeLessThan(1e-4);
  });

  it('tells the known story from BOS', async () => {
    const [completion] = await tfjs.generate({ tokenIds: [BOS] }, samplingOptions({ maxTokens: 40 }));
    expect(tokenizer.decode(completion.tokenIds).startsWith(GREEDY_STORY_PREFIX)).toBe(true);
    expect(completion.logprobs).toBeUndefined();
  });

  it("teacher-forced scores equal the generated log-probabilities and llama-cpp's scores", async () => {
    const prompt = { tokenIds: tokenizer.encode(realPrompts()[3]) };
    const [completion] = await tfjs.generate(prompt, samplingOptions({ maxTokens: 100, topLogprobs: 4 }));
    const scored = await tfjs.score(prompt, completion.tokenIds, { topLogprobs: 4 });
    const reference = await llamaCpp.score(prompt, completion.tokenIds, { topLogprobs: 4 });
    expect(scored).toHaveLength(completion.tokenIds.length);
    scored.forEach((position, i) => {
      expect(position.topIds).toEqual(completion.logprobs![i].topIds);
      // batched (teacher-forced) and one-token evaluation differ only by float32 rounding
      expect(compareTopK(position, completion.logprobs![i]).worst).toBeLessThan(5e-5);
      expect(compareTopK(position, reference[i]).worst).toBeLessThan(1e-4);
    });
    // The whole distribution, normalised.
    const [full] = await tfjs.score(prompt, [completion.tokenIds[0]], { topLogprobs: 512 });
    expect(full.topIds).toHaveLength(512);
    expect(Math.abs(full.topLogprobs.reduce((sum, logprob) => sum + Math.exp(logprob), 0) - 1)).toBeLessThan(1e-5);
  });

  it(
    'samples reproducibly per seed with raw (temperature-1) ' + 'log-probabilities, and top-k 1 equals greedy',
    async () => {
      const prompt = { tokenIds: [BOS, 403] };
      const sampling = samplingOptions({ maxTokens: 32, temperature: 0.9, topP: 0.95, seed: 5, n: 4, topLogprobs: 3 });
      const first = await tfjs.generate(prompt, sampling);
      expect(await tfjs.generate(prompt, sampling)).toEqual(first);
      expect(new Set(first.map((c) => c.tokenIds.join(','))).size).toBeGreaterThan(1);
      for (const completion of first) {
        const scored = await llamaCpp.score(prompt, completion.tokenIds, { topLogprobs: 3 });
        completion.logprobs!.forEach((position, i) =>
          expect(Math.abs(position.tokenLogprob - scored[i].tokenLogprob)).toBeLessThan(1e-4),
        );
      }
      const [greedy] = await tfjs.generate(prompt, samplingOptions({ maxTokens: 32 }));
      const [topOne] = await tfjs.generate(
        prompt,
        samplingOptions({ maxTokens: 32, temperature: 0.8, topK: 1, seed: 3 }),
      );
      expect(topOne.tokenIds).toEqual(greedy.tokenIds);
    },
  );

  it('stops at a stop token (included) and at maxTokens, as llama-cpp does', async () => {
    const [greedy] = await tfjs.generate({ tokenIds: [BOS] }, samplingOptions({ maxTokens: 30 }));
    const stopId = greedy.tokenIds[7];
    const sampling = samplingOptions({ maxTokens: 30, stopTokenIds: [stopId] });
    const [stopped] = await tfjs.generate({ tokenIds: [BOS] }, sampling);
    expect(stopped).toEqual({
      tokenIds: greedy.tokenIds.slice(0, greedy.tokenIds.indexOf(stopId) + 1),
      finishReason: 'stop',
    });
    expect((await llamaCpp.generate({ tokenIds: [BOS] }, sampling))[0]).toEqual(stopped);
    const [short] = await tfjs.generate({ tokenIds: [BOS] }, samplingOptions({ maxTokens: 3 }));
    expect(short).toEqual({ tokenIds: greedy.tokenIds.slice(0, 3), finishReason: 'length' });
    // stories260K separates stories with BOS and never writes EOS: the context length ends it.
    const [whole] = await tfjs.generate({ tokenIds: [BOS, 403] }, samplingOptions({ maxTokens: 1000 }));
    expect(whole).toMatchObject({ finishReason: 'length' });
    expect(whole.tokenIds).toHaveLength(510);
  });

  it('serves concurrent requests one at a time with the same results', async () => {
    const prompts = [[BOS], [BOS, 403], [BOS, 403, 385], [BOS]];
    const sampling = samplingOptions({ maxTokens: 20, topLogprobs: 1 });
    const sequential = [];
    for (const tokenIds of prompts) sequential.push(await tfjs.generate({ tokenIds }, sampling));
    const concurrent = await Promise.all(prompts.map((tokenIds) => tfjs.generate({ tokenIds }, sampling)));
    expect(concurrent).toEqual(sequential);
  });

  it('rejects token ids outside the vocabulary and prompts longer than the context', async () => {
    await expect(tfjs.generate({ tokenIds: [BOS, 512] }, samplingOptions({ maxTokens: 2 }))).rejects.toThrow(
      InputError,
    );
    await expect(tfjs.score({ tokenIds: [BOS] }, [-1], { topLogprobs: 0 })).rejects.toThrow(
      /outside the target's 512-token vocabulary/,
    );
    await expect(
      tfjs.generate({ tokenIds: new Array(600).fill(BOS) }, samplingOptions({ maxTokens: 2 })),
    ).rejects.toThrow(/does not fit the model's 512-token context/);
  });
});

describe.skipIf(!haveInputs)('tfjs target from the config', () => {
  let fromLlama2c: TargetEngine;

  afterAll(async () => {
    await fromLlama2c?.close();
  });

  it('runs the llama2.c checkpoint with its tokenizer.bin like the GGUF', async () => {
    const config = targetSchema.parse({ engine: 'tfjs', model: stories260K(), tokenizer: tok512(), backend: 'wasm' });
    fromLlama2c = await createTargetEngine(config);
    expect(fromLlama2c.identity).toMatchObject({ engine: 'tfjs', model: 'stories260K.bin', vocabSize: 512 });
    const prompt = { tokenIds: tokenizer.encode(realPrompts()[12]) };
    const sampling = samplingOptions({ maxTokens: 40, topLogprobs: 2 });
    // Same tokens; log-probabilities equal up to float32 summation order (the GGUF engine's session
    // reuses an earlier prompt's prefix, so it feeds a shorter chunk, and products with ≥ 16 rows
    // run on the native sgemm, shorter ones on XNNPACK).
    const [binRun, ggufRun] = [await fromLlama2c.generate(prompt, sampling), await tfjs.generate(prompt, sampling)];
    expect(binRun.map(({ tokenIds, finishReason }) => ({ tokenIds, finishReason }))).toEqual(
      ggufRun.map(({ tokenIds, finishReason }) => ({ tokenIds, finishReason })),
    );
    binRun[0].logprobs!.forEach((position, i) => {
      expect(position.topIds).toEqual(ggufRun[0].logprobs![i].topIds);
      expect(compareTopK(position, ggufRun[0].logprobs![i]).worst).toBeLessThan(1e-5);
    });
    expect(binRun[0].logprobs).toHaveLength(40);
    // Its tokenizer, found without loading the weights, is the GGUF's.
    if (config.engine !== 'tfjs') throw new Error('unreachable');
    const { tokenizer: fromBin, source } = await tfjsTargetTokenizer(config);
    expect(source).toBe(tok512());
    expect(fromBin.encode(realPrompts()[12])).toEqual(prompt.tokenIds);
  });

  it('rejects keys of other engines and unknown backends', () => {
    expect(targetSchema.safeParse({ engine: 'tfjs', model: 'm.bin', threads: 1 }).success).toBe(false);
    expect(targetSchema.safeParse({ engine: 'tfjs', model: 'm.bin', backend: 'gpu' }).success).toBe(false);
    expect(targetSchema.parse({ engine: 'tfjs', model: 'm.bin' })).toEqual({
      engine: 'tfjs',
      model: 'm.bin',
      backend: 'auto',
    });
  });
});
