/**
 * A tfjs draft model as a proposer, in two forms that give the same greedy match lengths:
 * - `DraftModelProposer`: incremental sessions over a KV cache (propose k tokens autoregressively,
 *   roll them back, append the target's tokens) — the reference, and what a live loop would use;
 * - `teacherForcedDraft`: one batched causal forward pass per group of completions. A greedy draft's
 *   proposals agree with the target's tokens exactly as long as its teacher-forced top-1 does (see
 *   acceptance.ts), so this gives every m_t for every k at the cost of scoring each token once —
 *   plus the draft distribution q at the target's top-k ids for sampling acceptance.
 *
 * A draft with a reduced vocabulary (`draftToTarget`) takes target ids mapped to draft ids as input
 * (ids outside the draft vocabulary map to `unkDraftId`, the row the draft was trained with for them
 * — a checkpoint's `training.unk_draft_id`; without one, the draft row of the target's id 0, `<unk>`
 * in Llama vocabularies, or row 0) and its outputs are mapped back through `draftToTarget`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { DecodeSession, argmax, type LlamaModel } from '../model/index.js';
import type { Proposer, ProposerSession } from './proposer.js';
import { samplingAcceptance, type SamplingAcceptanceBounds } from './acceptance.js';

/** A draft model together with its vocabulary mapping. */
export class DraftModel {
  /** Draft row of each target id (identity when the vocabulary is not reduced). */
  private readonly targetToDraft?: Int32Array;

  constructor(
    readonly model: LlamaModel,
    /** Target id of each draft row, for a reduced vocabulary. */
    readonly draftToTarget?: Int32Array,
    targetVocabSize?: number,
    /** Draft row fed for input ids outside a reduced vocabulary (the checkpoint's `training.unk_draft_id`). */
    unkDraftId?: number,
  ) {
    if (draftToTarget) {
      const size = targetVocabSize ?? Math.max(...draftToTarget) + 1;
      const inverse = new Int32Array(size).fill(-1);
      draftToTarget.forEach((targetId, draftId) => {
        if (inverse[targetId] < 0) inverse[targetId] = draftId;
      });
      if (
        unkDraftId !== undefined &&
        !(Number.isInteger(unkDraftId) && unkDraftId >= 0 && unkDraftId < draftToTarget.length)
      ) {
        throw new RangeError(
          `unkDraftId ${unkDraftId} is not a row of the ${draftToTarget.length}-row draft vocabulary`,
        );
      }
      const unknown = unkDraftId ?? (inverse[0] >= 0 ? inverse[0] : 0);
      for (let i = 0; i < size; i++) if (inverse[i] < 0) inverse[i] = unknown;
      this.targetToDraft = inverse;
    }
  }

  /** Draft input ids for target ids. */
  toDraftIds(targetIds: ArrayLike<number>): number[] {
    const map = this.targetToDraft;
    const out = new Array<number>(targetIds.length);
    for (let i = 0; i < targetIds.length; i++) out[i] = map ? (map[targetIds[i]] ?? map[0]) : targetIds[i];
    return out;
  }

  /** Target id of a draft output row. */
  toTargetId(draftId: number): number {
    return this.draftToTarget ? this.draftToTarget[draftId] : draftId;
  }

  /** Draft row that holds a target id's probability, or −1 when the reduced vocabulary lacks it. */
  draftRowOf(targetId: number): number {
    if (!this.targetToDraft) return targetId < this.model.config.vocabSize ? targetId : -1;
    const row = this.targetToDraft[targetId];
    return row !== undefined && this.draftToTarget?.[row] === targetId ? row : -1;
  }
}

/** Greedy proposals from a draft model with a KV cache; one session per sequence. */
export class DraftModelProposer implements Proposer {
  constructor(
    readonly draft: DraftModel,
    readonly name = 'draft',
  ) {}

  async open(promptIds: readonly number[]): Promise<ProposerSession> {
    if (promptIds.length === 0) throw new Error('a draft session needs a non-empty prompt (BOS at least)');
    const { draft } = this;
    const vocabSize = draft.model.config.vocabSize;
    const session = new DecodeSession(draft.model);
    let logits: Float32Array;
    try {
      logits = await session.feed(draft.toDraftIds(promptIds));
    } catch (error) {
      session.dispose();
      throw error;
    }
    let lastRow = (logits.length / vocabSize - 1) * vocabSize; // the row predicting the next token
    return {
      async propose(k: number): Promise<number[]> {
        const contextLength = session.length;
        const proposal: number[] = [];
        let rowLogits = logits;
        let row = lastRow;
        try {
          for (let i = 0; i < k; i++) {
            const next = argmax(rowLogits, row, vocabSize);
            proposal.push(draft.toTargetId(next));
            if (i + 1 === k) break;
            rowLogits = await session.feed([next]);
            row = 0;
          }
        } finally {
          session.truncate(contextLength);
        }
        return proposal;
      },
      async append(tokenIds: readonly number[]): Promise<void> {
        if (tokenIds.length === 0) return;
        logits = await session.feed(draft.toDraftIds(tokenIds));
        lastRow = (tokenIds.length - 1) * vocabSize;
      },
      dispose: () => session.dispose(),
    };
  }
}

/** One completion to score by teacher forcing. */
export interface TeacherForcedInput {
  promptIds: ArrayLike<number>;
  completionIds: ArrayLike<number>;
  /** Target top-k alternatives per completion position (flattened [N × topK]), when known. */
  topK?: number;
  topIds?: ArrayLike<number> | null;
  topLogprobs?: ArrayLike<number> | null;
}

