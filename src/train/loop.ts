/**
 * One training run of one draft: the loop, in one function (nanoGPT's train.py shape). Everything
 * it needs to continue exactly after a crash is in `<dir>/state/`; the best draft so far (by the
 * held-out greedy hit rate) is `<dir>/draft/`.
 *
 * Every read of a tensor on this path is asynchronous (`await t.data()`), so training runs on the
 * webgpu backend, which under Node cannot read synchronously: one read per optimiser step (the
 * micro-batches' loss parts and the gradient norm together, after the update is queued; clipping
 * stays on the device), one per held-out batch, and one for all the tensors of a saved state or
 * checkpoint.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { RunError, UsageError } from '../errors.js';
import { writeDraftCheckpoint } from '../formats/draft-checkpoint.js';
import { LlamaModel, type LlamaConfig, type LlamaWeights } from '../model/index.js';
import { assembleWeights } from '../formats/llama-tensors.js';
import { dense } from '../model/weights.js';
import type { ProgressSink } from '../progress.js';
import type { Vocabulary } from '../tokenizer/vocabulary.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { TrainConfig } from './config.js';
import { trainingBatches, type StreamOptions } from './data.js';
import { evaluateHeldout, type HeldoutResult } from './heldout.js';
import { draftLoss, softTargets } from './loss.js';
import { AdamW, clipByGlobalNorm, learningRate } from './optimizer.js';
import { lossHitRateSvg, type PlotPoint } from './plot.js';
import { loadState, saveState, type TrainCounters } from './state.js';
import type { DraftVocab } from './vocab.js';
import type { DraftCost } from './candidates.js';

/** What every candidate of a run shares. */
export interface TrainInputs {
  train: TrainConfig;
  trainFile: string;
  heldoutFile: string;
  vocab: DraftVocab;
  /** Top-k alternatives per position in the targets (0 = none). */
  topK: number;
  /** Draft forward cost / target forward cost, for the expected speed-up. */
  /** c of a draft (and where it came from): one cost model for every candidate. */
  cost: (draft: LlamaWeights) => Promise<DraftCost>;
  /** The target's tokenizer, stored in each draft checkpoint. */
  vocabulary?: Vocabulary;
  /** Who the draft is for (the targets manifest's target identity). */
  target: Record<string, unknown>;
  resolvedConfig: unknown;
  resume: boolean;
}

/** One candidate: a size and a learning rate, in its own folder. */
export interface CandidatePlan {
  name: string;
  dir: string;
  model: LlamaConfig;
  lr: number;
  /** Wall-clock budget in ms (automatic selection); undefined = train.max_steps decides. */
  budgetMs?: number;
  /** Starting weights (called only when not resuming). */
  initialWeights: () => LlamaWeights;
  /** Facts recorded in the checkpoint (preset, init). */
  facts: Record<string, unknown>;
}

export interface CandidateResult {
  name: string;
  dir: string;
  model: LlamaConfig;
  lr: number;
  /** How its weights started (random, target, target-layers, draft). */
  init: string;
  parameters: number;
  /** c the expected speed-up assumes, and where it came from. */
  cost: DraftCost;
  steps: number;
  tokens: number;
  tokensPerSec: number;
  untrained: HeldoutResult;
  best: HeldoutResult & { step: number };
  stopReason: string;
}

export interface LoopDeps {
  progress: ProgressSink;
  signal?: AbortSignal;
}

interface MetricsLine {
  type: 'train' | 'eval';
  step: number;
  [key: string]: number | string;
}

