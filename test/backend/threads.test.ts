/** The opt-in multi-threaded wasm backend, and the guard on wasm heap exhaustion. */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { RunError } from '../../src/errors.js';
import { LlamaModel, presetConfig, randomWeights } from '../../src/model/index.js';
import { maxAbs, maxAbsDiff, take } from '../model/helpers.js';

describe('wasm with 2 XNNPACK threads', () => {
  it('starts, says so once, and computes what cpu computes', async () => {
    const weights = randomWeights(presetConfig('draft-nano', 300, 32), { seed: 8, std: 0.1 });
    const tokens = [[1, 5, 9, 200, 17, 42, 42, 299, 0, 3, 7, 11, 13, 17, 19, 23]];
    const logitsOn = (model: LlamaModel) => take(model.forward(tf.tensor2d(tokens, [1, 16], 'int32')));

    await initBackend('cpu');
    const cpuModel = LlamaModel.fromWeights(weights);
    const expected = logitsOn(cpuModel);
    cpuModel.dispose();

    const lines: string[] = [];
    const choice = await initBackend('wasm', (line) => lines.push(line), { wasmThreads: 2 });
    expect(choice.threads).toBe(2);
    expect(lines).toEqual([expect.stringMatching(/^backend: wasm \(XNNPACK, SIMD, 2 threads; native sgemm [^)]*\)$/)]);
    await initBackend('wasm', (line) => lines.push(line), { wasmThreads: 2 });
    expect(lines).toHaveLength(1);
    const model = LlamaModel.fromWeights(weights);
    const actual = logitsOn(model);
    model.dispose();
    expect(maxAbs(expected)).toBeGreaterThan(1);
    expect(maxAbsDiff(actual, expected)).toBeLessThan(1e-4);
  });

  it('turns heap exhaustion into a RunError and stays usable', async () => {
    await initBackend('wasm', () => {}, { wasmThreads: 2 });
    const kept: tf.Tensor[] = [];
    let caught: unknown;
    try {
      for (let i = 0; i < 20; i++) kept.push(tf.zeros([64 * 1024 * 1024])); // 256 MiB each, past the 4 GiB cap
    } catch (error) {
      caught = error;
    } finally {
      tf.dispose(kept);
    }
    expect(caught).toBeInstanceOf(RunError);
    expect((caught as RunError).code).toBe('E_WASM_MEMORY');
    expect((caught as RunError).message).toMatch(/wasm heap exhausted: cannot allocate 256 MiB more/);
    const product = take(tf.matMul(tf.ones([4, 8]), tf.ones([8, 3])));
    expect(Array.from(product)).toEqual(new Array(12).fill(8));
  });
});
