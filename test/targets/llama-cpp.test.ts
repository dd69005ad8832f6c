/** The llama-cpp target engine on the real stories260K model (GGUF written by fireopt). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { samplingOptions, type PositionLogprobs } from '../../src/targets/engine.js';
import { LlamaCppEngine } from '../../src/targets/llama-cpp/engine.js';
import { haveShared, STORIES260K, TOK512 } from '../helpers/shared.js';
import { BOS, GREEDY_STORY_PREFIX, writeStoriesGguf, type StoriesGguf } from './stories-gguf.js';

let gguf: StoriesGguf;
let engine: LlamaCppEngine;

beforeAll(async () => {
  gguf = writeStoriesGguf();
  engine = await LlamaCppEngine.open({ model: gguf.path, contextSize: 256, threads: 1, sequences: 2, batchSize: 256 });
});

afterAll(async () => {
  await engine?.close();
  gguf?.remove();
});

function expectSortedLogprobs(position: PositionLogprobs, k: number): void {
  expect(position.topIds).toHaveLength(k);
  expect(new Set(position.topIds).size).toBe(k);
  for (let i = 0; i < k; i++) {
    expect(position.topLogprobs[i]).toBeLessThanOrEqual(0);
    if (i > 0) expect(position.topLogprobs[i]).toBeLessThanOrEqual(position.topLogprobs[i - 1]);
  }
  const mass = position.topLogprobs.reduce((sum, logprob) => sum + Math.exp(logprob), 0);
  expect(mass).toBeLessThanOrEqual(1 + 1e-5);
}

describe.skipIf(!haveShared(STORIES260K, TOK512))('llama-cpp engine', () => {
  it('identifies the model by file hash and vocabulary', () => {
    expect(engine.identity.engine).toBe('llama-cpp');
    expect(engine.identity.model).toBe('stories260K.gguf');
    expect(engine.identity.modelSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(engine.identity.vocabSize).toBe(512);
  });

  it('greedy generation from BOS tells the known story, with top-k log-probabilities per position', async () => {
    const [completion] = await engine.generate({ tokenIds: [BOS] }, samplingOptions({ maxTokens: 48, topLogprobs: 5 }));
    expect(completion.finishReason).toBe('length');
    expect(completion.tokenIds).toHaveLength(48);
    expect(engine.detokenize(completion.tokenIds).startsWith(GREEDY_STORY_PREFIX)).toBe(true);
    expect(completion.logprobs).toHaveLength(48);
    completion.logprobs!.forEach((position, i) => {
      expectSortedLogprobs(position, 5);
      expect(position.topIds[0]).toBe(completion.tokenIds[i]); // greedy picks the most likely token
      expect(position.tokenLogprob).toBe(position.topLogprobs[0]);
    });
  });

  it('scores a generated completion by teacher forcing with the same top-1 ids and log-probabilities', async () => {
    const [completion] = await engine.generate({ tokenIds: [BOS] }, samplingOptions({ maxTokens: 40, topLogprobs: 3 }));
    const scored = await engine.score({ tokenIds: [BOS] }, completion.tokenIds, { topLogprobs: 3 });
    expect(scored).toHaveLength(40);
    scored.forEach((position, i) => {
      expectSortedLogprobs(position, 3);
      expect(position.topIds[0]).toBe(completion.tokenIds[i]);
      // batched (teacher-forced) and one-by-one evaluation differ only by float rounding
      expect(Math.abs(position.tokenLogprob - completion.logprobs![i].tokenLogprob)).toBeLessThan(1e-2);
    });
  });

  it('reports the whole distribution normalised when asked for every token', async () => {
    const [position] = await engine.score({ tokenIds: [BOS] }, [403], { topLogprobs: 512 });
    expectSortedLogprobs(position, 512);
    const mass = position.topLogprobs.reduce((sum, logprob) => sum + Math.exp(logprob), 0);
    expect(Math.abs(mass - 1)).toBeLessThan(1e-4);
  });

  it('samples reproducibly per seed, differently across the n samples, and equals greedy when top-k is 1', async () => {
    const prompt = { tokenIds: [BOS, 403] };
    const sampling = samplingOptions({ maxTokens: 24, temperature: 1, topP: 1, seed: 11, n: 4, topLogprobs: 2 });
    const first = await engine.generate(prompt, sampling);
    const again = await engine.generate(prompt, sampling);
    expect(again).toEqual(first);
    expect(first).toHaveLength(4);
    expect(new Set(first.map((c) => c.tokenIds.join(','))).size).toBeGreaterThan(1);
    for (const completion of first) {
      expect(completion.logprobs).toHaveLength(completion.tokenIds.length);
      completion.logprobs!.forEach((position) => expectSortedLogprobs(position, 2));
    }
    const [greedy] = await engine.generate(prompt, samplingOptions({ maxTokens: 24 }));
    const [topOne] = await engine.generate(
      prompt,
      samplingOptions({ maxTokens: 24, temperature: 0.8, topK: 1, seed: 3 }),
    );
    expect(topOne.tokenIds).toEqual(greedy.tokenIds);
  });

  it('stops at a stop token (included) and at maxTokens', async () => {
    const [greedy] = await engine.generate({ tokenIds: [BOS] }, samplingOptions({ maxTokens: 30 }));
    const stopId = greedy.tokenIds[5];
    const [stopped] = await engine.generate(
      { tokenIds: [BOS] },
      samplingOptions({ maxTokens: 30, stopTokenIds: [stopId] }),
    );
    const firstStop = greedy.tokenIds.indexOf(stopId);
    expect(stopped.finishReason).toBe('stop');
    expect(stopped.tokenIds).toEqual(greedy.tokenIds.slice(0, firstStop + 1));
    const [short] = await engine.generate({ tokenIds: [BOS] }, samplingOptions({ maxTokens: 3 }));
    expect(short).toEqual({ tokenIds: greedy.tokenIds.slice(0, 3), finishReason: 'length' });
  });

  it('serves concurrent requests on separate sequences with the same results as one at a time', async () => {
    const prompts = [[BOS], [BOS, 403], [BOS, 403, 385], [BOS]];
    const sampling = samplingOptions({ maxTokens: 20, topLogprobs: 1 });
    const sequential = [];
    for (const tokenIds of prompts) sequential.push(await engine.generate({ tokenIds }, sampling));
    const concurrent = await Promise.all(prompts.map((tokenIds) => engine.generate({ tokenIds }, sampling)));
    expect(concurrent.map((c) => c[0].tokenIds)).toEqual(sequential.map((c) => c[0].tokenIds));
  });

  it('rejects token ids outside the vocabulary and prompts longer than the context', async () => {
    await expect(engine.generate({ tokenIds: [BOS, 512] }, samplingOptions({ maxTokens: 2 }))).rejects.toThrow(
      InputError,
    );
    await expect(engine.score({ tokenIds: [BOS] }, [-1], { topLogprobs: 0 })).rejects.toThrow(
      /outside the target's 512-token vocabulary/,
    );
    await expect(
      engine.generate({ tokenIds: new Array(300).fill(BOS) }, samplingOptions({ maxTokens: 2 })),
    ).rejects.toThrow(/does not fit the 256-token context/);
  });
});
