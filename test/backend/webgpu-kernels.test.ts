/**
 * Every kernel that a training step (forward, draftLoss, gradients, clipping, AdamW) and decoding
 * run is registered for tfjs-backend-webgpu (the loss through logSoftmax: fireopt's fused native
 * loss kernel exists only for wasm and cpu). Checked without a GPU: importing the package registers
 * its kernels even when it cannot register the backend (no navigator.gpu). In its own file, since that
 * import leaves the package unable to register the backend later in the same process.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { generate, LlamaModel, presetConfig, randomWeights } from '../../src/model/index.js';
import { draftLoss, type SoftTargets } from '../../src/train/loss.js';
import { AdamW, clipByGlobalNorm } from '../../src/train/optimizer.js';

describe('tfjs-backend-webgpu kernels', () => {
  it('cover a training step and decoding', async () => {
    await initBackend('cpu');
    const specifier: string = '@tensorflow/tfjs-backend-webgpu';
    await import(specifier);
    const webgpuKernels = new Set(tf.getKernelsForBackend('webgpu').map((k) => k.kernelName));
    expect(webgpuKernels.size).toBeGreaterThan(100);

    const [V, B, T] = [64, 2, 8];
    const N = B * T;
    const model = LlamaModel.fromWeights(randomWeights(presetConfig('draft-nano', V, 16), { seed: 1 }), {
      trainable: true,
    });
    const params = model.namedVariables();
    // fireopt's fused native AdamW exists only for wasm and cpu
    const optimizer = new AdamW(params, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 }, false);
    // Per row: the ce target, and a two-token kl distribution (sets: [ce, kl]).
    const rowPtr = Int32Array.from({ length: N + 1 }, (_, n) => 3 * n);
    const cols = new Int32Array(3 * N);
    const coefs = new Float32Array(6 * N);
    const tvTargets = new Float32Array(N * V);
    for (let n = 0; n < N; n++) {
      cols.set([(n * 7) % V, (n * 3) % V, (n * 5 + 1) % V], 3 * n);
      coefs.set([1 / N, 0, 0, 0.5 / N, 0, 0.5 / N], 6 * n);
      tvTargets[n * V + ((n * 7) % V)] = 1;
    }
    const targets: SoftTargets = {
      coefficients: { rowPtr, cols, coefs, sets: 2 },
      klEntropyTerm: 0,
      tvTargets,
      tvRowWeights: new Float32Array(N).fill(1 / N),
      tvConstant: 0,
      tokens: N,
    };
    // tf.profile returns the same (mutated) object on every call: copy the names before the next one.
    const training = [
      ...(
        await tf.profile(() => {
          const inputs = tf.tensor2d(
            Array.from({ length: N }, (_, i) => i % V),
            [B, T],
            'int32',
          );
          const { grads } = tf.variableGrads(
            () => draftLoss(model.forward(inputs), targets, { ce: 1, kl: 0.5, tv: 0.5 }, { fused: false }).total,
            [...params.values()],
          );
          const byName = new Map([...params].map(([name, v]) => [name, grads[v.name] as tf.Tensor]));
          clipByGlobalNorm(byName, 1);
          optimizer.apply(byName, 1e-3);
        })
      ).kernelNames,
    ];
    const decoding = [
      ...(
        await tf.profile(async () => {
          await generate(model, [1, 2, 3], { maxNewTokens: 4 });
          await generate(model, [1, 2, 3], { maxNewTokens: 4, temperature: 0.8, topK: 5, topP: 0.9, seed: 3 });
        })
      ).kernelNames,
    ];
    // Op scopes (names ending in __op) and tidy scopes are not kernels.
    const used = [...new Set([...training, ...decoding])].filter((name) => tf.getKernel(name, 'cpu'));
    expect(used).toEqual(expect.arrayContaining(['BatchMatMul', 'GatherV2', 'UnsortedSegmentSum', 'Softmax']));
    expect(used.filter((name) => !webgpuKernels.has(name))).toEqual([]);
    model.dispose();
    optimizer.dispose();
  });
});
