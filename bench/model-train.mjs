#!/usr/bin/env node
/**
 * Training throughput of a draft-sized model: one step = forward + backward + fireopt's AdamW on a
 * [B, T] batch, median over steps after warm-up. Prints tokens/s and achieved model GFLOP/s
 * (matrix products only: 3 × the forward pass's 2·M·N·K, attention counted over the full T×T
 * square that the model computes), beside a native sgemm floor (numpy / OpenBLAS) measured in the
 * same run.
 *
 *   node bench/model-train.mjs [--backends wasm,cpu] [--vocabs 8192,32000] [--threads 1] [--native off,1,2]
 *       [--steps 5] [--quick]
 *
 * --native: fireopt's native kernels (native/kernels.cc: sgemm and the fused loss) off, or on with
 * that many threads; each backend runs once per setting (default off,1,2 when the addon is built).
 * --threads: XNNPACK thread counts to run the wasm backend with (2+ uses fireopt's opt-in
 * workaround for tfjs's Node thread limits; see src/backend/wasm-threads.ts).
 *
 * --smoke: the smallest run (wasm, draft-nano, vocab 512, one step on 32 tokens, native off, no numpy floor)
 * that checks the script works, in seconds.
 *
 * Needs `npm run build` first (runs on dist/).
 */
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../dist/backend/index.js';
import { nativeKernels, setNativeEnabled } from '../dist/backend/native.js';
import { crossEntropyLoss, LlamaModel, presetConfig, randomWeights, SeededRandom } from '../dist/model/index.js';
import { AdamW } from '../dist/train/optimizer.js';
import { benchArgs } from './args.mjs';

const args = benchArgs();
const quick = args.has('quick');
const smoke = args.has('smoke');
const backends = (args.get('backends') ?? (smoke ? 'wasm' : 'wasm,cpu')).split(',');
const vocabs = (args.get('vocabs') ?? (smoke ? '512' : '8192,32000')).split(',').map(Number);
const steps = Number(args.get('steps') ?? (smoke ? 1 : quick ? 2 : 5));
const T = Number(args.get('seq') ?? (smoke ? 32 : 256));
const preset = args.get('preset') ?? (smoke ? 'draft-nano' : 'draft-small');
const threadCounts = (args.get('threads') ?? '1').split(',').map(Number);
const nativeBuilt = nativeKernels().kernels !== undefined;
const nativeSettings = (args.get('native') ?? (nativeBuilt && !smoke ? 'off,1,2' : 'off'))
  .split(',')
  .map((x) => (x === 'off' ? 0 : Number(x)));

