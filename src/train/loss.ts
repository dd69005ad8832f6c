/**
 * The draft's training objective on one packed micro-batch, all terms over trained completion
 * positions only:
 * - `ce`: cross-entropy on the target's own next token;
 * - `kl`: forward KL(p_target ‖ q_draft) to the target's top-k distribution (renormalised over the
 *   top-k ids the draft can predict), where the data has log-probabilities;
 * - `tv`: total-variation distance ½ Σ |p − q| (1 − acceptance probability when sampling), with p the
 *   top-k distribution or, without log-probabilities, the one-hot target.
 *
 * ce and kl are both "soft-target cross-entropies" −Σ_v c[n, v] · log q[n, v] with sparse
 * coefficients c (at most 1 + k per position), so they are two coefficient sets of one sparse
 * matrix and one softCrossEntropySums call: a fused native pass over the logits where the backend
 * has it, else logSoftmax with a hand-written gradient (model/loss.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { softCrossEntropySums, type SoftCrossEntropyOptions, type SparseCoefficients } from '../model/index.js';
import type { PackedBatch } from './data.js';
import type { DraftVocab } from './vocab.js';

export interface LossWeights {
  ce: number;
  kl: number;
  tv: number;
}

export interface LossParts {
  /** The weighted objective. */
  total: tf.Scalar;
  /** Mean cross-entropy on the target's tokens (nats), whatever the weights. */
  ce: tf.Scalar;
  /** Mean forward KL to the top-k (nats; 0 without log-probabilities). */
  kl: tf.Scalar;
  /**
   * Mean total-variation distance (computed only when its weight is > 0, else 0).
   * ce, kl and tv are kept (tf.keep): dispose them.
   */
  tv: tf.Scalar;
}

/** The batch's targets as loss coefficients over the draft vocabulary (built once per batch, on the host). */
export interface SoftTargets {
  /**
   * Sparse [N, V] coefficients, two sets per entry: set 0 = ce (1 / count at the target's draft
   * row), set 1 = kl (p_j / count at each top-k draft row).
   */
  coefficients: SparseCoefficients;
  /** Σ p log p of the kl term, so that the reported kl is the true KL (a constant for gradients). */
  klEntropyTerm: number;
  /** Target distributions for tv, rows weighted by 1 / count: [N · V] (empty when tv is off). */
  tvTargets: Float32Array;
  /** Weight of each row in the tv mean, and the constant ½·(p mass outside the draft vocabulary). */
  tvRowWeights: Float32Array;
  tvConstant: number;
  /** Trained positions (tokens that count). */
  tokens: number;
}

/** Turn a packed batch into loss coefficients over the draft vocabulary. */
export function softTargets(batch: PackedBatch, vocab: DraftVocab, withTv: boolean): SoftTargets {
  const N = batch.rows * batch.seqLen;
  const V = vocab.draftToTarget.length;
  const K = batch.topK;
  const tvTargets = withTv ? new Float32Array(N * V) : new Float32Array(0);
  const tvRowWeights = new Float32Array(withTv ? N : 0);
  let ceCount = 0;
  let klCount = 0;
  let tokens = 0;
  const hasTop = (n: number): boolean => K > 0 && batch.topIds[n * K] >= 0;
  for (let n = 0; n < N; n++) {
    if (!(batch.weights[n] > 0)) continue;
    tokens++;
    if (vocab.targetToDraft[batch.targets[n]] >= 0) ceCount++;
    if (hasTop(n)) klCount++;
  }
  // At most 1 + K entries per row.
  const rowPtr = new Int32Array(N + 1);
  const cols = new Int32Array(N * (1 + K));
  const coefs = new Float32Array(N * (1 + K) * 2);
  let nnz = 0;
  let klEntropyTerm = 0;
  let tvConstant = 0;
  const probs = new Float64Array(K);
  for (let n = 0; n < N; n++) {
    const w = batch.weights[n];
    if (w > 0) {
      const row = n * V;
      const targetDraftId = vocab.targetToDraft[batch.targets[n]];
      if (targetDraftId >= 0) {
        cols[nnz] = targetDraftId;
        coefs[2 * nnz] = w / ceCount;
        nnz++;
      }
      // The target's distribution over the draft vocabulary: top-k renormalised, else one-hot.
      let mass = 0;
      if (hasTop(n)) {
        for (let j = 0; j < K; j++) {
          const id = batch.topIds[n * K + j];
          const draftId = id >= 0 ? vocab.targetToDraft[id] : -1;
          probs[j] = draftId >= 0 ? Math.exp(batch.topLogprobs[n * K + j]) : 0;
          mass += probs[j];
        }
        if (mass > 0) {
          for (let j = 0; j < K; j++) {
            if (!(probs[j] > 0)) continue;
            const p = probs[j] / mass;
            const draftId = vocab.targetToDraft[batch.topIds[n * K + j]];
            cols[nnz] = draftId;
            coefs[2 * nnz + 1] = (w * p) / klCount;
            nnz++;
            klEntropyTerm += (w * p * Math.log(p)) / klCount;
            if (withTv) tvTargets[row + draftId] += p;
          }
        }
      } else if (withTv && targetDraftId >= 0) {
        tvTargets[row + targetDraftId] = 1;
        mass = 1;
      }
      if (withTv) {
        tvRowWeights[n] = w / tokens;
        if (!(mass > 0)) tvConstant += (0.5 * w) / tokens; // all of p lies outside the draft vocabulary
      }
    }
    rowPtr[n + 1] = nnz;
  }
  const coefficients = { rowPtr, cols: cols.slice(0, nnz), coefs: coefs.slice(0, 2 * nnz), sets: 2 };
  return { coefficients, klEntropyTerm, tvTargets, tvRowWeights, tvConstant, tokens };
}