export interface TeacherForcedOutput {
  /** Draft top-1 (target ids) at each completion position. */
  predicted: Int32Array;
  /** Sampling-acceptance bounds per completion position (when the input had top-k). */
  sampling?: SamplingAcceptanceBounds[];
}

export interface TeacherForcedOptions {
  /** Most tokens (batch × padded length) per forward pass. */
  tokensPerBatch: number;
}

/**
 * Teacher-forced draft predictions for many completions, batched: inputs are sorted by length and
 * grouped so that batch × padded length stays within `tokensPerBatch` (right padding: the causal
 * mask keeps it from touching real positions). Results come back in input order.
 */
export async function teacherForcedDraft(
  draft: DraftModel,
  inputs: readonly TeacherForcedInput[],
  options: TeacherForcedOptions = { tokensPerBatch: 4096 },
): Promise<TeacherForcedOutput[]> {
  // Input sequence: prompt + completion[0..N−1); position promptLength − 1 + t predicts completion[t].
  const lengths = inputs.map((input) => input.promptIds.length + Math.max(0, input.completionIds.length - 1));
  // The logits of one pass are batch × length × V floats: keep them within 2^25 (128 MiB).
  const tokensPerBatch = Math.max(
    1,
    Math.min(options.tokensPerBatch, Math.floor(2 ** 25 / draft.model.config.vocabSize)),
  );
  const order = inputs.map((_, i) => i).sort((a, b) => lengths[a] - lengths[b]);
  const results = new Array<TeacherForcedOutput>(inputs.length);
  let start = 0;
  while (start < order.length) {
    let end = start + 1;
    while (end < order.length && (end - start + 1) * lengths[order[end]] <= tokensPerBatch) end++;
    const group = order.slice(start, end);
    const scored = await scoreGroup(
      draft,
      group.map((i) => inputs[i]),
      lengths[order[end - 1]],
    );
    group.forEach((inputIndex, j) => (results[inputIndex] = scored[j]));
    start = end;
  }
  return results;
}

async function scoreGroup(
  draft: DraftModel,
  group: readonly TeacherForcedInput[],
  paddedLength: number,
): Promise<TeacherForcedOutput[]> {
  const B = group.length;
  const T = Math.max(1, paddedLength);
  const V = draft.model.config.vocabSize;
  const ids = new Int32Array(B * T);
  group.forEach((input, b) => {
    if (input.promptIds.length === 0) throw new Error('teacher forcing needs a non-empty prompt (BOS at least)');
    const sequence = [
      ...draft.toDraftIds(input.promptIds),
      ...draft.toDraftIds(Array.prototype.slice.call(input.completionIds, 0, -1) as number[]),
    ];
    ids.set(sequence, b * T);
  });
  // Where the draft's q is needed: (flat logits index, position) pairs for each target top-k id.
  const gatherIndices: number[] = [];
  group.forEach((input, b) => {
    const K = input.topK ?? 0;
    if (!K || !input.topIds || !input.topLogprobs) return;
    const base = input.promptIds.length - 1;
    for (let t = 0; t < input.completionIds.length; t++) {
      for (let j = 0; j < K; j++) {
        const row = draft.draftRowOf(input.topIds[t * K + j]);
        gatherIndices.push(row < 0 ? 0 : (b * T + base + t) * V + row);
      }
    }
  });
  const kept = tf.tidy(() => {
    const logits = draft.model.forward(tf.tensor2d(ids, [B, T], 'int32')); // [B, T, V]
    const best = tf.argMax(logits, -1); // [B, T]
    if (!gatherIndices.length) return { best };
    const logSumExp = tf.logSumExp(logits, -1); // [B, T]
    const gathered = tf.gather(tf.reshape(logits, [-1]), tf.tensor1d(gatherIndices, 'int32')); // [pairs]
    return { best, logSumExp, gathered };
  });
  const argmaxTensor = kept.best;
  const logSumExpTensor = 'logSumExp' in kept ? kept.logSumExp : undefined;
  const gatheredTensor = 'gathered' in kept ? kept.gathered : undefined;
  try {
    // The three results read together, asynchronously (the only way the webgpu backend reads under Node).
    const [best, logSumExp, gathered] = await Promise.all([
      argmaxTensor.data<'int32'>(),
      logSumExpTensor?.data<'float32'>(),
      gatheredTensor?.data<'float32'>(),
    ]);
    let cursor = 0;
    return group.map((input, b) => {
      const n = input.completionIds.length;
      const base = input.promptIds.length - 1;
      const predicted = new Int32Array(n);
      for (let t = 0; t < n; t++) predicted[t] = draft.toTargetId(best[b * T + base + t]);
      const K = input.topK ?? 0;
      if (!K || !input.topIds || !input.topLogprobs || !logSumExp || !gathered) return { predicted };
      const sampling: SamplingAcceptanceBounds[] = [];
      for (let t = 0; t < n; t++) {
        const lse = logSumExp[b * T + base + t];
        const first = cursor;
        sampling.push(
          samplingAcceptance(input.topIds, input.topLogprobs, t * K, K, (targetId) => {
            const j = positionOf(input.topIds as ArrayLike<number>, t * K, K, targetId);
            return draft.draftRowOf(targetId) < 0 ? 0 : Math.exp(gathered[first + j] - lse);
          }),
        );
        cursor += K;
      }
      return { predicted, sampling };
    });
  } finally {
    argmaxTensor.dispose();
    logSumExpTensor?.dispose();
    gatheredTensor?.dispose();
  }
}

function positionOf(ids: ArrayLike<number>, offset: number, length: number, id: number): number {
  for (let j = 0; j < length; j++) if (ids[offset + j] === id) return j;
  return -1;
}
