/**
 * Units of the train stage: the objective's gradients through the whole tfjs model agree with
 * central finite differences on a tiny model; the schedule; the reduced-vocabulary maps.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { LlamaModel, randomWeights, SeededRandom, type LlamaConfig } from '../../src/model/index.js';
import type { PackedBatch } from '../../src/train/data.js';
import { draftLoss, softTargets, type LossWeights } from '../../src/train/loss.js';
import { learningRate } from '../../src/train/optimizer.js';
import { fullVocab, inputDraftId, reducedVocab, vocabFromMap } from '../../src/train/vocab.js';

const config: LlamaConfig = {
  dim: 8,
  hiddenDim: 16,
  nLayers: 2,
  nHeads: 2,
  nKvHeads: 1,
  vocabSize: 12,
  maxSeqLen: 16,
  normEps: 1e-5,
  ropeTheta: 10000,
  tiedEmbeddings: false,
};

/** A batch of 2 × 5 positions with top-3 distributions on some positions, one-hot on others. */
function tinyBatch(): PackedBatch {
  const random = new SeededRandom(4);
  const rows = 2;
  const seqLen = 5;
  const K = 3;
  const N = rows * seqLen;
  const topIds = new Int32Array(N * K).fill(-1);
  const topLogprobs = new Float32Array(N * K).fill(-Infinity);
  for (let n = 0; n < N; n += 2) {
    const logits = [random.nextNormal(), random.nextNormal(), random.nextNormal()];
    const logZ = Math.log(logits.reduce((s, x) => s + Math.exp(x), 0)) + 0.3; // top-3 holds < 1 of the mass
    for (let j = 0; j < K; j++) {
      topIds[n * K + j] = (n + 3 * j) % config.vocabSize;
      topLogprobs[n * K + j] = logits[j] - logZ;
    }
  }
  return {
    rows,
    seqLen,
    topK: K,
    inputs: Int32Array.from({ length: N }, () => random.nextUint32() % config.vocabSize),
    targets: Int32Array.from({ length: N }, () => random.nextUint32() % config.vocabSize),
    // The first position of each row is prompt.
    weights: Float32Array.from({ length: N }, (_, n) => (n % seqLen === 0 ? 0 : 1)),
    topIds,
    topLogprobs,
  };
}

