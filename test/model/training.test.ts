/** Training pieces: weights round trip, the loss, and a training step on wasm against cpu. */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import {
  configProblems,
  crossEntropyLoss,
  DecodeSession,
  isPresetName,
  LlamaModel,
  presetConfig,
  presets,
  randomWeights,
  SeededRandom,
  type PresetName,
} from '../../src/model/index.js';
import type { LlamaConfig } from '../../src/model/config.js';
import type { LlamaWeights } from '../../src/model/weights.js';
import { maxAbs, maxAbsDiff, take } from './helpers.js';
import { ReferenceLlama } from './reference-llama2c.js';

// Grouped-query (4 query heads over 2 key/value heads), untied head, head size 16.
const config: LlamaConfig = presetConfig('draft-nano', 512, 64, { tiedEmbeddings: false });
const B = 3;
const T = 24;

function batch(seed: number): { inputs: Int32Array; targets: Int32Array; mask: Float32Array } {
  const random = new SeededRandom(seed);
  const tokens = Int32Array.from({ length: B * (T + 1) }, () => random.nextUint32() % config.vocabSize);
  const inputs = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    inputs.set(tokens.subarray(b * (T + 1), b * (T + 1) + T), b * T);
    targets.set(tokens.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
  }
  const mask = Float32Array.from({ length: B * T }, (_, i) => (i % T < 3 ? 0 : 1)); // prompt tokens not scored
  return { inputs, targets, mask };
}

function lossOf(model: LlamaModel, data: ReturnType<typeof batch>): tf.Scalar {
  const logits = model.forward(tf.tensor2d(data.inputs, [B, T], 'int32'));
  return crossEntropyLoss(logits, tf.tensor2d(data.targets, [B, T], 'int32'), tf.tensor2d(data.mask, [B, T]));
}

/** Loss and every variable's gradient, read back to plain arrays. */
async function lossAndGradients(
  backend: 'cpu' | 'wasm',
  weights: LlamaWeights,
): Promise<{ loss: number; grads: Float32Array[] }> {
  await initBackend(backend);
  const model = LlamaModel.fromWeights(weights);
  try {
    const data = batch(1);
    const { value, grads } = tf.variableGrads(() => lossOf(model, data), model.variables);
    const loss = take(value)[0];
    const ordered = model.variables.map((v) => take(grads[v.name]));
    return { loss, grads: ordered };
  } finally {
    model.dispose();
  }
}

describe('model weights', () => {
  it('round-trips LlamaWeights exactly (RoPE row permutation undone)', async () => {
    await initBackend('wasm');
    const weights = randomWeights(config, { seed: 5 });
    const model = LlamaModel.fromWeights(weights);
    const back = model.toWeights();
    model.dispose();
    expect(back.config).toEqual(weights.config);
    expect(back.tokenEmbedding.data).toEqual(weights.tokenEmbedding.data);
    expect(back.output?.data).toEqual(weights.output?.data);
    weights.layers.forEach((layer, l) => {
      for (const key of Object.keys(layer) as Array<keyof typeof layer>) {
        expect(back.layers[l][key]?.shape).toEqual(layer[key]?.shape);
        expect(back.layers[l][key]?.data).toEqual(layer[key]?.data);
      }
    });
  });

  it('random init is seeded and backend-independent', () => {
    const a = randomWeights(config, { seed: 9 });
    const b = randomWeights(config, { seed: 9 });
    const c = randomWeights(config, { seed: 10 });
    expect(a.layers[1].w2.data).toEqual(b.layers[1].w2.data);
    expect(maxAbsDiff(a.layers[1].w2.data, c.layers[1].w2.data)).toBeGreaterThan(0);
    const std = Math.sqrt(a.tokenEmbedding.data.reduce((s, v) => s + v * v, 0) / a.tokenEmbedding.data.length);
    expect(std).toBeGreaterThan(0.019);
    expect(std).toBeLessThan(0.021);
  });

  it.each(['cpu', 'wasm'] as const)('forward on %s matches run.c on an untied grouped-query model', async (backend) => {
    await initBackend(backend);
    const weights = randomWeights(config, { seed: 3, std: 0.2 }); // large weights: far from uniform logits
    const model = LlamaModel.fromWeights(weights);
    const tokens = [1, 17, 300, 42, 42, 511, 0, 256, 9, 100];
    const logits = take(model.forward(tf.tensor2d(tokens, [1, tokens.length], 'int32')));
    model.dispose();
    const reference = new ReferenceLlama(weights);
    const V = config.vocabSize;
    tokens.forEach((token, t) => {
      const expected = reference.forward(token);
      expect(maxAbsDiff(logits.subarray(t * V, (t + 1) * V), expected)).toBeLessThan(
        1e-4 * Math.max(1, maxAbs(expected)),
      );
    });
  });
});

describe('presets', () => {
  it('are valid configs once given a vocabulary and a context length', () => {
    for (const name of Object.keys(presets)) {
      expect(isPresetName(name)).toBe(true);
      const preset = presetConfig(name as PresetName, 8192, 256);
      expect(configProblems(preset)).toEqual([]);
      expect(preset.hiddenDim % 32).toBe(0);
    }
    expect(presetConfig('draft-small', 32000, 512)).toMatchObject({
      dim: 256,
      nLayers: 4,
      nHeads: 4,
      nKvHeads: 2,
      hiddenDim: 704,
      vocabSize: 32000,
      maxSeqLen: 512,
    });
    expect(isPresetName('toString')).toBe(false);
  });
});

