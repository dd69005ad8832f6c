/**
 * The model core against a real engine: stories260K, written by fireopt's own GGUF writer, run by
 * llama.cpp (node-llama-cpp) and by the tfjs model on the wasm backend — the same next-token
 * distributions at every position of 20 real prompts, and identical greedy tokens after a round
 * trip llama2.c → safetensors → tfjs → GGUF → llama.cpp.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Llama, LlamaContext, LlamaModel as EngineModel, Token } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { writeLlamaGguf } from '../../src/formats/gguf-llama.js';
import { readLlama2cCheckpoint } from '../../src/formats/llama2c.js';
import { readLlama2cTokenizer } from '../../src/formats/llama2c-tokenizer.js';
import { readHfLlama, writeHfLlama } from '../../src/formats/safetensors.js';
import { generate, LlamaModel, nextTokenDistributions } from '../../src/model/index.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { haveShared, sharedPath, STORIES260K, stories260K, TOK512, tok512 } from '../helpers/shared.js';

const GSM8K_TEST = 'data/gsm8k/test.jsonl';
const TASKMASTER_01 = 'data/taskmaster4_coffee/data_01.json';

let work: string;
let llama: Llama;
let engineModel: EngineModel;
let context: LlamaContext;
let model: LlamaModel;

/** Exactness settings: llama.cpp's defaults (F16 KV cache, flash attention) round to F16. */
const EXACT_CONTEXT = {
  contextSize: 512,
  threads: 1,
  flashAttention: false,
  experimentalKvCacheKeyType: 'F32',
  experimentalKvCacheValueType: 'F32',
} as const;

beforeAll(async () => {
  await initBackend('wasm');
  work = mkdtempSync(join(tmpdir(), 'fireopt-agree-'));
  const weights = readLlama2cCheckpoint(stories260K());
  const vocabulary = readLlama2cTokenizer(tok512(), weights.config.vocabSize);
  // The round trip: llama2.c → safetensors (HF layout) → tfjs → back to weights → GGUF.
  writeHfLlama(join(work, 'hf'), weights, { dtype: 'F32', vocabulary });
  model = LlamaModel.fromWeights(readHfLlama(join(work, 'hf')).weights, { trainable: false });
  writeLlamaGguf(join(work, 'stories.gguf'), model.toWeights(), vocabulary, { name: 'stories260K' });
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  engineModel = await llama.loadModel({ modelPath: join(work, 'stories.gguf') });
  context = await engineModel.createContext(EXACT_CONTEXT);
});

afterAll(async () => {
  await context?.dispose();
  await engineModel?.dispose();
  await llama?.dispose();
  model?.dispose();
  rmSync(work, { recursive: true, force: true });
});

/** 20 real prompts: the openings of GSM8K questions and Taskmaster-4 utterances. */
function realPrompts(): string[] {
  const gsm8k = readFileSync(sharedPath(GSM8K_TEST), 'utf8')
    .trim()
    .split('\n')
    .slice(0, 10)
    .map((line) => (JSON.parse(line) as { question: string }).question.split(/\s+/).slice(0, 24).join(' '));
  const dialogues = JSON.parse(readFileSync(sharedPath(TASKMASTER_01), 'utf8')) as Array<{
    utterances: Array<{ text: string }>;
  }>;
  const utterances = dialogues.slice(0, 10).map((d) =>
    d.utterances
      .slice(0, 3)
      .map((u) => u.text)
      .join(' ')
      .split(/\s+/)
      .slice(0, 24)
      .join(' '),
  );
  return [...gsm8k, ...utterances];
}

describe.skipIf(!haveShared(STORIES260K, TOK512, GSM8K_TEST, TASKMASTER_01))(
  'tfjs model vs llama.cpp on the same weights',
  () => {
    it('gives the same next-token distribution (max |Δp| < 1e-4) at every position of 20 real prompts', async () => {
      const tokenizer = await loadTokenizer(join(work, 'stories.gguf'));
      const sequence = context.getSequence();
      let worst = 0;
      let positions = 0;
      try {
        for (const prompt of realPrompts()) {
          const ids = tokenizer.encode(prompt); // BOS + prompt, as llama.cpp tokenizes it
          expect(ids.length).toBeGreaterThan(10);
          await sequence.clearHistory();
          const outputs = await sequence.controlledEvaluate(
            ids.map((id) => [id as Token, { generateNext: { probabilities: true } }]),
          );
          const tfjsProbs = await nextTokenDistributions(model, ids, 'probs'); // [T × V]
          const V = model.config.vocabSize;
          for (let t = 0; t < ids.length; t++) {
            const probabilities = outputs[t]?.next.probabilities;
            expect(probabilities?.size).toBe(V);
            for (const [token, p] of probabilities!) worst = Math.max(worst, Math.abs(p - tfjsProbs[t * V + token]));
            positions++;
          }
        }
      } finally {
        sequence.dispose();
      }
      expect(positions).toBeGreaterThan(300);
      expect(worst).toBeLessThan(1e-4);
    });

    it('decodes the same 200 greedy tokens from BOS after llama2.c → safetensors → tfjs → GGUF', async () => {
      const tfjsTokens = (
        await generate(model, [1], { maxNewTokens: 200, temperature: 0, topK: 0, topP: 1, seed: 0, stopIds: [] })
      ).tokens;
      const sequence = context.getSequence();
      const engineTokens: number[] = [];
      try {
        for await (const token of sequence.evaluate([1 as Token], { temperature: 0 })) {
          engineTokens.push(token);
          if (engineTokens.length === 200) break;
        }
      } finally {
        sequence.dispose();
      }
      expect(engineTokens).toEqual(tfjsTokens);
      expect(engineModel.detokenize(engineTokens as Token[])).toMatch(
        /^Once upon a time, there was a little girl named Lily\. She loved to play outside in the park/,
      );
    });
  },
);
