/**
 * Held-out evaluation during training: teacher-forced greedy predictions of the draft on the
 * held-out target completions. The greedy hit rate is P(draft's top-1 = target's token); for a
 * deterministic greedy draft the run of consecutive hits from each position is exactly how many
 * drafts greedy speculative decoding accepts there, which gives the expected speed-up (the
 * speculation module's math). Every read of a tensor is asynchronous (one per batch, argmax and
 * cross-entropy together), so it runs on the webgpu backend too.
 */
import * as tf from '@tensorflow/tfjs-core';
import { crossEntropyLoss, type LlamaModel } from '../model/index.js';
import {
  acceptanceLength,
  emptyCounts,
  matchesFromTeacherForcing,
  simulateGreedy,
  speedupFromTau,
} from '../speculation/index.js';
import { heldoutSequences, type HeldoutSequence } from './data.js';
import { inputDraftId, type DraftVocab } from './vocab.js';

export interface HeldoutResult {
  /** Trained completion positions evaluated. */
  tokens: number;
  /** Fraction of them where the draft's top-1 is the target's token. */
  hitRate: number;
  /** Mean cross-entropy (nats) on the positions whose token is in the draft vocabulary. */
  crossEntropy: number;
  /** τ: tokens per target forward pass with `draftTokens` drafts per step. */
  acceptanceLength: number;
  /** τ / (k·c + v_k), v_k = 1 unless measured. */
  expectedSpeedup: number;
}

export interface HeldoutOptions {
  file: string;
  vocab: DraftVocab;
  seqLen: number;
  batchSize: number;
  rows: number;
  draftTokens: number;
  costRatio: number;
  /** The target's cost of verifying k + 1 tokens relative to one decode step (1 unless measured). */
  verifyCost?: number;
}

/** Evaluate `model` on the held-out file (streamed, batch by batch). */
export async function evaluateHeldout(model: LlamaModel, options: HeldoutOptions): Promise<HeldoutResult> {
  let tokens = 0;
  let hits = 0;
  let ceSum = 0;
  let ceCount = 0;
  const counts = emptyCounts(options.draftTokens);
  let pending: HeldoutSequence[] = [];
  const flush = async (): Promise<void> => {
    if (!pending.length) return;
    const rows = pending.length;
    const T = Math.max(...pending.map((s) => s.ids.length)) - 1;
    const inputs = new Int32Array(rows * T);
    const ceTargets = new Int32Array(rows * T);
    const ceWeights = new Float32Array(rows * T);
    let batchCeCount = 0;
    pending.forEach((s, r) => {
      for (let t = 0; t < T; t++) {
        inputs[r * T + t] = inputDraftId(options.vocab, t < s.ids.length ? s.ids[t] : -1);
        const draftId = t + 1 < s.ids.length && s.weights[t + 1] > 0 ? options.vocab.targetToDraft[s.ids[t + 1]] : -1;
        if (draftId >= 0) {
          ceTargets[r * T + t] = draftId;
          ceWeights[r * T + t] = 1;
          batchCeCount++;
        }
      }
    });
    const [argmax, meanCe] = tf.tidy(() => {
      const logits = model.forward(tf.tensor2d(inputs, [rows, T], 'int32')); // [rows, T, V]
      return [
        tf.argMax(logits, -1),
        crossEntropyLoss(logits, tf.tensor2d(ceTargets, [rows, T], 'int32'), tf.tensor2d(ceWeights, [rows, T])),
      ];
    });
    // Both read back together (asynchronously: the webgpu backend cannot read synchronously).
    const [predictedValues, meanCeValues] = await Promise.all([argmax.data(), meanCe.data()]);
    argmax.dispose();
    meanCe.dispose();
    const predicted = predictedValues as Int32Array;
    ceSum += (meanCeValues as Float32Array)[0] * batchCeCount;
    ceCount += batchCeCount;
    pending.forEach((s, r) => {
      const completion: number[] = [];
      const guesses: number[] = [];
      for (let t = 0; t + 1 < s.ids.length; t++) {
        if (!(s.weights[t + 1] > 0)) continue;
        const target = s.ids[t + 1];
        const guess = options.vocab.draftToTarget[predicted[r * T + t]];
        tokens++;
        if (guess === target) hits++;
        completion.push(target);
        guesses.push(guess);
      }
      simulateGreedy(matchesFromTeacherForcing(completion, guesses, options.draftTokens), options.draftTokens, counts);
    });
    pending = [];
  };
  for await (const sequence of heldoutSequences(options.file, options.seqLen, options.rows)) {
    pending.push(sequence);
    if (pending.length === options.batchSize) await flush();
  }
  await flush();
  const tau = acceptanceLength(counts);
  return {
    tokens,
    hitRate: tokens ? hits / tokens : 0,
    crossEntropy: ceCount ? ceSum / ceCount : 0,
    acceptanceLength: tau,
    expectedSpeedup: speedupFromTau(tau, options.draftTokens, options.costRatio, options.verifyCost ?? 1),
  };
}