/**
 * The weighted objective and its parts. logits: [B, T, V] → scalars (the caller disposes them).
 * Only `total` carries gradients.
 */
export function draftLoss(
  logits: tf.Tensor3D,
  targets: SoftTargets,
  weights: LossWeights,
  options: SoftCrossEntropyOptions = {},
): LossParts {
  const [B, T, V] = logits.shape;
  const N = B * T;
  let ce: tf.Scalar | undefined;
  let kl: tf.Scalar | undefined;
  const total = tf.tidy(() => {
    const flat = tf.reshape(logits, [N, V]) as tf.Tensor2D;
    const sums = softCrossEntropySums(flat, targets.coefficients, options); // [2]: ce, kl − Σ p log p
    const [ceSum, klSum] = tf.unstack(sums) as tf.Scalar[];
    // The parts, for reporting (kept: they outlive this scope).
    ce = tf.keep(tf.clone(ceSum)) as tf.Scalar;
    kl = tf.keep(tf.add(klSum, targets.klEntropyTerm)) as tf.Scalar;
    let objective = tf.add(
      tf.sum(tf.mul(sums, tf.tensor1d([weights.ce, weights.kl]))),
      weights.kl * targets.klEntropyTerm,
    ) as tf.Scalar;
    if (weights.tv > 0) objective = tf.add(objective, tf.mul(totalVariation(flat, targets), weights.tv)) as tf.Scalar;
    return objective;
  });
  // Kept: callers compute the loss inside tf.variableGrads, whose scope would free it.
  const tv = tf.keep(
    weights.tv > 0 ? tf.tidy(() => totalVariation(tf.reshape(logits, [N, V]) as tf.Tensor2D, targets)) : tf.scalar(0),
  );
  return { total, ce: ce as unknown as tf.Scalar, kl: kl as unknown as tf.Scalar, tv };
}

/** ½ Σ_n w_n Σ_v |p − q| + constant, by autodiff. x: [N, V] logits → scalar. */
function totalVariation(x: tf.Tensor2D, targets: SoftTargets): tf.Scalar {
  const [N, V] = x.shape;
  return tf.tidy(() => {
    const q = tf.softmax(x); // [N, V]
    const p = tf.tensor2d(targets.tvTargets, [N, V]);
    const rowWeights = tf.tensor2d(targets.tvRowWeights, [N, 1]);
    const perRow = tf.sum(tf.abs(tf.sub(p, q)), -1, true); // [N, 1]
    return tf.add(tf.mul(tf.sum(tf.mul(perRow, rowWeights)), 0.5), targets.tvConstant) as tf.Scalar;
  });
}