describe('tensor ownership', () => {
  it("survives a caller's tf.tidy: model, grown RoPE tables and decoding sessions", async () => {
    await initBackend('wasm');
    const weights = randomWeights(config, { seed: 6, std: 0.1 });
    const before = tf.memory().numTensors;
    // A caller's scope (what tf.tidy opens and closes around its function).
    const inScope = <T>(f: () => T): T => {
      tf.engine().startScope();
      try {
        return f();
      } finally {
        tf.engine().endScope();
      }
    };
    const model = inScope(() => LlamaModel.fromWeights(weights));
    const long = Array.from({ length: config.maxSeqLen + 16 }, (_, i) => (i * 37) % config.vocabSize);
    // Longer than maxSeqLen: the RoPE tables grow inside forward's (and this) scope.
    const logits = inScope(() => take(model.forward(tf.tensor2d(long, [1, long.length], 'int32'))));
    const session = inScope(() => new DecodeSession(model));
    // Each scope closes before the asynchronous read of the logits resolves.
    await inScope(() => session.feed(long.slice(0, 10)));
    const stepped = await inScope(() => session.feed(long.slice(10, 12)));
    const V = config.vocabSize;
    expect(maxAbsDiff(stepped, logits.subarray(10 * V, 12 * V))).toBeLessThan(1e-4);
    session.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('cross-entropy loss', () => {
  it('equals −mean log p(target) over unmasked positions, with the autodiff gradient', async () => {
    await initBackend('cpu');
    const random = new SeededRandom(2);
    const logitsValues = Float32Array.from({ length: 2 * 5 * 7 }, () => 3 * random.nextNormal());
    const targets = Int32Array.from({ length: 10 }, (_, i) => (i * 3) % 7);
    const mask = Float32Array.from([1, 1, 0, 1, 1, 0, 0, 1, 1, 1]);
    const logits = tf.tensor3d(logitsValues, [2, 5, 7]);
    const [loss, grad] = tf.tidy(() => {
      const f = (x: tf.Tensor) =>
        crossEntropyLoss(x as tf.Tensor3D, tf.tensor2d(targets, [2, 5], 'int32'), tf.tensor2d(mask, [2, 5]));
      return [f(logits), tf.grad(f)(logits)];
    });
    // The same loss written plainly, differentiated by tfjs.
    const autodiff = tf.tidy(() => {
      const plain = (x: tf.Tensor) => {
        const logProbs = tf.reshape(tf.logSoftmax(x), [10, 7]);
        const picked = tf.gather(
          tf.reshape(logProbs, [70]),
          tf.tensor1d(
            Array.from(targets, (t, i) => i * 7 + t),
            'int32',
          ),
        );
        return tf.div(tf.neg(tf.sum(tf.mul(picked, tf.tensor1d(mask)))), 7);
      };
      return tf.grad(plain)(logits);
    });
    let expected = 0;
    for (let i = 0; i < 10; i++) {
      if (!mask[i]) continue;
      const row = logitsValues.subarray(i * 7, i * 7 + 7);
      const max = Math.max(...row);
      const logSum = Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) + max;
      expected += (logSum - row[targets[i]]) / 7;
    }
    expect(take(loss)[0]).toBeCloseTo(expected, 5);
    expect(maxAbsDiff(take(grad), take(autodiff))).toBeLessThan(1e-6);
    logits.dispose();
  });
});

describe('training step', () => {
  it('gives the same loss and gradients on wasm (fireopt kernels) as on cpu', async () => {
    const weights = randomWeights(config, { seed: 11 });
    const cpu = await lossAndGradients('cpu', weights);
    const wasm = await lossAndGradients('wasm', weights);
    expect(cpu.loss).toBeGreaterThan(Math.log(config.vocabSize) - 0.1); // untrained: about ln V
    expect(Math.abs(wasm.loss - cpu.loss)).toBeLessThan(1e-5);
    expect(wasm.grads).toHaveLength(cpu.grads.length);
    cpu.grads.forEach((expected, i) => {
      expect(maxAbs(expected)).toBeGreaterThan(0);
      expect(maxAbsDiff(wasm.grads[i], expected)).toBeLessThan(1e-4 * maxAbs(expected));
    });
  });

  it('learns a fixed batch with Adam and keeps the tensor count flat', async () => {
    await initBackend('wasm');
    const model = LlamaModel.fromWeights(randomWeights(config, { seed: 4 }));
    const optimizer = tf.train.adam(3e-3);
    const data = batch(2);
    const step = () => take(optimizer.minimize(() => lossOf(model, data), true, model.variables) as tf.Scalar)[0];
    const first = step(); // creates Adam's moment variables
    const countAfterFirst = tf.memory().numTensors;
    let last = first;
    for (let i = 0; i < 15; i++) last = step();
    expect(tf.memory().numTensors).toBe(countAfterFirst);
    expect(last).toBeLessThan(first - 0.5);
    optimizer.dispose();
    model.dispose();
  });
});
