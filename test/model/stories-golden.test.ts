/**
 * The tfjs model on a real pretrained checkpoint (stories260K), against an independent port of
 * llama2.c's run.c, on the cpu and wasm backends.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { nativeKernels } from '../../src/backend/native.js';
import { readLlama2cCheckpoint } from '../../src/formats/llama2c.js';
import { readLlama2cTokenizer } from '../../src/formats/llama2c-tokenizer.js';
import { DecodeSession, generate, LlamaModel, nextTokenDistributions } from '../../src/model/index.js';
import type { LlamaWeights } from '../../src/model/weights.js';
import { haveShared, STORIES260K, stories260K, TOK512, tok512 } from '../helpers/shared.js';
import { maxAbs, maxAbsDiff, piecesToText, take } from './helpers.js';
import { ReferenceLlama } from './reference-llama2c.js';

const BOS = 1;
const KNOWN_START = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park';

let weights: LlamaWeights;
let pieces: string[];
/** run.c's greedy continuation of BOS and its logits at every step. */
let referenceTokens: number[];
let referenceLogits: Float32Array[];

beforeAll(() => {
  weights = readLlama2cCheckpoint(stories260K());
  pieces = readLlama2cTokenizer(tok512(), weights.config.vocabSize).tokens;
  const reference = new ReferenceLlama(weights);
  referenceTokens = [];
  referenceLogits = [];
  let token = BOS;
  for (let i = 0; i < 200; i++) {
    const logits = reference.forward(token);
    referenceLogits.push(logits);
    let best = 0;
    for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
    referenceTokens.push(best);
    token = best;
  }
});

describe.skipIf(!haveShared(STORIES260K, TOK512)).each(['cpu', 'wasm'] as const)('stories260K on %s', (backend) => {
  // Decode-vs-full tolerance: on stock cpu both paths reduce in the same order (the difference is
  // 0); wasm's SIMD softmax sums rows of different lengths (t keys vs T masked keys) in different
  // lane groupings, and with the native sgemm the full pass's products (blocked, FMA) sum in
  // another order than one token's matrix-vector products: either moves logits of magnitude ~22
  // by a few float32 ulps (measured 1.5e-5).
  const decodeTolerance = backend === 'cpu' && !nativeKernels().kernels ? 1e-5 : 3e-5;
  let model: LlamaModel;

  beforeAll(async () => {
    await initBackend(backend);
    model = LlamaModel.fromWeights(weights, { trainable: false });
    return () => model.dispose();
  });

  it('greedy decoding from BOS reproduces the known story and run.c for 200 tokens', async () => {
    const result = await generate(model, [BOS], { maxNewTokens: 200 });
    expect(result.stopReason).toBe('max-new-tokens');
    expect(piecesToText(pieces, result.tokens).trimStart().startsWith(KNOWN_START)).toBe(true);
    expect(result.tokens).toEqual(referenceTokens);
  });

  it('KV-cache logits match run.c and the full forward pass at every position', async () => {
    const sequence = [BOS, ...referenceTokens.slice(0, 199)];
    const V = weights.config.vocabSize;
    const full = take(model.forward(tf.tensor2d(sequence, [1, sequence.length], 'int32')));
    const session = new DecodeSession(model);
    let decodeVsFull = 0;
    let decodeVsReference = 0;
    try {
      for (const [position, token] of sequence.entries()) {
        const logits = await session.feed([token]);
        decodeVsFull = Math.max(decodeVsFull, maxAbsDiff(logits, full.subarray(position * V, (position + 1) * V)));
        decodeVsReference = Math.max(decodeVsReference, maxAbsDiff(logits, referenceLogits[position]));
      }
      expect(session.length).toBe(sequence.length);
    } finally {
      session.dispose();
    }
    expect(maxAbs(full)).toBeGreaterThan(10); // real logits, not a degenerate model
    expect(decodeVsFull).toBeLessThanOrEqual(decodeTolerance);
    expect(decodeVsReference).toBeLessThan(1e-4);
  });

  it('feeding chunks and truncating the cache give the same logits as the full pass', async () => {
    const sequence = [BOS, ...referenceTokens.slice(0, 99)];
    const V = weights.config.vocabSize;
    const full = take(model.forward(tf.tensor2d(sequence, [1, sequence.length], 'int32')));
    const session = new DecodeSession(model);
    try {
      const first = await session.feed(sequence.slice(0, 40));
      await session.feed([7, 8, 9, 10]); // a rejected draft
      session.truncate(40);
      const second = await session.feed(sequence.slice(40));
      expect(maxAbsDiff(first, full.subarray(0, 40 * V))).toBeLessThanOrEqual(decodeTolerance);
      expect(maxAbsDiff(second, full.subarray(40 * V))).toBeLessThanOrEqual(decodeTolerance);
    } finally {
      session.dispose();
    }
  });

  it('teacher-forced distributions are normalised and agree with run.c', async () => {
    const sequence = [BOS, ...referenceTokens.slice(0, 63)];
    const V = weights.config.vocabSize;
    const logProbs = await nextTokenDistributions(model, sequence, 'logprobs');
    const probs = await nextTokenDistributions(model, sequence, 'probs');
    expect(logProbs.length).toBe(sequence.length * V);
    let worst = 0;
    for (let t = 0; t < sequence.length; t++) {
      const row = probs.subarray(t * V, (t + 1) * V);
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      // Reference probabilities from run.c's logits, in float64.
      const logits = referenceLogits[t];
      const max = Math.max(...logits);
      const exps = Array.from(logits, (l) => Math.exp(l - max));
      const sum = exps.reduce((a, b) => a + b, 0);
      for (let i = 0; i < V; i++) {
        worst = Math.max(worst, Math.abs(row[i] - exps[i] / sum));
        expect(Math.abs(Math.exp(logProbs[t * V + i]) - row[i])).toBeLessThan(1e-6);
      }
    }
    expect(worst).toBeLessThan(1e-5);
  });

  it('sampling is reproducible with a seed, and top-k 1 is greedy', async () => {
    const options = { maxNewTokens: 40, temperature: 1, topK: 40, topP: 0.9 };
    const a = await generate(model, [BOS], { ...options, seed: 42 });
    const b = await generate(model, [BOS], { ...options, seed: 42 });
    const c = await generate(model, [BOS], { ...options, seed: 7 });
    expect(a.tokens).toEqual(b.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
    const topOne = await generate(model, [BOS], { maxNewTokens: 40, temperature: 0.8, topK: 1, seed: 3 });
    expect(topOne.tokens).toEqual(referenceTokens.slice(0, 40));
  });

  it('stops at a stop id and includes it', async () => {
    const period = referenceTokens.findIndex((id) => pieces[id] === '.');
    expect(period).toBeGreaterThan(0);
    const result = await generate(model, [BOS], { maxNewTokens: 200, stopIds: [referenceTokens[period]] });
    expect(result.stopReason).toBe('stop-id');
    expect(result.tokens).toEqual(referenceTokens.slice(0, period + 1));
  });

  it('keeps the tensor count flat across many decode steps', async () => {
    await generate(model, [BOS], { maxNewTokens: 5 }); // warm-up
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++)
      await generate(model, [BOS, 400, 260], { maxNewTokens: 60, temperature: 0.9, topP: 0.95, seed: i });
    const session = new DecodeSession(model);
    await session.feed([BOS, 5, 6]);
    session.truncate(1);
    await session.feed([9]);
    session.dispose();
    await nextTokenDistributions(model, [BOS, 5, 6]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