describe('train objective', () => {
  it('has gradients (through the whole model) that agree with central finite differences', async () => {
    await initBackend('cpu');
    const model = LlamaModel.fromWeights(randomWeights(config, { seed: 11, std: 0.3 }));
    const batch = tinyBatch();
    const vocab = fullVocab(config.vocabSize);
    const weights: LossWeights = { ce: 1, kl: 0.7, tv: 0.5 };
    const targets = softTargets(batch, vocab, true);
    const lossValue = (): number =>
      tf.tidy(() => {
        const parts = draftLoss(
          model.forward(tf.tensor2d(batch.inputs, [batch.rows, batch.seqLen], 'int32')),
          targets,
          weights,
        );
        const value = parts.total.dataSync()[0];
        tf.dispose([parts.ce, parts.kl, parts.tv]);
        return value;
      });
    try {
      const variables = model.namedVariables();
      const { value, grads } = tf.variableGrads(() => {
        const parts = draftLoss(
          model.forward(tf.tensor2d(batch.inputs, [batch.rows, batch.seqLen], 'int32')),
          targets,
          weights,
        );
        tf.dispose([parts.ce, parts.kl, parts.tv]);
        return parts.total;
      }, [...variables.values()]);
      expect(value.dataSync()[0]).toBeCloseTo(lossValue(), 5);
      value.dispose();
      const random = new SeededRandom(3);
      let checked = 0;
      for (const name of [
        'tokenEmbedding',
        'layers.0.wq',
        'layers.0.wk',
        'layers.1.wv',
        'layers.1.wo',
        'layers.0.attnNorm',
        'layers.1.w1',
        'layers.1.w2',
        'layers.0.w3',
        'finalNorm',
        'output',
      ]) {
        const variable = variables.get(name) as tf.Variable;
        const analytic = grads[variable.name].dataSync() as Float32Array;
        const original = Float32Array.from(variable.dataSync() as Float32Array);
        for (let trial = 0; trial < 4; trial++) {
          const i = random.nextUint32() % original.length;
          const eps = 2e-3;
          const at = (delta: number): number => {
            const shifted = Float32Array.from(original);
            shifted[i] += delta;
            variable.assign(tf.tensor(shifted, variable.shape));
            return lossValue();
          };
          const numeric = (at(eps) - at(-eps)) / (2 * eps);
          variable.assign(tf.tensor(original, variable.shape));
          expect(
            Math.abs(numeric - analytic[i]),
            `${name}[${i}]: finite difference ${numeric}, gradient ${analytic[i]}`,
          ).toBeLessThan(2e-3 + 0.03 * Math.abs(analytic[i]));
          checked++;
        }
      }
      expect(checked).toBe(44);
      tf.dispose(Object.values(grads));
    } finally {
      model.dispose();
    }
  });

  it('reports cross-entropy, KL and TV that match their definitions', async () => {
    await initBackend('cpu');
    const batch = tinyBatch();
    const vocab = fullVocab(config.vocabSize);
    const random = new SeededRandom(8);
    const N = batch.rows * batch.seqLen;
    const V = config.vocabSize;
    const logitValues = Float32Array.from({ length: N * V }, () => 2 * random.nextNormal());
    const parts = draftLoss(tf.tensor3d(logitValues, [batch.rows, batch.seqLen, V]), softTargets(batch, vocab, true), {
      ce: 1,
      kl: 1,
      tv: 1,
    });
    let ce = 0;
    let kl = 0;
    let tv = 0;
    let count = 0;
    let klCount = 0;
    for (let n = 0; n < N; n++) {
      if (!batch.weights[n]) continue;
      count++;
      const row = Array.from(logitValues.subarray(n * V, (n + 1) * V));
      const max = Math.max(...row);
      const logZ = Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0)) + max;
      const q = row.map((x) => Math.exp(x - logZ));
      ce -= Math.log(q[batch.targets[n]]);
      const p = new Array<number>(V).fill(0);
      if (batch.topIds[n * 3] >= 0) {
        klCount++;
        const mass = [0, 1, 2].reduce((s, j) => s + Math.exp(batch.topLogprobs[n * 3 + j]), 0);
        for (let j = 0; j < 3; j++) p[batch.topIds[n * 3 + j]] += Math.exp(batch.topLogprobs[n * 3 + j]) / mass;
        for (let v = 0; v < V; v++) if (p[v] > 0) kl += p[v] * Math.log(p[v] / q[v]);
      } else {
        p[batch.targets[n]] = 1;
      }
      tv += 0.5 * p.reduce((s, pv, v) => s + Math.abs(pv - q[v]), 0);
    }
    expect(parts.ce.dataSync()[0]).toBeCloseTo(ce / count, 4);
    expect(parts.kl.dataSync()[0]).toBeCloseTo(kl / klCount, 4);
    expect(parts.tv.dataSync()[0]).toBeCloseTo(tv / count, 4);
    expect(parts.total.dataSync()[0]).toBeCloseTo(ce / count + kl / klCount + tv / count, 4);
    tf.dispose([parts.total, parts.ce, parts.kl, parts.tv]);
  });
});

describe('learning-rate schedule', () => {
  it('warms up linearly, peaks, and decays by a cosine to the floor', () => {
    const o = { peakLr: 1e-3, warmupSteps: 10, totalSteps: 110, minLrRatio: 0.1 };
    expect(learningRate(0, o)).toBeCloseTo(1e-4, 12);
    expect(learningRate(9, o)).toBeCloseTo(1e-3, 12);
    expect(learningRate(10, o)).toBeCloseTo(1e-3, 12);
    expect(learningRate(60, o)).toBeCloseTo(0.55e-3, 12); // half way: the mean of peak and floor
    expect(learningRate(110, o)).toBeCloseTo(1e-4, 12);
    expect(learningRate(500, o)).toBeCloseTo(1e-4, 12);
    for (let s = 10; s < 110; s++) expect(learningRate(s + 1, o)).toBeLessThanOrEqual(learningRate(s, o));
  });
});

describe('draft vocabulary', () => {
  it('keeps the N most frequent ids and maps both ways; the stored map rebuilds the same vocabulary', () => {
    const counts = [5, 0, 9, 9, 1, 7, 0, 3];
    const vocab = reducedVocab(counts, 8, 4, 0);
    expect(Array.from(vocab.draftToTarget)).toEqual([2, 3, 5, 0]);
    expect(Array.from(vocab.targetToDraft)).toEqual([3, -1, 0, 1, -1, 2, -1, -1]);
    expect(vocab.unkDraftId).toBe(3); // the target's unknown token is kept
    expect(inputDraftId(vocab, 4)).toBe(3);
    expect(inputDraftId(vocab, 5)).toBe(2);
    const rebuilt = vocabFromMap(Int32Array.from(vocab.draftToTarget), 8, 0);
    expect(rebuilt).toEqual(vocab);
    expect(reducedVocab(counts, 8, 3).unkDraftId).toBe(2); // no unknown token kept: the least frequent row
    expect(reducedVocab(counts, 8, 8).reduced).toBe(false);
  });
});
