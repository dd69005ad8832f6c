/**
 * The cost-realistic target: stories260K padded with output-neutral compute (a wider feed-forward,
 * extra blocks with zero output projections) computes stories260K's function. A small padding here
 * (the benchmark checks the full one): logits in fireopt's model within 1e-4, greedy tokens and
 * next-token distributions in llama.cpp equal within 1e-4, on real ShareGPT openings.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { writeLlamaGguf } from '../../src/formats/gguf-llama.js';
import { readLlama2cCheckpoint } from '../../src/formats/llama2c.js';
import { readLlama2cTokenizer } from '../../src/formats/llama2c-tokenizer.js';
import { LlamaModel } from '../../src/model/index.js';
import { llamaCppAgreement, padTarget, parameterCount } from '../../src/speculation/padded-target.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { haveShared, SHAREGPT, sharedPath, STORIES260K, stories260K, TOK512, tok512 } from '../helpers/shared.js';

const dir = mkdtempSync(join(tmpdir(), 'fireopt-padded-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!haveShared(STORIES260K, TOK512, SHAREGPT))('padded target', () => {
  const padding = { dim: 128, hiddenDim: 400, extraLayers: 2, seed: 3 };

  it('adds parameters and blocks without changing the logits (fireopt model, within 1e-4)', async () => {
    await initBackend('cpu');
    const weights = readLlama2cCheckpoint(stories260K());
    const padded = padTarget(weights, padding);
    expect(padded.config.nLayers).toBe(weights.config.nLayers + 2);
    expect(padded.config.hiddenDim).toBe(400);
    expect(padded.config.dim).toBe(128);
    expect(padded.config.nHeads).toBe(16);
    expect(padded.config.nKvHeads).toBe(8);
    expect(parameterCount(padded)).toBeGreaterThan(3 * parameterCount(weights));
    // The input is untouched.
    expect(weights.layers[0].w1.shape).toEqual([weights.config.hiddenDim, weights.config.dim]);
    const tokens = [1, 403, 407, 261, 378, 395, 260, 32, 440, 308, 259, 382, 45, 407, 371, 304];
    const logits = (model: LlamaModel): Float32Array =>
      tf.tidy(() => model.forward(tf.tensor2d(tokens, [1, tokens.length], 'int32'))).dataSync() as Float32Array;
    const reference = LlamaModel.fromWeights(weights, { trainable: false });
    const wide = LlamaModel.fromWeights(padded, { trainable: false });
    try {
      const a = logits(reference);
      const b = logits(wide);
      expect(b.length).toBe(a.length);
      let maxDiff = 0;
      for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
      expect(maxDiff).toBeLessThan(1e-4);
    } finally {
      reference.dispose();
      wide.dispose();
    }
  });

  it('decodes the same greedy tokens in llama.cpp, distributions within 1e-4', async () => {
    const weights = readLlama2cCheckpoint(stories260K());
    const vocabulary = readLlama2cTokenizer(tok512(), weights.config.vocabSize);
    const referenceGguf = join(dir, 'stories260K.gguf');
    const paddedGguf = join(dir, 'padded.gguf');
    writeLlamaGguf(referenceGguf, weights, vocabulary, { name: 'stories260K' });
    writeLlamaGguf(paddedGguf, padTarget(weights, padding), vocabulary, { name: 'stories260K-padded' });
    const tokenizer = await loadTokenizer(referenceGguf);
    const sharegpt = JSON.parse(readFileSync(sharedPath(SHAREGPT), 'utf8')) as Array<{
      conversations: Array<{ value: string }>;
    }>;
    const prompts = sharegpt
      .slice(0, 4)
      .map((c) => tokenizer.encode(c.conversations[0].value.split(/\s+/).slice(0, 6).join(' '), { addBos: true }));
    const agreement = await llamaCppAgreement(referenceGguf, paddedGguf, prompts, { maxTokens: 32 });
    expect(agreement.equalPrompts).toBe(4);
    expect(agreement.positions).toBe(4 * 32);
    expect(agreement.maxProbabilityDiff).toBeLessThan(1e-4);
  });

  it('refuses a narrower feed-forward and a width that breaks the head grouping', () => {
    const weights = readLlama2cCheckpoint(stories260K());
    expect(() => padTarget(weights, { hiddenDim: 100, extraLayers: 0 })).toThrow(/hiddenDim 100 must be/);
    expect(() => padTarget(weights, { dim: 72, hiddenDim: 172, extraLayers: 0 })).toThrow(/multiple of 16/);
  });
});
