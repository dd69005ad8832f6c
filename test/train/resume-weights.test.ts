/**
 * `train --resume` rebuilds the draft from the saved state's variables (weightsFromState). Every
 * tensor must come back: a Qwen2 draft's attention biases and a Qwen3 draft's q/k norms were dropped
 * (the rebuild started from a Llama-only set of tensors), so a resumed Qwen draft silently lost them.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { LlamaModel } from '../../src/model/index.js';
import { weightsFromState } from '../../src/train/loop.js';
import { qwenCases, qwenWeights } from '../model/qwen-fixtures.js';

beforeAll(async () => {
  await initBackend('cpu');
});

describe('weightsFromState', () => {
  for (const { name, config } of qwenCases(80, 32))
    it(`gives back every tensor of a ${name} draft, biases and q/k norms included`, async () => {
      const weights = qwenWeights(config, 5);
      const model = LlamaModel.fromWeights(weights, { trainable: false });
      try {
        const state = new Map<string, Float32Array>();
        for (const [variable, value] of model.namedVariables()) state.set(variable, await value.data<'float32'>());
        const restored = await weightsFromState(config, state);
        expect(restored).toEqual(weights);
        const extras = name === 'qwen2' ? ['bq', 'bk', 'bv'] : ['qNorm', 'kNorm'];
        for (const layer of restored.layers) for (const extra of extras) expect(layer).toHaveProperty(extra);
      } finally {
        model.dispose();
      }
    });
});
