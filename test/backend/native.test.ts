/**
 * fireopt's native sgemm (native/kernels.cc) against the stock cpu kernel's numbers, through both
 * backends that use it, and the build script's never-fail contract. The addon is built by
 * `npm ci` (postinstall); where it could not be built these tests say so and skip.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { hash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import {
  cpuSignature,
  nativeAddonPath,
  nativeBuildProblem,
  nativeHashing,
  nativeKernels,
  nativeWorthIt,
  setNativeEnabled,
} from '../../src/backend/native.js';
import { crossEntropyLoss, softCrossEntropySums, type SparseCoefficients } from '../../src/model/loss.js';
import { SeededRandom } from '../../src/model/random.js';
import { AdamW } from '../../src/train/optimizer.js';
import { stockCpu } from './stock.js';
import { maxAbs, maxAbsDiff } from '../model/helpers.js';

const native = nativeKernels();
if (!native.kernels) console.warn(`native kernel tests skipped: ${native.description}`);

const random = new SeededRandom(99);
function randomValues(n: number): Float32Array {
  return Float32Array.from({ length: n }, () => random.nextNormal());
}

function stockCpuMatMul(a: tf.Tensor, b: tf.Tensor, transposeA: boolean, transposeB: boolean): Float32Array {
  return stockCpu(tf.BatchMatMul, { a, b }, { transposeA, transposeB });
}

const cases: Array<{ a: number[]; b: number[]; transposeA: boolean; transposeB: boolean }> = [];
for (const transposeA of [false, true]) {
  for (const transposeB of [false, true]) {
    // Edges in every direction: sizes that are not multiples of the micro-tile or the blocks.
    cases.push({
      a: transposeA ? [301, 67] : [67, 301],
      b: transposeB ? [93, 301] : [301, 93],
      transposeA,
      transposeB,
    });
    cases.push({
      a: transposeA ? [5, 33, 41] : [5, 41, 33],
      b: transposeB ? [5, 50, 33] : [5, 33, 50],
      transposeA,
      transposeB,
    });
  }
}
cases.push({ a: [2, 3, 40, 64], b: [2, 3, 64, 48], transposeA: false, transposeB: false }); // rank 4
cases.push({ a: [4, 64, 80], b: [1, 80, 36], transposeA: false, transposeB: false }); // broadcast B
cases.push({ a: [1, 64, 80], b: [4, 36, 80], transposeA: false, transposeB: true }); // broadcast A
cases.push({ a: [2100, 24], b: [24, 40], transposeA: false, transposeB: false }); // many rows, split between threads
cases.push({ a: [24, 600], b: [600, 2300], transposeA: false, transposeB: false }); // few rows, wide: split by columns

describe.skipIf(!native.kernels)(`native sgemm (${native.description})`, () => {
  it('is used only where it pays', () => {
    expect(nativeWorthIt(1, 1, 8192, 256)).toBe(false); // one decoding step: XNNPACK keeps its packed weights
    expect(nativeWorthIt(1, 2048, 704, 256)).toBe(true);
    expect(
      cases.every(({ a, b, transposeA, transposeB }) => {
        const M = transposeA ? a.at(-1)! : a.at(-2)!;
        const K = transposeA ? a.at(-2)! : a.at(-1)!;
        const N = transposeB ? b.at(-2)! : b.at(-1)!;
        const batch = Math.max(
          a.slice(0, -2).reduce((x, y) => x * y, 1),
          b.slice(0, -2).reduce((x, y) => x * y, 1),
        );
        return nativeWorthIt(batch, M, N, K);
      }),
    ).toBe(true);
  });

  for (const backend of ['wasm', 'cpu'] as const) {
    it.each(cases)(
      `${backend}: a $a · b $b, transposeA $transposeA, transposeB $transposeB`,
      async ({ a, b, transposeA, transposeB }) => {
        const aValues = randomValues(a.reduce((x, y) => x * y));
        const bValues = randomValues(b.reduce((x, y) => x * y));
        await initBackend('cpu');
        const [aCpu, bCpu] = [tf.tensor(aValues, a), tf.tensor(bValues, b)];
        const expected = stockCpuMatMul(aCpu, bCpu, transposeA, transposeB);
        tf.dispose([aCpu, bCpu]);
        await initBackend(backend);
        const out = tf.tidy(() => tf.matMul(tf.tensor(aValues, a), tf.tensor(bValues, b), transposeA, transposeB));
        const actual = (await out.data()) as Float32Array;
        out.dispose();
        expect(maxAbs(expected)).toBeGreaterThan(10);
        // Sums of up to 600 products in another order (and with FMA): float32 rounding only.
        expect(maxAbsDiff(actual, expected)).toBeLessThan(1e-4);
      },
    );
  }

  it('gives bit-identical results on 1 and 2 threads (each element is summed by one thread, in one order)', () => {
    const kernels = native.kernels!;
    const [M, N, K] = [300, 200, 700];
    const a = randomValues(M * K);
    const b = randomValues(K * N);
    const one = new Float32Array(M * N);
    const two = new Float32Array(M * N);
    const before = kernels.info().threads;
    try {
      kernels.setThreads(1);
      kernels.gemm(a, b, one, 1, 1, M, N, K, false, true);
      kernels.setThreads(2);
      kernels.gemm(a, b, two, 1, 1, M, N, K, false, true);
    } finally {
      kernels.setThreads(before);
    }
    expect(Buffer.from(two.buffer).equals(Buffer.from(one.buffer))).toBe(true);
    expect(maxAbs(one)).toBeGreaterThan(10);
  });

  it('rejects arrays shorter than their shape instead of reading past them', () => {
    const kernels = native.kernels!;
    expect(() =>
      kernels.gemm(new Float32Array(10), new Float32Array(100), new Float32Array(100), 1, 1, 10, 10, 10, false, false),
    ).toThrow(/shorter than its shape/);
    expect(() =>
      kernels.gemm(new Float32Array(100), new Float32Array(100), new Float32Array(100), 2, 3, 10, 10, 1, false, false),
    ).toThrow(/batch sizes differ/);
  });

  it('matches the stock cpu kernels in the gradients of a batched attention-like product', async () => {
    const q = randomValues(4 * 64 * 32);
    const k = randomValues(4 * 64 * 32);
    const loss = (qt: tf.Tensor, kt: tf.Tensor) => tf.mean(tf.square(tf.matMul(qt, kt, false, true)));
    await initBackend('wasm');
    const [gqWasm, gkWasm] = tf.tidy(() =>
      tf
        .grads(loss)([tf.tensor(q, [4, 64, 32]), tf.tensor(k, [4, 64, 32])])
        .map((g) => g.dataSync() as Float32Array),
    );
    await initBackend('cpu');
    const [gqRef, gkRef] = tf.tidy(() => {
      const qt = tf.tensor3d(q, [4, 64, 32]);
      const kt = tf.tensor3d(k, [4, 64, 32]);
      // The same gradient by hand through the stock kernel: d/dq mean(S²) = 2/n · S · k, d/dk = 2/n · Sᵀ · q.
      const scores = tf.tensor3d(stockCpuMatMul(qt, kt, false, true), [4, 64, 64]);
      const scale = 2 / (4 * 64 * 64);
      const s = tf.mul(scores, scale);
      return [stockCpuMatMul(s, kt, false, false), stockCpuMatMul(s, qt, true, false)];
    });
    expect(maxAbsDiff(gqWasm, gqRef)).toBeLessThan(1e-5);
    expect(maxAbsDiff(gkWasm, gkRef)).toBeLessThan(1e-5);
  });
});

describe.skipIf(!native.kernels)('fused soft-target cross-entropy', () => {
  // 300 positions over a 1,000-word vocabulary; per row 0–4 entries, a repeated column, and two
  // coefficient sets (as the train objective's ce and kl).
  const [N, V] = [300, 1000];
  const logits = Float32Array.from(randomValues(N * V), (x) => 4 * x);
  const rowPtr = new Int32Array(N + 1);
  const cols: number[] = [];
  const coefs: number[] = [];
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < n % 5; j++) {
      cols.push(j === 3 ? cols[cols.length - 1] : (n * 37 + j * 101) % V);
      coefs.push(j === 0 ? 1 / N : 0, j === 0 ? 0 : 0.3 / N);
    }
    rowPtr[n + 1] = cols.length;
  }
  const coefficients: SparseCoefficients = {
    rowPtr,
    cols: Int32Array.from(cols),
    coefs: Float32Array.from(coefs),
    sets: 2,
  };

  async function sumsAndGradient(fused: boolean): Promise<{ sums: Float32Array; grad: Float32Array }> {
    const initial = tf.tensor2d(logits, [N, V]);
    const variable = tf.variable(initial);
    const x = variable as unknown as tf.Tensor2D;
    // A weighted total of the two sets, so that the gradient mixes both.
    const result = tf.variableGrads(
      () => tf.sum(tf.mul(softCrossEntropySums(x, coefficients, { fused }), tf.tensor1d([0.7, 1.9]))) as tf.Scalar,
      [variable],
    );
    const sums = tf.tidy(() => softCrossEntropySums(x, coefficients, { fused }));
    const out = {
      sums: (await sums.data()) as Float32Array,
      grad: (await result.grads[variable.name].data()) as Float32Array,
    };
    tf.dispose([initial, variable, sums, result.value, ...Object.values(result.grads)]);
    return out;
  }

  for (const backend of ['wasm', 'cpu'] as const) {
    it(`${backend}: equals the logSoftmax path in value and gradient, with no tensor left behind`, async () => {
      await initBackend(backend);
      const before = tf.memory().numTensors;
      const dense = await sumsAndGradient(false);
      const fused = await sumsAndGradient(true);
      expect(tf.memory().numTensors).toBe(before);
      expect(dense.sums[0]).toBeGreaterThan(1); // mean cross-entropy of random logits: several nats
      expect(maxAbsDiff(fused.sums, dense.sums)).toBeLessThan(1e-5 * Math.max(...dense.sums));
      expect(maxAbs(dense.grad)).toBeGreaterThan(1e-3);
      expect(maxAbsDiff(fused.grad, dense.grad)).toBeLessThan(1e-7);
    });

    it(`${backend}: crossEntropyLoss with masked positions equals the one-hot path`, async () => {
      await initBackend(backend);
      const [B, T, Vs] = [3, 50, 700];
      const values = randomValues(B * T * Vs);
      const targets = Int32Array.from({ length: B * T }, (_, i) => (i % 7 === 0 ? -1 : (i * 13) % Vs)); // -1: padding
      const mask = Float32Array.from(targets, (t, i) => (t < 0 || i % 5 === 0 ? 0 : 1));
      const run = async (fused: boolean) => {
        const x = tf.variable(tf.tensor3d(values, [B, T, Vs]));
        const { value, grads } = tf.variableGrads(
          () =>
            crossEntropyLoss(
              x as unknown as tf.Tensor3D,
              tf.tensor2d(targets, [B, T], 'int32'),
              tf.tensor2d(mask, [B, T]),
              { fused },
            ),
          [x],
        );
        const out = { loss: (await value.data())[0], grad: (await grads[x.name].data()) as Float32Array };
        tf.dispose([x, value, ...Object.values(grads)]);
        return out;
      };
      const dense = await run(false);
      const fused = await run(true);
      expect(dense.loss).toBeGreaterThan(1);
      expect(Math.abs(fused.loss - dense.loss)).toBeLessThan(1e-5 * dense.loss);
      expect(maxAbsDiff(fused.grad, dense.grad)).toBeLessThan(1e-7);
    });
  }

  it('checks indices instead of reading outside the logits', () => {
    const kernels = native.kernels!;
    const x = new Float32Array(20);
    const lse = new Float32Array(2);
    const partial = new Float32Array(2);
    expect(() =>
      kernels.softXentForward(
        x,
        2,
        10,
        Int32Array.from([0, 1, 2]),
        Int32Array.from([3, 10]),
        new Float32Array(2),
        1,
        lse,
        partial,
      ),
    ).toThrow(/outside the vocabulary/);
    expect(() =>
      kernels.softXentForward(
        x,
        2,
        10,
        Int32Array.from([0, 2, 1]),
        Int32Array.from([3, 4]),
        new Float32Array(2),
        1,
        lse,
        partial,
      ),
    ).toThrow(/must not decrease|does not match/);
    expect(() =>
      kernels.softXentForward(
        x,
        3,
        10,
        Int32Array.from([0, 1, 2, 2]),
        Int32Array.from([3, 4]),
        new Float32Array(2),
        1,
        lse,
        partial,
      ),
    ).toThrow(/shorter than its shape|lse and partial/);
  });
});

describe.skipIf(!native.kernels)('fused AdamW', () => {
  for (const backend of ['wasm', 'cpu'] as const) {
    it(`${backend}: five steps are bit-identical to the update in tfjs ops, moments included`, async () => {
      await initBackend(backend);
      const shapes: Record<string, number[]> = { w: [64, 48], gain: [48] }; // decay on the matrix only
      const initial = Object.fromEntries(
        Object.entries(shapes).map(([name, shape]) => [name, randomValues(shape.reduce((a, b) => a * b))]),
      );
      const gradients = Array.from({ length: 5 }, () =>
        Object.fromEntries(
          Object.entries(shapes).map(([name, shape]) => [name, randomValues(shape.reduce((a, b) => a * b))]),
        ),
      );
      const run = async (fused: boolean) => {
        const params = new Map(
          Object.entries(shapes).map(([name, shape]) => [
            name,
            tf.variable(tf.tensor(initial[name], shape), true, `${name}-${fused}-${backend}`),
          ]),
        );
        const optimizer = new AdamW(params, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 }, fused);
        const before = tf.memory().numTensors;
        for (const [step, grads] of gradients.entries()) {
          const byName = new Map(
            Object.entries(grads).map(([name, values]) => [name, tf.tensor(values, shapes[name])]),
          );
          optimizer.apply(byName, 1e-2 * (step + 1));
          tf.dispose([...byName.values()]);
        }
        expect(tf.memory().numTensors).toBe(before);
        const read = async (t: tf.Tensor) => Buffer.from(((await t.data()) as Float32Array).buffer);
        const out = [] as Buffer[];
        for (const name of Object.keys(shapes))
          out.push(
            await read(params.get(name)!),
            await read(optimizer.state.m.get(name)!),
            await read(optimizer.state.v.get(name)!),
          );
        optimizer.dispose();
        tf.dispose([...params.values()]);
        return out;
      };
      const plain = await run(false);
      const fused = await run(true);
      expect(fused.map((b) => b.equals(plain[fused.indexOf(b)]))).toEqual(plain.map(() => true));
      // And the update moved the parameters.
      expect(plain[0].equals(Buffer.from(initial.w.buffer))).toBe(false);
    });
  }
});

describe.skipIf(!nativeHashing())('ingest hashing (OpenSSL SHA-256 through the addon)', () => {
  const hashing = nativeHashing()!;
  const sha256 = (...parts: Uint8Array[]): Buffer => hash('sha256', Buffer.concat(parts), 'buffer');

  it(
    'sampleDigests: sha256(data[start, split) ‖ separator ‖ data[split, end)) ' + 'for each span, as crypto.hash',
    () => {
      const data = Uint8Array.from({ length: 40_000 }, () => Math.floor(random.nextFloat() * 256));
      const spans: number[] = [];
      // Conversations: one start, splits moving forward (the shared prefix is hashed once), replies of any length.
      for (let start = 0; start < 30_000; start += 1 + Math.floor(random.nextFloat() * 3000)) {
        let split = start;
        for (let turn = 0; turn < 1 + Math.floor(random.nextFloat() * 6); turn++) {
          split += Math.floor(random.nextFloat() * 700);
          spans.push(start, split, split + Math.floor(random.nextFloat() * 900));
        }
      }
      spans.push(100, 5000, 6000, 100, 200, 300); // a split that goes back: the prefix is hashed anew
      // Empty context, empty reply, the whole buffer, the very end.
      spans.push(7, 7, 7, 0, 0, 40_000, 39_999, 40_000, 40_000);
      const count = spans.length / 3;
      const out = new Uint8Array(32 * count);
      hashing.sampleDigests(data, Int32Array.from(spans), count, 0x02, out);
      for (let i = 0; i < count; i++) {
        const [start, split, end] = spans.slice(3 * i, 3 * i + 3);
        const expected = sha256(data.subarray(start, split), Uint8Array.of(0x02), data.subarray(split, end));
        expect(
          Buffer.from(out.subarray(32 * i, 32 * i + 32)).equals(expected),
          `span ${i}: ${start} ${split} ${end}`,
        ).toBe(true);
      }
    },
  );

  it('sampleDigests refuses spans outside the data and outputs that are too short', () => {
    const data = new Uint8Array(100);
    expect(() => hashing.sampleDigests(data, Int32Array.of(0, 50, 101), 1, 2, new Uint8Array(32))).toThrow(
      /outside data/,
    );
    expect(() => hashing.sampleDigests(data, Int32Array.of(0, 60, 50), 1, 2, new Uint8Array(32))).toThrow(
      /outside data/,
    );
    expect(() => hashing.sampleDigests(data, Int32Array.of(-1, 0, 0), 1, 2, new Uint8Array(32))).toThrow(
      /outside data/,
    );
    expect(() => hashing.sampleDigests(data, Int32Array.of(0, 0, 0), 1, 2, new Uint8Array(31))).toThrow(
      /shorter than count/,
    );
    expect(() => hashing.sampleDigests(data, Int32Array.of(0, 0, 0), 2, 2, new Uint8Array(64))).toThrow(
      /shorter than count/,
    );
  });

  it(
    'sha256Prefix32: the first 4 bytes of sha256 of the UTF-8 text, ' + 'as crypto.hash (lone surrogates as U+FFFD)',
    () => {
      const texts = [
        '',
        'fireopt-split-v1\u0000dlg-1',
        'é漢字😀',
        'lone \ud800 high',
        'lone \udc00 low',
        'x'.repeat(100_000),
      ];
      // Around the addon's 512-byte stack buffer, with multi-byte characters straddling its end.
      for (let n = 495; n < 515; n++)
        texts.push('a'.repeat(n), `${'a'.repeat(n)}漢`, `${'a'.repeat(n)}😀z`, `${'a'.repeat(n)}\ud800`);
      for (const text of texts)
        expect(hashing.sha256Prefix32(text), `length ${text.length}`).toBe(
          hash('sha256', text, 'buffer').readUInt32BE(0),
        );
    },
  );

  it('is not used when the native kernels are turned off', () => {
    setNativeEnabled(false);
    try {
      expect(nativeHashing()).toBeUndefined();
    } finally {
      setNativeEnabled(true);
    }
    expect(nativeHashing()).toBe(hashing);
  });
});

describe('scripts/build-native.mjs', () => {
  const script = join(import.meta.dirname, '..', '..', 'scripts', 'build-native.mjs');

  it('never fails an install: without a compiler it says why, exits 0 and leaves any earlier build alone', () => {
    const before = native.kernels ? readFileSync(nativeAddonPath) : undefined;
    const run = spawnSync(process.execPath, [script, '--force'], {
      env: { ...process.env, CXX: '/nonexistent/c++' },
      encoding: 'utf8',
    });
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/not built: no C\+\+ compiler \(\/nonexistent\/c\+\+\)/);
    if (before) expect(readFileSync(nativeAddonPath).equals(before)).toBe(true);
    const strict = spawnSync(process.execPath, [script, '--force', '--strict'], {
      env: { ...process.env, CXX: '/nonexistent/c++' },
      encoding: 'utf8',
    });
    expect(strict.status).toBe(1);
  });

  it('refuses a build made for another CPU, or without its stamp, instead of risking an illegal instruction', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fireopt-native-'));
    const addon = join(dir, 'fireopt_native.node');
    expect(nativeBuildProblem(addon)).toBe('not built');
    writeFileSync(addon, 'not loaded by this check');
    expect(nativeBuildProblem(addon)).toBe('has no build stamp');
    writeFileSync(join(dir, 'fireopt_native.json'), JSON.stringify({ cpu: 'AMD EPYC 9B14 | avx2 fma' }));
    expect(nativeBuildProblem(addon)).toBe('built for another CPU');
    writeFileSync(join(dir, 'fireopt_native.json'), JSON.stringify({ cpu: cpuSignature() }));
    expect(nativeBuildProblem(addon)).toBeUndefined();
    if (native.kernels) {
      // The real build's stamp is this machine's.
      copyFileSync(nativeAddonPath.replace(/\.node$/, '.json'), join(dir, 'fireopt_native.json'));
      expect(nativeBuildProblem(addon)).toBeUndefined();
    }
  });

  it('is skipped with FIREOPT_NATIVE=0', () => {
    const out = execFileSync(process.execPath, [script, '--force'], {
      env: { ...process.env, FIREOPT_NATIVE: '0' },
      encoding: 'utf8',
    });
    expect(out).toMatch(/skipped \(FIREOPT_NATIVE=0\)/);
  });

  it.skipIf(!native.kernels)('leaves an up-to-date build alone', () => {
    const mtime = statSync(nativeAddonPath).mtimeMs;
    const out = execFileSync(process.execPath, [script], { encoding: 'utf8' });
    expect(out).toMatch(/up to date/);
    expect(statSync(nativeAddonPath).mtimeMs).toBe(mtime);
  });
});
