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
import type { DraftCheckpoint } from '../formats/draft-checkpoint.js';
import { DecodeSession, argmax, LlamaModel } from '../model/index.js';
import type { Proposer, ProposerSession } from './proposer.js';
import {
  matchesFromTeacherForcing,
  samplingAcceptance,
  type CompletionMatches,
  type SamplingAcceptanceBounds,
} from './acceptance.js';

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

  /**
   * The draft of a checkpoint as every reader scores it: its weights (not trainable), its reduced
   * vocabulary's map and the row it was trained with for ids outside that vocabulary.
   */
  static fromCheckpoint(checkpoint: Pick<DraftCheckpoint, 'weights' | 'draftVocabulary' | 'training'>): DraftModel {
    const model = LlamaModel.fromWeights(checkpoint.weights, { trainable: false });
    const reduced = checkpoint.draftVocabulary;
    const unkDraftId =
      reduced && typeof checkpoint.training.unk_draft_id === 'number' ? checkpoint.training.unk_draft_id : undefined;
    try {
      return new DraftModel(model, reduced?.draftToTarget, reduced?.targetVocabSize, unkDraftId);
    } catch (error) {
      model.dispose();
      throw error;
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
  /** log q(completion token) at each position, NaN where the draft vocabulary lacks it (when asked for). */
  completionLogprobs?: Float32Array;
}

export interface TeacherForcedOptions {
  /** Most tokens (batch × padded length) per forward pass. */
  tokensPerBatch: number;
  /** Also give the draft's log-probability of each completion token (train's held-out cross-entropy). */
  completionLogprobs?: boolean;
  /** Most positions the output head projects at once (default: 2^25 / vocabulary size, 128 MiB of logits). */
  positionsPerHead?: number;
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
  const tokensPerBatch = Math.max(1, options.tokensPerBatch);
  // The head's logits are positions × V floats: keep each projection within 2^25 (128 MiB).
  const positionsPerHead = Math.max(1, options.positionsPerHead ?? Math.floor(2 ** 25 / draft.model.config.vocabSize));
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
      options.completionLogprobs ?? false,
      positionsPerHead,
    );
    group.forEach((inputIndex, j) => (results[inputIndex] = scored[j]));
    start = end;
  }
  return results;
}

/** A completion as eval and train's held-out scoring read it (a targets row has these fields). */
export interface CompletionRow {
  prompt_token_ids: ArrayLike<number>;
  completion_token_ids: ArrayLike<number>;
  top_k?: number;
  top_ids?: ArrayLike<number> | null;
  top_logprobs?: ArrayLike<number> | null;
}

/**
 * A draft's scores on whole rows — the prompt and every completion position, whatever the draft's
 * trained context (positions past it are attended to, as a serving engine's draft with its KV cache
 * does) — with each row's greedy match lengths. The one scorer of `fireopt eval` and of train's
 * held-out evaluation, so that selection and eval agree.
 */
export async function scoreDraftRows(
  draft: DraftModel,
  rows: readonly CompletionRow[],
  options: TeacherForcedOptions,
): Promise<Array<TeacherForcedOutput & { matches: CompletionMatches }>> {
  const scored = await teacherForcedDraft(
    draft,
    rows.map((row) => ({
      promptIds: row.prompt_token_ids,
      completionIds: row.completion_token_ids,
      topK: row.top_k,
      topIds: row.top_ids,
      topLogprobs: row.top_logprobs,
    })),
    options,
  );
  return scored.map((output, i) => ({
    ...output,
    matches: matchesFromTeacherForcing(rows[i].completion_token_ids, output.predicted),
  }));
}

