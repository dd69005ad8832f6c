#!/usr/bin/env node
/**
 * Training on one backend, measured the same way on every backend: correctness of one training step
 * (loss and every gradient, then the losses of 5 AdamW steps) on a fixed real batch, and training
 * throughput (tokens/s) for draft-sized models. Runs on the built dist/ (npm run build).
 *
 *   node scripts/gpu/train-check.mjs reference --targets DIR --out reference.json [--steps N]
 *       here, on a CPU: the wasm backend (2 XNNPACK threads) and cpu; writes the reference that the
 *       GPU run compares against (the fixed batch, its loss and gradients, wasm tokens/s per shape).
 *   node scripts/gpu/train-check.mjs gpu --targets DIR --reference reference.json --out webgpu.json
 *       on the GPU machine: `auto` with asynchronous reads (must choose webgpu), then the same checks
 *       on webgpu. Without an adapter it says so, still runs the correctness part on wasm (which
 *       checks the bundle itself), and exits 0 with "adapter": null.
 *
 * One training step = what fireopt's loop does (src/train/loop.ts): softTargets → forward → draftLoss
 * (cross-entropy + KL to the target's top-k) → gradients → global-norm clipping → AdamW, and the
 * loss read back. Reads are asynchronous (await t.data()) because WebGPU under Node cannot read
 * synchronously; clipping is therefore done with tensors instead of the loop's clipByGlobalNorm.
 */
