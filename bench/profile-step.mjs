#!/usr/bin/env node
/**
 * Where one training step's time goes, kernel by kernel (tf.profile), on wasm: the step of
 * bench/model-train.mjs (draft-small, forward + backward of crossEntropyLoss, fireopt's AdamW).
 * Prints the step time, the kernel count and the kernels grouped by name, with and without
 * fireopt's native kernels in one process. kernelTimeMs of composite ops (names ending in __op,
 * "unnamed scope") includes the kernels inside them.
 *
 *   npm run build && node bench/profile-step.mjs [--vocab 8192] [--batch 8] [--native off,on] [--top 12] [--smoke]
 *
 * --smoke: the smallest run (vocab 512, one 32-token sequence, native off) that checks the script works.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../dist/backend/index.js';
import { setNativeEnabled } from '../dist/backend/native.js';
import { crossEntropyLoss, LlamaModel, presetConfig, randomWeights, SeededRandom } from '../dist/model/index.js';
import { AdamW } from '../dist/train/optimizer.js';
import { benchArgs } from './args.mjs';

const args = benchArgs();
const smoke = args.has('smoke');
const V = Number(args.get('vocab') ?? (smoke ? 512 : 8192));
const B = Number(args.get('batch') ?? (smoke ? 1 : 8));
const T = smoke ? 32 : 256;
const top = Number(args.get('top') ?? 12);

await initBackend('wasm', console.log);
for (const setting of (args.get('native') ?? (smoke ? 'off' : 'off,on')).split(',')) {
  setNativeEnabled(setting === 'on');
  const model = LlamaModel.fromWeights(randomWeights(presetConfig('draft-small', V, T), { seed: 1 }), {
    trainable: true,
  });
  const params = model.namedVariables();
  const optimizer = new AdamW(params, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
  const random = new SeededRandom(7);
  const inputs = Int32Array.from({ length: B * T }, () => random.nextUint32() % V);
  const targets = Int32Array.from({ length: B * T }, () => random.nextUint32() % V);
  const step = async () => {
    const { value, grads } = tf.variableGrads(
      () =>
        crossEntropyLoss(model.forward(tf.tensor2d(inputs, [B, T], 'int32')), tf.tensor2d(targets, [B, T], 'int32')),
      [...params.values()],
    );
    optimizer.apply(new Map([...params].map(([name, v]) => [name, grads[v.name]])), 1e-3);
    await value.data();
    tf.dispose([value, ...Object.values(grads)]);
  };
  await step();
  await step(); // warm-up: Adam state, XNNPACK packing, heap growth
  const started = performance.now();
  await step();
  const stepMs = performance.now() - started;
  const profile = await tf.profile(step);
  const byName = new Map();
  for (const k of profile.kernels) {
    const entry = byName.get(k.name) ?? { ms: 0, count: 0 };
    entry.ms += k.kernelTimeMs;
    entry.count++;
    byName.set(k.name, entry);
  }
  console.log(
    `\nnative ${setting}: vocab ${V}, batch ${B} × ${T}: ` +
      `step ${stepMs.toFixed(0)} ms, ${profile.kernels.length} kernels`,
  );
  console.log('| kernel | calls | ms |\n|---|---:|---:|');
  for (const [name, { ms, count }] of [...byName].sort((a, b) => b[1].ms - a[1].ms).slice(0, top))
    console.log(`| ${name} | ${count} | ${ms.toFixed(1)} |`);
  optimizer.dispose();
  model.dispose();
}