async function scoreGroup(
  draft: DraftModel,
  group: readonly TeacherForcedInput[],
  paddedLength: number,
  withCompletionLogprobs: boolean,
  positionsPerHead: number,
): Promise<TeacherForcedOutput[]> {
  const B = group.length;
  const T = Math.max(1, paddedLength);
  const V = draft.model.config.vocabSize;
  const ids = new Int32Array(B * T);
  // The positions whose next-token distribution is read (row b's completion: its flat positions
  // b·T + base + t), numbered in order; `first[b]` is row b's first.
  const positions: number[] = [];
  const first: number[] = [];
  group.forEach((input, b) => {
    if (input.promptIds.length === 0) throw new Error('teacher forcing needs a non-empty prompt (BOS at least)');
    const sequence = [
      ...draft.toDraftIds(input.promptIds),
      ...draft.toDraftIds(Array.prototype.slice.call(input.completionIds, 0, -1) as number[]),
    ];
    ids.set(sequence, b * T);
    first.push(positions.length);
    const base = input.promptIds.length - 1;
    for (let t = 0; t < input.completionIds.length; t++) positions.push(b * T + base + t);
  });
  // Where the draft's q is needed: (position number, draft row) pairs for each target top-k id, then
  // the logit of each completion token (row 0 stands in where the draft lacks it: read as NaN).
  const pairPositions: number[] = [];
  const pairRows: number[] = [];
  const pair = (position: number, targetId: number) => {
    const row = draft.draftRowOf(targetId);
    pairPositions.push(position);
    pairRows.push(row < 0 ? 0 : row);
  };
  group.forEach((input, b) => {
    const K = input.topK ?? 0;
    if (!K || !input.topIds || !input.topLogprobs) return;
    for (let t = 0; t < input.completionIds.length; t++)
      for (let j = 0; j < K; j++) pair(first[b] + t, input.topIds[t * K + j]);
  });
  const completionStart = pairPositions.length;
  if (withCompletionLogprobs)
    group.forEach((input, b) => {
      for (let t = 0; t < input.completionIds.length; t++) pair(first[b] + t, input.completionIds[t]);
    });
  const needLogSumExp = pairPositions.length > 0;
  // The head projects `positionsPerHead` positions at a time: their logits are all it ever holds.
  const chunks: Array<{ best: tf.Tensor; logSumExp?: tf.Tensor; gathered?: tf.Tensor; pairs: number[] }> = [];
  try {
    const hidden = tf.tidy(() => {
      const states = draft.model.hidden(tf.tensor2d(ids, [B, T], 'int32')); // [B·T, C]
      return tf.gather(states, tf.tensor1d(positions, 'int32')) as tf.Tensor2D; // [positions, C]
    });
    try {
      // Each pair goes to its projection's list: its index, and its flat place in that projection's logits.
      const perHead = Array.from({ length: Math.ceil(positions.length / positionsPerHead) }, () => ({
        pairs: [] as number[],
        flat: [] as number[],
      }));
      pairPositions.forEach((position, i) => {
        const projection = perHead[Math.floor(position / positionsPerHead)];
        projection.pairs.push(i);
        projection.flat.push((position % positionsPerHead) * V + pairRows[i]);
      });
      for (const [c, { pairs, flat }] of perHead.entries()) {
        const start = c * positionsPerHead;
        const count = Math.min(positionsPerHead, positions.length - start);
        chunks.push(
          tf.tidy(() => {
            const logits = draft.model.head(tf.slice(hidden, [start, 0], [count, -1])); // [count, V]
            const best = tf.argMax(logits, -1);
            if (!needLogSumExp) return { best, pairs };
            const logSumExp = tf.logSumExp(logits, -1);
            if (!flat.length) return { best, logSumExp, pairs };
            const gathered = tf.gather(tf.reshape(logits, [-1]), tf.tensor1d(flat, 'int32'));
            return { best, logSumExp, gathered, pairs };
          }),
        );
      }
    } finally {
      hidden.dispose();
    }
    // Every result read together, asynchronously (the only way the webgpu backend reads under Node).
    const read = await Promise.all(
      chunks.map((chunk) =>
        Promise.all([
          chunk.best.data<'int32'>(),
          chunk.logSumExp?.data<'float32'>(),
          chunk.gathered?.data<'float32'>(),
        ]),
      ),
    );
    const best = new Int32Array(positions.length);
    const logSumExp = needLogSumExp ? new Float32Array(positions.length) : undefined;
    const gathered = needLogSumExp ? new Float32Array(pairPositions.length) : undefined;
    read.forEach(([chunkBest, chunkLogSumExp, chunkGathered], c) => {
      const offset = c * positionsPerHead;
      best.set(chunkBest, offset);
      if (logSumExp && chunkLogSumExp) logSumExp.set(chunkLogSumExp, offset);
      if (gathered && chunkGathered) chunks[c].pairs.forEach((i, j) => (gathered[i] = chunkGathered[j]));
    });
    let cursor = 0;
    let completionCursor = completionStart;
    return group.map((input, b) => {
      const n = input.completionIds.length;
      const at = first[b];
      const predicted = new Int32Array(n);
      for (let t = 0; t < n; t++) predicted[t] = draft.toTargetId(best[at + t]);
      let completionLogprobs: Float32Array | undefined;
      if (withCompletionLogprobs && logSumExp && gathered) {
        completionLogprobs = new Float32Array(n);
        for (let t = 0; t < n; t++, completionCursor++)
          completionLogprobs[t] =
            draft.draftRowOf(input.completionIds[t]) < 0 ? Number.NaN : gathered[completionCursor] - logSumExp[at + t];
      }
      const K = input.topK ?? 0;
      if (!K || !input.topIds || !input.topLogprobs || !logSumExp || !gathered)
        return { predicted, ...(completionLogprobs && { completionLogprobs }) };
      const sampling: SamplingAcceptanceBounds[] = [];
      for (let t = 0; t < n; t++) {
        const lse = logSumExp[at + t];
        const pairStart = cursor;
        sampling.push(
          samplingAcceptance(input.topIds, input.topLogprobs, t * K, K, (targetId) => {
            const j = positionOf(input.topIds as ArrayLike<number>, t * K, K, targetId);
            return draft.draftRowOf(targetId) < 0 ? 0 : Math.exp(gathered[pairStart + j] - lse);
          }),
        );
        cursor += K;
      }
      return { predicted, sampling, ...(completionLogprobs && { completionLogprobs }) };
    });
  } finally {
    for (const chunk of chunks) {
      chunk.best.dispose();
      chunk.logSumExp?.dispose();
      chunk.gathered?.dispose();
    }
  }
}

function positionOf(ids: ArrayLike<number>, offset: number, length: number, id: number): number {
  for (let j = 0; j < length; j++) if (ids[offset + j] === id) return j;
  return -1;
}