/** Train one candidate (or continue it from its state); resolves when it stops. */
export async function trainCandidate(
  plan: CandidatePlan,
  inputs: TrainInputs,
  deps: LoopDeps,
): Promise<CandidateResult> {
  const { train, vocab } = inputs;
  const stateDir = join(plan.dir, 'state');
  const metricsPath = join(plan.dir, 'metrics.jsonl');
  const draftDir = join(plan.dir, 'draft');
  mkdirSync(plan.dir, { recursive: true });

  // --- Start or continue -----------------------------------------------------------------------
  let counters: TrainCounters;
  let weights: LlamaWeights;
  let moments: Map<string, Float32Array> | undefined;
  if (existsSync(join(stateDir, 'state.json'))) {
    if (!inputs.resume)
      throw new UsageError(
        `${plan.dir}: an earlier training run is there`,
        'HINT: add --resume to continue it, or choose another --out',
      );
    const loaded = loadState(stateDir);
    counters = loaded.state.counters;
    weights = await weightsFromState(loaded.state.model, loaded.values);
    moments = loaded.values;
    truncateSync(metricsPath, counters.metricsBytes); // lines after the state are recomputed
  } else {
    counters = {
      step: 0,
      position: { epoch: 0, batch: 0 },
      totalSteps: train.max_steps,
      tokens: 0,
      elapsedMs: 0,
      bestHitRate: -1,
      bestStep: 0,
      evalsWithoutImprovement: 0,
      metricsBytes: 0,
    };
    weights = plan.initialWeights();
    closeSync(openSync(metricsPath, 'w'));
  }
  const metricsFd = openSync(metricsPath, 'a');
  const writeMetrics = (line: MetricsLine): void => void writeSync(metricsFd, JSON.stringify(line) + '\n');

  const model = LlamaModel.fromWeights(weights, { trainable: true });
  const params = model.namedVariables();
  const optimizer = new AdamW(params, {
    beta1: train.beta1,
    beta2: train.beta2,
    eps: train.adam_eps,
    weightDecay: train.weight_decay,
  });
  if (moments) {
    for (const [name, m] of optimizer.state.m) m.assign(tf.tensor(moments.get(`m.${name}`) as Float32Array, m.shape));
    for (const [name, v] of optimizer.state.v) v.assign(tf.tensor(moments.get(`v.${name}`) as Float32Array, v.shape));
    optimizer.state.step = counters.step;
  }
  const parameters = [...params.values()].reduce((sum, v) => sum + v.size, 0);
  const cost = await inputs.cost(weights);
  const heldoutOptions = {
    file: inputs.heldoutFile,
    vocab,
    // Whole rows, as eval scores them, packed as many tokens per pass as a training micro-batch holds.
    tokensPerBatch: train.batch_size * train.seq_len,
    rows: train.eval_rows,
    draftTokens: train.search.draft_tokens,
    costRatio: cost.ratio,
    verifyCost: cost.verifyCostByK?.[train.search.draft_tokens - 1] ?? 1,
  };
  const stream: StreamOptions = {
    file: inputs.trainFile,
    vocab,
    seqLen: train.seq_len,
    batchSize: train.batch_size,
    shuffleRows: train.shuffle_rows,
    seed: train.seed,
    topK: inputs.topK,
  };
  const lossWeights = train.loss;
  const task = `train ${plan.name}`;
  const startedMs = Date.now();
  const elapsedMs = () => counters.elapsedMs + (Date.now() - startedMs);
  let elapsedAtStep3: number | undefined;

  const saveResumeState = async (): Promise<void> => {
    counters.metricsBytes = statSync(metricsPath).size;
    const tensors = new Map<string, tf.Tensor>(params);
    for (const [name, m] of optimizer.state.m) tensors.set(`m.${name}`, m);
    for (const [name, v] of optimizer.state.v) tensors.set(`v.${name}`, v);
    const header = {
      train, // compared by the next --resume (resume.ts)
      model: plan.model,
      draftToTarget: Array.from(vocab.draftToTarget),
      targetVocabSize: vocab.targetVocabSize,
      unkDraftId: vocab.unkDraftId,
      counters: { ...counters, elapsedMs: elapsedMs() },
    };
    await saveState(stateDir, header, tensors);
  };
  const evaluate = async (): Promise<HeldoutResult> => {
    const result = await evaluateHeldout(model, heldoutOptions);
    writeMetrics({
      type: 'eval',
      step: counters.step,
      hit_rate: result.hitRate,
      eval_ce: result.crossEntropy,
      acceptance_length: result.acceptanceLength,
      expected_speedup: result.expectedSpeedup,
      tokens: result.tokens,
    });
    return result;
  };
  const writeBest = async (result: HeldoutResult): Promise<void> => {
    const weights = await model.toWeightsAsync();
    writeDraftCheckpoint(
      draftDir,
      {
        weights,
        vocabulary: inputs.vocabulary,
        draftVocabulary: vocab.reduced
          ? { draftToTarget: vocab.draftToTarget, targetVocabSize: vocab.targetVocabSize }
          : undefined,
        target: inputs.target,
        training: {
          ...plan.facts,
          candidate: plan.name,
          lr: plan.lr,
          step: counters.step,
          tokens: counters.tokens,
          unk_draft_id: vocab.unkDraftId,
          heldout: result,
        },
      },
      inputs.resolvedConfig,
    );
    writeFileAtomic(join(plan.dir, 'best.json'), JSON.stringify({ step: counters.step, ...result }, null, 2) + '\n');
  };

  try {
    // The untrained draft's numbers come first: the baseline every later evaluation is read against.
    let untrained: HeldoutResult;
    if (counters.step === 0 && counters.metricsBytes === 0) {
      untrained = await evaluate();
      writeFileAtomic(join(plan.dir, 'untrained.json'), JSON.stringify(untrained) + '\n');
      counters.bestHitRate = untrained.hitRate;
      await writeBest(untrained);
      await saveResumeState();
    } else {
      untrained = readBest(plan.dir, 'untrained.json');
    }

    deps.progress({ kind: 'start', task, total: counters.totalSteps, unit: 'steps', done: counters.step });
    const batches = trainingBatches(stream, counters.position);
    try {
      let lastHitRate = counters.bestHitRate;
      const processTokensStart = counters.tokens;
      while (!counters.stopReason && counters.step < counters.totalSteps) {
        // --- One optimiser step: grad_accum micro-batches, clip, AdamW --------------------------
        const grads = new Map<string, tf.Tensor>();
        // Each micro-batch's [total, ce, kl, tv] stay on the device until the step's one read.
        const stepScalars: tf.Tensor[] = [];
        for (let micro = 0; micro < train.grad_accum; micro++) {
          const next = await batches.next();
          if (next.done) throw new RunError('the training data stream ended');
          const { batch, next: position } = next.value;
          const targets = softTargets(batch, vocab, lossWeights.tv > 0);
          const inputsTensor = tf.tensor2d(batch.inputs, [batch.rows, batch.seqLen], 'int32');
          let parts: ReturnType<typeof draftLoss> | undefined;
          const { value, grads: microGrads } = tf.variableGrads(() => {
            const logits = model.forward(inputsTensor);
            parts = draftLoss(logits, targets, lossWeights);
            return parts.total;
          }, [...params.values()]);
          inputsTensor.dispose();
          const p = parts as ReturnType<typeof draftLoss>;
          stepScalars.push(value, p.ce, p.kl, p.tv);
          for (const [name, variable] of params) {
            const g = microGrads[variable.name];
            const scaled = tf.mul(g, 1 / train.grad_accum);
            const sum = grads.get(name);
            grads.set(name, sum ? tf.add(sum, scaled) : scaled);
            if (sum) {
              sum.dispose();
              scaled.dispose();
            }
          }
          tf.dispose(Object.values(microGrads));
          counters.position = position;
          counters.tokens += batch.rows * batch.seqLen;
        }
        const gradNormTensor = clipByGlobalNorm(grads, train.grad_clip);
        const lr = learningRate(counters.step, {
          peakLr: plan.lr,
          warmupSteps: train.warmup_steps,
          totalSteps: counters.totalSteps,
          minLrRatio: train.min_lr_ratio,
        });
        optimizer.apply(grads, lr);
        tf.dispose([...grads.values()]);
        // The step's one read: every micro-batch's loss parts and the gradient norm, queued after the update.
        const packed = tf.stack([...stepScalars, gradNormTensor]);
        tf.dispose([...stepScalars, gradNormTensor]);
        const numbers = (await packed.data()) as Float32Array;
        packed.dispose();
        let loss = 0;
        let ce = 0;
        let kl = 0;
        let tv = 0;
        for (let micro = 0; micro < train.grad_accum; micro++) {
          loss += numbers[4 * micro] / train.grad_accum;
          ce += numbers[4 * micro + 1] / train.grad_accum;
          kl += numbers[4 * micro + 2] / train.grad_accum;
          tv += numbers[4 * micro + 3] / train.grad_accum;
        }
        const gradNorm = numbers[4 * train.grad_accum];
        counters.step++;
        const tokensPerSec = (counters.tokens - processTokensStart) / Math.max(1e-3, (Date.now() - startedMs) / 1000);
        writeMetrics({
          type: 'train',
          step: counters.step,
          lr,
          loss,
          ce,
          kl,
          tv,
          grad_norm: gradNorm,
          tokens: counters.tokens,
          tokens_per_s: Math.round(tokensPerSec),
          elapsed_s: elapsedMs() / 1000,
        });

        // A time-budgeted run sets its schedule length from its step time: first from steps 1–3, which
        // also pay the untrained evaluation and the first run's warm-up (so it errs short), then from
        // steps 4–13 alone, once; a resumed run keeps the length it had.
        if (plan.budgetMs !== undefined && counters.step === 3) {
          elapsedAtStep3 = elapsedMs();
          counters.totalSteps = budgetedSteps(plan.budgetMs, elapsedAtStep3, 3, elapsedAtStep3 / 3, train.max_steps);
        }
        if (plan.budgetMs !== undefined && counters.step === 3 + STEADY_STEPS && elapsedAtStep3 !== undefined) {
          const now = elapsedMs();
          const stepMs = (now - elapsedAtStep3) / STEADY_STEPS;
          counters.totalSteps = budgetedSteps(plan.budgetMs, now, counters.step, stepMs, train.max_steps);
        }
        if (!Number.isFinite(loss)) counters.stopReason = 'diverged (loss is not finite)';

        // --- Held-out evaluation, best checkpoint, early stopping ------------------------------
        const last = counters.step >= counters.totalSteps;
        let saved = false;
        if (!counters.stopReason && (counters.step % train.eval_every === 0 || last)) {
          const result = await evaluate();
          lastHitRate = result.hitRate;
          if (result.hitRate > counters.bestHitRate) {
            counters.bestHitRate = result.hitRate;
            counters.bestStep = counters.step;
            counters.evalsWithoutImprovement = 0;
            await writeBest(result);
          } else {
            counters.evalsWithoutImprovement++;
            if (train.patience > 0 && counters.evalsWithoutImprovement >= train.patience)
              counters.stopReason = `early stop: no better hit rate in ${train.patience} evaluations`;
          }
          await saveResumeState();
          saved = true;
        }
        if (plan.budgetMs !== undefined && elapsedMs() > plan.budgetMs * 1.25 && !counters.stopReason)
          counters.stopReason = 'time budget spent';
        if (!saved && (counters.step % train.checkpoint_every === 0 || counters.stopReason)) await saveResumeState();
        deps.progress({
          kind: 'advance',
          task,
          done: counters.step,
          total: counters.totalSteps,
          fields: { loss: loss.toFixed(3), hit: lastHitRate.toFixed(3), 'tok/s': Math.round(tokensPerSec) },
        });
        if (deps.signal?.aborted) {
          await saveResumeState();
          throw new RunError(
            `training interrupted at step ${counters.step}; the state is saved`,
            'HINT: run the same command with --resume to continue',
          );
        }
      }
    } finally {
      // Close the data stream (and its open targets file) where training stops mid-epoch.
      await batches.return(undefined);
    }
    if (!counters.stopReason) {
      counters.stopReason = counters.step >= train.max_steps ? 'max_steps reached' : 'time budget spent';
      await saveResumeState();
    }
    deps.progress({ kind: 'end', task, done: counters.step });
    writeFileAtomic(
      join(plan.dir, 'curves.svg'),
      lossHitRateSvg(`${plan.name}: loss and held-out hit rate`, ...readCurves(metricsPath)),
    );
    const best = readBest(plan.dir, 'best.json') as HeldoutResult & { step: number };
    const totalSeconds = elapsedMs() / 1000;
    return {
      name: plan.name,
      dir: plan.dir,
      model: plan.model,
      lr: plan.lr,
      init: String(plan.facts.init),
      parameters,
      cost,
      steps: counters.step,
      tokens: counters.tokens,
      tokensPerSec: counters.tokens / Math.max(totalSeconds, 1e-3),
      untrained,
      best,
      stopReason: counters.stopReason,
    };
  } finally {
    closeSync(metricsFd);
    optimizer.dispose();
    model.dispose();
  }
}

