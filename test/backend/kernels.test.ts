/** fireopt's replacement kernels against the stock cpu kernels' numbers. */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { stockCpu } from './stock.js';
import { SeededRandom } from '../../src/model/random.js';
import { maxAbs, maxAbsDiff } from '../model/helpers.js';

const random = new SeededRandom(1234);
function randomValues(n: number): Float32Array {
  return Float32Array.from({ length: n }, () => random.nextNormal());
}

/** Run `f` on a backend and read its results back as plain arrays. */
async function on(backend: 'cpu' | 'wasm', f: () => tf.Tensor[]): Promise<Float32Array[]> {
  await initBackend(backend);
  const outputs = tf.tidy(f);
  const values = outputs.map((t) => Float32Array.from(t.dataSync() as Float32Array));
  tf.dispose(outputs);
  return values;
}

describe('wasm BatchMatMul (XNNPACK per slice)', () => {
  const cases: Array<{ a: number[]; b: number[]; transposeA: boolean; transposeB: boolean }> = [];
  for (const transposeA of [false, true]) {
    for (const transposeB of [false, true]) {
      cases.push({ a: transposeA ? [37, 19] : [19, 37], b: transposeB ? [23, 37] : [37, 23], transposeA, transposeB });
      cases.push({
        a: transposeA ? [6, 33, 17] : [6, 17, 33],
        b: transposeB ? [6, 29, 33] : [6, 33, 29],
        transposeA,
        transposeB,
      });
    }
  }
  cases.push({ a: [2, 3, 8, 16], b: [2, 3, 16, 5], transposeA: false, transposeB: false }); // rank 4
  cases.push({ a: [4, 9, 16], b: [1, 16, 12], transposeA: false, transposeB: false }); // broadcast B
  cases.push({ a: [1, 9, 16], b: [4, 12, 16], transposeA: false, transposeB: true }); // broadcast A
  cases.push({ a: [1, 64], b: [64, 300], transposeA: false, transposeB: false }); // a decode step

  it.each(cases)(
    'a $a · b $b, transposeA $transposeA, transposeB $transposeB',
    async ({ a, b, transposeA, transposeB }) => {
      const aValues = randomValues(a.reduce((x, y) => x * y));
      const bValues = randomValues(b.reduce((x, y) => x * y));
      const run = () => [tf.matMul(tf.tensor(aValues, a), tf.tensor(bValues, b), transposeA, transposeB)];
      const [expected] = await on('cpu', run);
      const [actual] = await on('wasm', run);
      expect(maxAbs(expected)).toBeGreaterThan(1);
      expect(maxAbsDiff(actual, expected)).toBeLessThan(2e-5);
    },
  );

  it('matches cpu gradients of a batched product with both transposes', async () => {
    const aValues = randomValues(8 * 24 * 16);
    const bValues = randomValues(8 * 20 * 24);
    const run = () => {
      const a = tf.tensor3d(aValues, [8, 24, 16]);
      const b = tf.tensor3d(bValues, [8, 20, 24]);
      const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, y, true, true)));
      return tf.grads(f)([a, b]);
    };
    const expected = await on('cpu', run);
    const actual = await on('wasm', run);
    expected.forEach((e, i) => expect(maxAbsDiff(actual[i], e) / maxAbs(e)).toBeLessThan(1e-6));
  });

  it('frees everything it allocates', async () => {
    await initBackend('wasm');
    const a = tf.randomNormal([5, 12, 16]);
    const b = tf.randomNormal([5, 20, 16]);
    const before = tf.memory().numTensors;
    const bytesBefore = tf.memory().numBytes;
    for (let i = 0; i < 20; i++) tf.matMul(a, b, false, true).dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.memory().numBytes).toBe(bytesBefore);
    tf.dispose([a, b]);
  });
});

describe('UnsortedSegmentSum (the embedding gradient)', () => {
  const xValues = randomValues(40 * 6);
  const ids = Int32Array.from({ length: 40 }, (_, i) => (i * 7) % 13);
  ids[5] = -1; // out-of-range ids are dropped
  ids[9] = 13;

  it.each(['cpu', 'wasm'] as const)('on %s equals the stock cpu kernel', async (backend) => {
    await initBackend('cpu');
    const expected = tf.tidy(() =>
      stockCpu(
        tf.UnsortedSegmentSum,
        { x: tf.tensor2d(xValues, [40, 6]), segmentIds: tf.tensor1d(ids, 'int32') },
        { numSegments: 13 },
      ),
    );
    const [actual] = await on(backend, () => [
      tf.unsortedSegmentSum(tf.tensor2d(xValues, [40, 6]), tf.tensor1d(ids, 'int32'), 13),
    ]);
    expect(maxAbs(expected)).toBeGreaterThan(1);
    expect(maxAbsDiff(actual, expected)).toBeLessThan(1e-6);
  });

  it('gives the same embedding gradient on wasm as on cpu', async () => {
    const table = randomValues(50 * 8);
    const tokenIds = Int32Array.from({ length: 64 }, (_, i) => (i * 11) % 50);
    const weights = randomValues(64 * 8);
    const run = () => {
      const f = (embedding: tf.Tensor) =>
        tf.sum(tf.mul(tf.gather(embedding, tf.tensor1d(tokenIds, 'int32')), tf.tensor2d(weights, [64, 8])));
      return [tf.grad(f)(tf.tensor2d(table, [50, 8]))];
    };
    const [expected] = await on('cpu', run);
    const [actual] = await on('wasm', run);
    expect(maxAbsDiff(actual, expected)).toBeLessThan(1e-5);
  });
});

describe('float32 oneHot on wasm (the bug the loss avoids)', () => {
  beforeAll(() => initBackend('wasm'));
  it('int32 oneHot cast to float32 is correct', () => {
    const values = tf.tidy(() =>
      tf.cast(tf.oneHot(tf.tensor1d([2, 0], 'int32'), 3, 1, 0, 'int32'), 'float32').dataSync(),
    );
    expect(Array.from(values)).toEqual([0, 0, 1, 1, 0, 0]);
  });
});
