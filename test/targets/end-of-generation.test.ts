/**
 * End of generation on a real model whose greedy output ends before max_tokens: stories260K ends
 * each story with its end token (BOS, named EOS in this GGUF: see writeStoriesGguf). llama.cpp
 * itself, the llama-cpp engine, the tfjs engine and the openai engine through `fireopt serve` must
 * end at the same token, keep it as the completion's last token and say `stop`.
 */
import type { Token } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vocabularyFromGguf } from '../../src/formats/gguf-vocabulary.js';
import { serveModel, type ServingModel } from '../../src/serve/open.js';
import { openAiTargetSchema } from '../../src/targets/config.js';
import { samplingOptions, type Completion } from '../../src/targets/engine.js';
import { LlamaCppEngine } from '../../src/targets/llama-cpp/engine.js';
import { OpenAiEngine } from '../../src/targets/openai/engine.js';
import { TfjsEngine } from '../../src/targets/tfjs/engine.js';
import { endOfGenerationIds } from '../../src/tokenizer/end-of-generation.js';
import { haveShared, sharedPath, STORIES260K, TOK512 } from '../helpers/shared.js';
import { loadReferenceVocab } from '../tokenizer/llama-cpp-reference.js';
import { BOS, writeStoriesGguf, type StoriesGguf } from './stories-gguf.js';

/** The story stories260K tells from BOS ends with its end token at completion position 345. */
const STORY_END = 345;
/** Prompts: BOS and the story's first n tokens, so the model ends it 16–46 tokens later. */
const PREFIX_LENGTHS = [300, 320, 330];
const MAX_TOKENS = 64;