/** Forward-pass FLOPs of one [B, T] batch (matrix products). */
function forwardFlops(config, B, T) {
  const { dim: C, nHeads: H, nKvHeads: KV, hiddenDim: F, vocabSize: V, nLayers: L } = config;
  const D = C / H;
  const perToken = L * (C * H * D + 2 * C * KV * D + H * D * C + 3 * C * F) + C * V;
  const attention = L * 2 * H * T * T * D; // scores and weighted values
  return 2 * B * (T * perToken + attention);
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function nativeFloor() {
  const script = `
import time, numpy as np
def rate(n, reps):
    a = np.random.rand(n, n).astype(np.float32); b = np.random.rand(n, n).astype(np.float32)
    for _ in range(2): a @ b
    best = 1e9
    for _ in range(reps):
        t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9
print(rate(1024, 10))
`;
  const run = (env) => {
    try {
      return Number(
        execFileSync('python3', ['-c', script], { env: { ...process.env, ...env }, encoding: 'utf8' }).trim(),
      );
    } catch {
      return undefined;
    }
  };
  const clean = { ...process.env };
  delete clean.OPENBLAS_CORETYPE;
  delete clean.OPENBLAS_L2_SIZE;
  const threads = String(cpus().length);
  return {
    defaultThreads: run({ OPENBLAS_NUM_THREADS: threads }),
    oneThread: run({ OPENBLAS_NUM_THREADS: '1' }),
    skylakeX: run({ ...clean, OPENBLAS_CORETYPE: 'SkylakeX', OPENBLAS_NUM_THREADS: threads }),
  };
}

/** One step as `fireopt train` takes it: loss, gradients by tf.variableGrads, fireopt's AdamW. */
function trainStep(model, optimizer, data, B) {
  const params = model.namedVariables();
  const { value, grads } = tf.variableGrads(() => {
    const logits = model.forward(tf.tensor2d(data.inputs, [B, T], 'int32'));
    return crossEntropyLoss(logits, tf.tensor2d(data.targets, [B, T], 'int32'));
  }, [...params.values()]);
  optimizer.apply(new Map([...params].map(([name, v]) => [name, grads[v.name]])), 1e-3);
  const loss = value.dataSync()[0];
  tf.dispose([value, ...Object.values(grads)]);
  return loss;
}

const floor = smoke ? {} : nativeFloor();
console.log(`machine: ${cpus()[0].model}, ${cpus().length} cores; node ${process.version}`);
if (smoke) console.log('native floor: not measured (--smoke)');
else if (floor.defaultThreads === undefined) console.log('native floor: python3 numpy not available');
else
  console.log(
    `native sgemm 1024³ (numpy/OpenBLAS): ${floor.defaultThreads.toFixed(0)} GFLOP/s ${cpus().length} threads, ` +
      `${floor.oneThread?.toFixed(0)} 1 thread, ${floor.skylakeX?.toFixed(0)} with OPENBLAS_CORETYPE=SkylakeX`,
  );
const bestFloor = Math.max(floor.defaultThreads ?? 0, floor.skylakeX ?? 0);

/** The backend's own 1024³ matrix product rate: the ceiling a training step can approach. */
function backendSgemm() {
  const n = smoke ? 256 : 1024;
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  const once = () => {
    const start = performance.now();
    const c = tf.matMul(a, b);
    c.dataSync();
    c.dispose();
    return (performance.now() - start) / 1000;
  };
  once();
  const reps = tf.getBackend() === 'cpu' ? 1 : 5;
  const best = Math.min(...Array.from({ length: reps }, once));
  tf.dispose([a, b]);
  return (2 * n ** 3) / best / 1e9;
}

const rows = [];
const runs = backends.flatMap((backend) =>
  (backend === 'wasm' ? threadCounts : [1]).flatMap((threads) =>
    nativeSettings.map((native) => ({ backend, threads, native })),
  ),
);
for (const { backend, threads, native } of runs) {
  setNativeEnabled(native > 0);
  if (native > 0) {
    if (!nativeBuilt) throw new Error('the native kernels are not built: npm run build:native');
    nativeKernels().kernels?.setThreads(native);
  }
  const choice = await initBackend(backend, (line) => console.log(line), { wasmThreads: threads });
  const backendLabel = choice.name === 'wasm' ? `wasm ×${choice.threads}` : choice.name;
  const label = `${backendLabel}${native > 0 ? ` + native ×${native}` : ''}`;
  const sgemm = backendSgemm();
  console.log(`${label} sgemm ${smoke ? 256 : 1024}³: ${sgemm.toFixed(1)} GFLOP/s`);
  for (const vocabSize of vocabs) {
    // cpu (pure JS, ~1 GFLOP/s) gets one sequence per batch; wasm the draft-training batch (bounded
    // by its 4 GiB heap at vocab 32k).
    const B = Number(args.get('batch') ?? (backend === 'cpu' ? 1 : vocabSize > 16384 ? 4 : 8));
    const config = presetConfig(preset, vocabSize, T);
    const model = LlamaModel.fromWeights(randomWeights(config, { seed: 1 }), { trainable: true });
    const optimizer = new AdamW(model.namedVariables(), { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
    const random = new SeededRandom(7);
    const data = {
      inputs: Int32Array.from({ length: B * T }, () => random.nextUint32() % vocabSize),
      targets: Int32Array.from({ length: B * T }, () => random.nextUint32() % vocabSize),
    };
    const n = backend === 'cpu' ? Math.min(steps, 2) : steps;
    trainStep(model, optimizer, data, B); // warm-up: Adam state, XNNPACK packing, wasm heap growth
    const tensorsAfterWarmup = tf.memory().numTensors;
    const times = [];
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const start = performance.now();
      loss = trainStep(model, optimizer, data, B);
      times.push((performance.now() - start) / 1000);
    }
    const seconds = median(times);
    const tokensPerSec = (B * T) / seconds;
    const gflops = (3 * forwardFlops(config, B, T)) / seconds / 1e9;
    const row = {
      backend: label,
      preset,
      vocabSize,
      B,
      T,
      stepMs: seconds * 1000,
      tokensPerSec,
      gflops,
      backendSgemm: sgemm,
      ofFloor: bestFloor ? gflops / bestFloor : undefined,
      loss,
      leak: tf.memory().numTensors - tensorsAfterWarmup,
    };
    rows.push(row);
    console.log(JSON.stringify(row));
    optimizer.dispose();
    model.dispose();
  }
}

console.log(
  '\n| backend | model | vocab | batch × seq | step ms | tokens/s | ' +
    'model GFLOP/s | backend sgemm GFLOP/s | % of native floor |',
);
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.backend} | ${r.preset} | ${r.vocabSize} | ${r.B} × ${r.T} | ${r.stepMs.toFixed(0)} | ` +
      `${r.tokensPerSec.toFixed(0)} | ${r.gflops.toFixed(1)} | ${r.backendSgemm.toFixed(1)} | ` +
      `${r.ofFloor === undefined ? 'n/a' : (100 * r.ofFloor).toFixed(1) + '%'} |`,
  );
}