/** Steps after the first three over which a time-budgeted run measures its steady step time. */
const STEADY_STEPS = 10;

/**
 * The schedule length of a time-budgeted run: the steps done plus what the rest of the budget buys at
 * `stepMs` a step, 15% of it kept for evaluations and checkpoints; within 4 … `maxSteps`.
 */
export function budgetedSteps(
  budgetMs: number,
  elapsedMs: number,
  stepsDone: number,
  stepMs: number,
  maxSteps: number,
): number {
  const more = Math.floor(Math.max(0, budgetMs - elapsedMs) / (Math.max(stepMs, 1e-3) * 1.15));
  return Math.max(4, Math.min(maxSteps, stepsDone + more));
}

function readBest(dir: string, file: string): HeldoutResult & { step: number } {
  return JSON.parse(readFileSync(join(dir, file), 'utf8')) as HeldoutResult & { step: number };
}

/** Training loss and hit-rate points of a metrics.jsonl. */
export function readCurves(metricsPath: string): [PlotPoint[], PlotPoint[]] {
  const loss: PlotPoint[] = [];
  const hitRate: PlotPoint[] = [];
  for (const line of readFileSync(metricsPath, 'utf8').split('\n')) {
    if (!line) continue;
    const entry = JSON.parse(line) as MetricsLine;
    if (entry.type === 'train') loss.push({ step: entry.step, value: Number(entry.loss) });
    else hitRate.push({ step: entry.step, value: Number(entry.hit_rate) });
  }
  return [loss, hitRate];
}

/**
 * LlamaWeights from a resume state's variables (tfjs layout names → the model's own conversion): every
 * tensor the config has, Qwen2's attention biases and Qwen3's q/k norms included.
 */
export async function weightsFromState(config: LlamaConfig, values: Map<string, Float32Array>): Promise<LlamaWeights> {
  // The state stores the model's variables in tfjs layout; build a model-layout LlamaWeights by
  // loading them into a throwaway model (fromWeights of zeros, then assign) and reading back.
  const zeroed = assembleWeights(config, 'resume state', (_key, shape) => dense(shape).data);
  const zeros = LlamaModel.fromWeights(zeroed, { trainable: false });
  try {
    for (const [name, variable] of zeros.namedVariables()) {
      const data = values.get(name);
      if (!data) throw new RunError(`resume state lacks ${name}`);
      variable.assign(tf.tensor(data, variable.shape));
    }
    return await zeros.toWeightsAsync();
  } finally {
    zeros.dispose();
  }
}