describe.skipIf(!haveShared(STORIES260K, TOK512))('end of generation on stories260K', () => {
  let gguf: StoriesGguf;
  let llamaCpp: LlamaCppEngine;
  let tfjs: TfjsEngine;
  let serving: ServingModel;
  let openAi: OpenAiEngine;
  let story: number[];
  let prompts: number[][];

  beforeAll(async () => {
    gguf = writeStoriesGguf({ endsWithBos: true });
    const local = {
      model: gguf.path,
      contextSize: 512,
      threads: 1,
      sequences: 1,
      batchSize: 512,
      kvCacheType: 'f32',
    } as const;
    llamaCpp = await LlamaCppEngine.open(local);
    tfjs = await TfjsEngine.open({ model: gguf.path, backend: 'wasm' });
    serving = await serveModel({ ...local, host: '127.0.0.1', port: 0 });
    const config = { engine: 'openai', base_url: `${serving.url}/v1`, model: 'stories260K', max_retries: 0 };
    openAi = new OpenAiEngine(openAiTargetSchema.parse(config));
    story = await llamaCppReference([BOS], 500);
    prompts = PREFIX_LENGTHS.map((n) => [BOS, ...story.slice(0, n)]);
  });

  afterAll(async () => {
    await openAi?.close();
    await serving?.close();
    await llamaCpp?.close();
    await tfjs?.close();
    gguf?.remove();
  });

  /** Greedy decoding with node-llama-cpp's own loop, up to and including the first EOG token. */
  async function llamaCppReference(promptIds: number[], maxTokens: number): Promise<number[]> {
    const context = await llamaCpp.model.createContext({
      contextSize: 512,
      threads: 1,
      flashAttention: false,
      experimentalKvCacheKeyType: 'F32',
      experimentalKvCacheValueType: 'F32',
    });
    try {
      const tokens: number[] = [];
      const steps = context.getSequence().evaluate(promptIds as Token[], { temperature: 0, yieldEogToken: true });
      for await (const token of steps) {
        tokens.push(token);
        if (llamaCpp.model.isEogToken(token) || tokens.length >= maxTokens) break;
      }
      return tokens;
    } finally {
      await context.dispose();
    }
  }

  function expectEndsWithEog(completion: Completion, reference: number[]): void {
    expect(completion.tokenIds).toEqual(reference);
    expect(completion.tokenIds.at(-1)).toBe(BOS);
    expect(completion.finishReason).toBe('stop');
    expect(completion.tokenIds.slice(0, -1)).not.toContain(BOS); // nothing after the end is kept
  }

  it("the story from BOS ends with the model's end token", () => {
    expect(story).toHaveLength(STORY_END + 1);
    expect(story.at(-1)).toBe(BOS);
  });

  it('llama-cpp, tfjs and openai-through-serve keep the end token, token for token with llama.cpp', async () => {
    const sampling = samplingOptions({ maxTokens: MAX_TOKENS, topLogprobs: 2 });
    for (const prompt of prompts) {
      const reference = await llamaCppReference(prompt, MAX_TOKENS);
      const [viaLlamaCpp] = await llamaCpp.generate({ tokenIds: prompt }, sampling);
      const [viaTfjs] = await tfjs.generate({ tokenIds: prompt }, sampling);
      const [viaServe] = await openAi.generate({ tokenIds: prompt }, sampling);
      for (const completion of [viaLlamaCpp, viaTfjs, viaServe]) {
        expectEndsWithEog(completion, reference);
        // the end token's position carries the target's log-probabilities like any other
        expect(completion.logprobs).toHaveLength(reference.length);
        expect(completion.logprobs!.at(-1)!.topIds[0]).toBe(BOS);
      }
      expect(reference.length).toBe(STORY_END + 1 - (prompt.length - 1));
    }
  });

  it('a completion cut by max_tokens before the end says length and holds no end token', async () => {
    const sampling = samplingOptions({ maxTokens: 8 });
    for (const engine of [llamaCpp, tfjs, openAi]) {
      const [completion] = await engine.generate({ tokenIds: prompts[0] }, sampling);
      expect(completion.tokenIds).toEqual(story.slice(PREFIX_LENGTHS[0], PREFIX_LENGTHS[0] + 8));
      expect(completion.finishReason).toBe('length');
    }
  });

  it('sampled completions that stop end with the end token (llama-cpp and tfjs)', async () => {
    const sampling = samplingOptions({ maxTokens: 40, temperature: 1, n: 4, seed: 7 });
    for (const engine of [llamaCpp, tfjs]) {
      const completions = await engine.generate({ tokenIds: prompts[2] }, sampling);
      for (const completion of completions) {
        expect(completion.tokenIds.slice(0, -1)).not.toContain(BOS);
        if (completion.finishReason === 'stop') expect(completion.tokenIds.at(-1)).toBe(BOS);
        else expect(completion.tokenIds).toHaveLength(40);
      }
      expect(completions.some((c) => c.finishReason === 'stop')).toBe(true);
    }
  });

  it('scoring a completion that ends with the end token gives its log-probability', async () => {
    const reference = await llamaCppReference(prompts[2], MAX_TOKENS);
    const scored = await llamaCpp.score({ tokenIds: prompts[2] }, reference, { topLogprobs: 1 });
    const scoredTfjs = await tfjs.score({ tokenIds: prompts[2] }, reference, { topLogprobs: 1 });
    for (const positions of [scored, scoredTfjs]) {
      expect(positions).toHaveLength(reference.length);
      expect(positions.at(-1)!.topIds[0]).toBe(BOS);
      expect(positions.at(-1)!.tokenLogprob).toBeGreaterThan(Math.log(0.3));
    }
  });
});

const VOCABULARIES = ['llama-spm', 'gpt-2', 'phi-3', 'starcoder', 'refact'];

const vocabularyFile = (name: string): string => `models/vocab/ggml-vocab-${name}.gguf`;

describe.skipIf(!haveShared(...VOCABULARIES.map(vocabularyFile)))('the end-of-generation set', () => {
  it("equals llama.cpp's llama_vocab_is_eog on every token of five real vocabularies", async () => {
    for (const name of VOCABULARIES) {
      const path = sharedPath(vocabularyFile(name));
      const model = await loadReferenceVocab(path);
      const vocabulary = vocabularyFromGguf(path);
      const expected: number[] = [];
      for (let id = 0; id < vocabulary.tokens.length; id++) if (model.isEogToken(id as Token)) expected.push(id);
      await model.dispose();
      expect(
        [...endOfGenerationIds(vocabulary)].sort((a, b) => a - b),
        name,
      ).toEqual(expected);
    }
  });
});