import { writeFileSync, readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../dist/backend/index.js';
import { LlamaModel, presetConfig, randomWeights, SeededRandom } from '../../dist/model/index.js';
import { trainingBatches } from '../../dist/train/data.js';
import { draftLoss, softTargets } from '../../dist/train/loss.js';
import { AdamW, clipByGlobalNorm } from '../../dist/train/optimizer.js';
import { countTokens, fullVocab } from '../../dist/train/vocab.js';

const [mode, ...rest] = process.argv.slice(2);
const args = new Map();
for (let i = 0; i < rest.length; i += 2) args.set(rest[i].replace(/^--/, ''), rest[i + 1]);
if (!['reference', 'gpu'].includes(mode) || !args.get('targets') || !args.get('out')) {
  console.error(
    'usage: train-check.mjs reference|gpu --targets DIR --out FILE [--reference FILE] [--steps N] ' +
      '[--max-seconds S] [--timings always]',
  );
  process.exit(2);
}
const log = (line) => console.log(`[train-check] ${line}`);
const trainFile = `${args.get('targets')}/train.arrow`;
const timedSteps = Number(args.get('steps') ?? (mode === 'gpu' ? 20 : 3));
const maxSeconds = Number(args.get('max-seconds') ?? (mode === 'gpu' ? 40 : 60));

/** The correctness model and batch: small enough to carry every gradient. */
const CHECK = {
  dim: 64,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  hiddenDim: 192,
  batch: 4,
  seq: 64,
  seed: 1234,
  adamSteps: 5,
};
/** Throughput shapes: stories260K's real targets (vocab 512), and a larger draft on random ids. */
const SHAPES = [
  {
    name: 'draft-small d256 L4 V512 b8x256 (real targets)',
    dim: 256,
    nLayers: 4,
    nHeads: 4,
    nKvHeads: 2,
    hiddenDim: 704,
    vocab: 512,
    batch: 8,
    seq: 256,
    data: 'targets',
  },
  {
    name: 'd512 L4 V512 b8x256 (real targets)',
    dim: 512,
    nLayers: 4,
    nHeads: 8,
    nKvHeads: 4,
    hiddenDim: 1408,
    vocab: 512,
    batch: 8,
    seq: 256,
    data: 'targets',
  },
  {
    name: 'd512 L8 V8192 b4x256 (random ids)',
    dim: 512,
    nLayers: 8,
    nHeads: 8,
    nKvHeads: 4,
    hiddenDim: 1408,
    vocab: 8192,
    batch: 4,
    seq: 256,
    data: 'random',
  },
];
const LOSS_WEIGHTS = { ce: 1, kl: 1, tv: 0 };
const ADAM = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
const LR = 3e-3;
const CLIP = 1;

const toBase64 = (values) => Buffer.from(new Float32Array(values).buffer).toString('base64');
const fromBase64 = (text) => {
  const bytes = Buffer.from(text, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
};

function modelConfig(shape, vocab, seq) {
  const { dim, nLayers, nHeads, nKvHeads, hiddenDim } = shape;
  return presetConfig('draft-small', vocab, seq, { dim, nLayers, nHeads, nKvHeads, hiddenDim });
}

/** The training loop's objective on `batch` and its gradients (the caller disposes value, grads and parts). */
function lossAndGradients(model, params, batch, vocab) {
  const targets = softTargets(batch, vocab, false);
  const inputs = tf.tensor2d(batch.inputs, [batch.rows, batch.seqLen], 'int32');
  let parts;
  const { value, grads } = tf.variableGrads(() => {
    parts = draftLoss(model.forward(inputs), targets, LOSS_WEIGHTS);
    return parts.total;
  }, [...params.values()]);
  inputs.dispose();
  return { value, grads, parts };
}

/** One optimiser step as the training loop takes it; resolves to the step's loss parts (read back). */
async function trainStep(model, params, optimizer, batch, vocab) {
  const { value, grads, parts } = lossAndGradients(model, params, batch, vocab);
  const byName = new Map([...params].map(([name, v]) => [name, grads[v.name]]));
  // The training loop's own on-device clipping (no synchronous read).
  const norm = clipByGlobalNorm(byName, CLIP);
  optimizer.apply(byName, LR);
  const [loss, ce, kl, gradNorm] = await Promise.all(
    [value, parts.ce, parts.kl, norm].map(async (t) => (await t.data())[0]),
  );
  tf.dispose([value, parts.ce, parts.kl, parts.tv, norm, ...byName.values()]);
  return { loss, ce, kl, gradNorm };
}

/** Loss and every gradient on the fixed batch, then the losses of CHECK.adamSteps AdamW steps. */
async function correctness(batch, vocab) {
  const config = modelConfig(CHECK, vocab.draftToTarget.length, CHECK.seq);
  const model = LlamaModel.fromWeights(randomWeights(config, { seed: CHECK.seed }), { trainable: true });
  const params = model.namedVariables();
  const { value, grads, parts } = lossAndGradients(model, params, batch, vocab);
  const gradients = {};
  for (const [name, v] of params) gradients[name] = await grads[v.name].data();
  const [loss, ce, kl] = await Promise.all([value, parts.ce, parts.kl].map(async (t) => (await t.data())[0]));
  tf.dispose([value, parts.ce, parts.kl, parts.tv, ...Object.values(grads)]);
  const optimizer = new AdamW(params, ADAM);
  const trajectory = [];
  for (let i = 0; i < CHECK.adamSteps; i++)
    trajectory.push((await trainStep(model, params, optimizer, batch, vocab)).loss);
  optimizer.dispose();
  model.dispose();
  return { loss, ce, kl, gradients, trajectory };
}

/** Compare a correctness result with the reference's: relative errors (max |Δ| / max |ref| per tensor). */
function compare(actual, expected) {
  const rel = (a, b) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
  let worstGradient = { name: '', relError: -1 };
  for (const [name, refValues] of Object.entries(expected.gradients)) {
    const values = actual.gradients[name];
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < refValues.length; i++) {
      diff = Math.max(diff, Math.abs(values[i] - refValues[i]));
      scale = Math.max(scale, Math.abs(refValues[i]));
    }
    const relError = diff / Math.max(scale, 1e-12);
    if (!(relError <= worstGradient.relError)) worstGradient = { name, relError };
  }
  return {
    loss: { actual: actual.loss, expected: expected.loss, relError: rel(actual.loss, expected.loss) },
    ce: { actual: actual.ce, expected: expected.ce, relError: rel(actual.ce, expected.ce) },
    kl: { actual: actual.kl, expected: expected.kl, relError: rel(actual.kl, expected.kl) },
    worstGradient,
    trajectoryRelError: Math.max(...actual.trajectory.map((l, i) => rel(l, expected.trajectory[i]))),
    trajectory: actual.trajectory,
  };
}

async function firstBatch(vocab, topK, batchSize, seqLen) {
  const batches = trainingBatches(
    { file: trainFile, vocab, seqLen, batchSize, shuffleRows: 256, seed: 1, topK },
    { epoch: 0, batch: 0 },
  );
  return { batches, first: (await batches.next()).value.batch };
}

function randomBatch(random, vocabSize, rows, seqLen) {
  const N = rows * seqLen;
  const ids = Int32Array.from({ length: N + 1 }, () => random.nextUint32() % vocabSize);
  return {
    rows,
    seqLen,
    inputs: ids.subarray(0, N),
    targets: ids.subarray(1),
    weights: new Float32Array(N).fill(1),
    topK: 0,
    topIds: new Int32Array(0),
    topLogprobs: new Float32Array(0),
  };
}

/** Tokens/s of training steps for one shape (after 3 warm-up steps, which compile shaders / pack XNNPACK weights). */
async function throughput(shape, topK) {
  const vocab = fullVocab(shape.vocab);
  const config = modelConfig(shape, shape.vocab, shape.seq);
  const model = LlamaModel.fromWeights(randomWeights(config, { seed: 1 }), { trainable: true });
  const params = model.namedVariables();
  const optimizer = new AdamW(params, ADAM);
  const random = new SeededRandom(7);
  const source = shape.data === 'targets' ? (await firstBatch(vocab, topK, shape.batch, shape.seq)).batches : undefined;
  const next = async () =>
    source ? (await source.next()).value.batch : randomBatch(random, shape.vocab, shape.batch, shape.seq);
  const warmup = mode === 'gpu' ? 3 : 2;
  const stepMs = [];
  let timedMs = 0;
  let lastLoss = NaN;
  let firstLoss = NaN;
  const started = performance.now();
  for (let i = 0; i < warmup + timedSteps; i++) {
    const batch = await next(); // data preparation is part of a step, as in the loop
    const t0 = performance.now();
    const { loss } = await trainStep(model, params, optimizer, batch, vocab);
    const ms = performance.now() - t0;
    if (i === 0) firstLoss = loss;
    lastLoss = loss;
    if (i >= warmup) {
      stepMs.push(ms);
      timedMs += ms;
      if (timedMs / 1000 > maxSeconds && stepMs.length >= 2) break;
    }
    if (i < warmup && (performance.now() - started) / 1000 > maxSeconds * 2) break; // hopeless: stop early
  }
  await source?.return();
  optimizer.dispose();
  model.dispose();
  const tokensPerStep = shape.batch * shape.seq;
  const sorted = [...stepMs].sort((a, b) => a - b);
  return {
    shape: shape.name,
    parameters: [...params.values()].reduce((s, v) => s + v.size, 0),
    tokens_per_step: tokensPerStep,
    timed_steps: stepMs.length,
    median_step_ms: sorted.length ? +sorted[Math.floor(sorted.length / 2)].toFixed(1) : null,
    tokens_per_s: stepMs.length ? Math.round((tokensPerStep * stepMs.length) / (timedMs / 1000)) : null,
    first_loss: +firstLoss.toFixed(4),
    last_loss: +lastLoss.toFixed(4),
    numTensors_after: tf.memory().numTensors,
  };
}

const { topK } = await countTokens(trainFile);
const vocab512 = fullVocab(512);

if (mode === 'reference') {
  const { first: batch, batches } = await firstBatch(vocab512, topK, CHECK.batch, CHECK.seq);
  await batches.return(); // only its first batch is needed: close its file now, not at garbage collection
  await initBackend('cpu', log);
  const onCpu = await correctness(batch, vocab512);
  await initBackend('wasm', log, { wasmThreads: 2 });
  const onWasm = await correctness(batch, vocab512);
  const cpuVsWasm = compare(onCpu, onWasm);
  log(
    `cpu vs wasm: loss rel ${cpuVsWasm.loss.relError.toExponential(2)}, ` +
      `worst gradient ${cpuVsWasm.worstGradient.name} rel ${cpuVsWasm.worstGradient.relError.toExponential(2)}, ` +
      `5-step losses rel ${cpuVsWasm.trajectoryRelError.toExponential(2)}`,
  );
  const wasm = [];
  for (const shape of SHAPES) {
    try {
      const result = await throughput(shape, topK);
      log(
        `wasm 2 threads, ${shape.name}: ${result.tokens_per_s} tokens/s ` +
          `(median step ${result.median_step_ms} ms over ${result.timed_steps}; ` +
          `${result.numTensors_after} tensors left)`,
      );
      wasm.push(result);
    } catch (error) {
      log(`wasm 2 threads, ${shape.name}: FAILED ${error instanceof Error ? error.message : String(error)}`);
      wasm.push({ shape: shape.name, error: error instanceof Error ? error.message : String(error) });
    }
  }
  const batchJson = {
    rows: batch.rows,
    seqLen: batch.seqLen,
    topK: batch.topK,
    inputs: [...batch.inputs],
    targets: [...batch.targets],
    weights: [...batch.weights],
    topIds: [...batch.topIds],
    topLogprobs: toBase64(batch.topLogprobs),
  };
  const reference = {
    made: new Date().toISOString(),
    machine:
      `${(await import('node:os')).cpus()[0]?.model ?? 'unknown CPU'}, ` +
      `${(await import('node:os')).cpus().length} cores`,
    check: CHECK,
    shapes: SHAPES,
    loss_weights: LOSS_WEIGHTS,
    batch: batchJson,
    wasm: {
      loss: onWasm.loss,
      ce: onWasm.ce,
      kl: onWasm.kl,
      trajectory: onWasm.trajectory,
      gradients: Object.fromEntries(Object.entries(onWasm.gradients).map(([n, g]) => [n, toBase64(g)])),
    },
    cpu_vs_wasm: {
      loss_rel: cpuVsWasm.loss.relError,
      worst_gradient: cpuVsWasm.worstGradient,
      trajectory_rel: cpuVsWasm.trajectoryRelError,
    },
    wasm_throughput: wasm,
  };
  writeFileSync(args.get('out'), JSON.stringify(reference));
  log(`reference written to ${args.get('out')}`);
  process.exit(0);
}

// --- gpu mode ------------------------------------------------------------------------------------
const reference = JSON.parse(readFileSync(args.get('reference'), 'utf8'));
const b = reference.batch;
const batch = {
  ...b,
  inputs: Int32Array.from(b.inputs),
  targets: Int32Array.from(b.targets),
  weights: Float32Array.from(b.weights),
  topIds: Int32Array.from(b.topIds),
  topLogprobs: fromBase64(b.topLogprobs),
};
const expected = {
  ...reference.wasm,
  gradients: Object.fromEntries(Object.entries(reference.wasm.gradients).map(([n, g]) => [n, fromBase64(g)])),
};
// Pass limits: ~100x the cpu-vs-wasm differences measured at pack time, and never tighter than 1e-3
// (f32 GPU reductions sum in another order).
const lossTolerance = Math.max(1e-4, 100 * reference.cpu_vs_wasm.loss_rel);
const gradientTolerance = Math.max(1e-3, 100 * reference.cpu_vs_wasm.worst_gradient.relError);
const trajectoryTolerance = Math.max(1e-3, 100 * reference.cpu_vs_wasm.trajectory_rel);

const result = {
  mode,
  node: process.version,
  tfjs: tf.version_core,
  adapter: null,
  auto_choice: null,
  backend: null,
  correctness: null,
  throughput: [],
  wasm_reference: reference.wasm_throughput,
  reference_machine: reference.machine,
};
const autoLines = [];
const choice = await initBackend('auto', (line) => autoLines.push(line));
result.auto_choice = autoLines.join(' ');
log(`auto (asynchronous reads): ${result.auto_choice}`);
if (choice.name === 'webgpu') {
  result.adapter = choice.adapter;
  log(`ADAPTER: ${choice.description}`);
} else {
  log(
    'NO ADAPTER: WebGPU is not available here (see the auto line above); ' +
      'correctness runs on wasm only, to check the bundle',
  );
}
result.backend = choice.name;
const actual = await correctness(batch, vocab512);
const comparison = compare(actual, expected);
const pass =
  comparison.loss.relError <= lossTolerance &&
  comparison.worstGradient.relError <= gradientTolerance &&
  comparison.trajectoryRelError <= trajectoryTolerance;
result.correctness = {
  pass,
  tolerances: { loss: lossTolerance, gradient: gradientTolerance, trajectory: trajectoryTolerance },
  ...comparison,
};
// Written after each phase, so that a run stopped by its time limit still leaves its results.
const save = () => writeFileSync(args.get('out'), JSON.stringify(result, null, 2));
save();
log(
  `CORRECTNESS on ${choice.name} vs wasm reference: ${pass ? 'PASS' : 'FAIL'} — ` +
    `loss ${comparison.loss.actual.toFixed(6)} vs ${comparison.loss.expected.toFixed(6)} ` +
    `(rel ${comparison.loss.relError.toExponential(2)}), ` +
    `worst gradient ${comparison.worstGradient.name} rel ${comparison.worstGradient.relError.toExponential(2)}, ` +
    `${CHECK.adamSteps} AdamW steps rel ${comparison.trajectoryRelError.toExponential(2)}`,
);
// --timings always: time the shapes on whatever backend was chosen (a local test of this path).
if (choice.name === 'webgpu' || args.get('timings') === 'always') {
  for (const shape of SHAPES) {
    try {
      const r = await throughput(shape, topK);
      const wasmRef = reference.wasm_throughput.find((w) => w.shape === shape.name);
      r.vs_wasm_2threads = wasmRef?.tokens_per_s ? +(r.tokens_per_s / wasmRef.tokens_per_s).toFixed(2) : null;
      if (r.timed_steps === 0)
        log(
          `THROUGHPUT ${choice.name}, ${shape.name}: ` +
            `no timed step (the warm-up steps alone took over ${2 * maxSeconds} s)`,
        );
      else
        log(
          `THROUGHPUT ${choice.name}, ${shape.name}: ${r.tokens_per_s} tokens/s ` +
            `(median step ${r.median_step_ms} ms over ${r.timed_steps}; ${r.vs_wasm_2threads}x wasm 2 threads)`,
        );
      result.throughput.push(r);
    } catch (error) {
      log(`THROUGHPUT ${choice.name}, ${shape.name}: FAILED ${error instanceof Error ? error.message : String(error)}`);
      result.throughput.push({ shape: shape.name, error: error instanceof Error ? error.message : String(error) });
    }
    save();
  }
}
save();
log(`written ${args.get('out')}`);
// Dawn keeps the process alive while its GPU object exists.
process.exit(pass ? 0 : 1);
