/**
 * The draft's vocabulary. Either the target's whole vocabulary, or (EAGLE-3, FR-Spec) only its N
 * most frequent tokens in the training targets: the draft's embedding and output rows are then
 * those tokens', and every reader of the draft's outputs maps a draft row back to a target id.
 */
import { readTargetRows } from '../formats/targets-schema.js';

export interface DraftVocab {
  /** Target vocabulary size. */
  targetVocabSize: number;
  /** Target id of each draft row: [draftVocabSize]. */
  draftToTarget: Int32Array;
  /** Draft row of each target id, −1 when the draft cannot predict it: [targetVocabSize]. */
  targetToDraft: Int32Array;
  /** Draft row fed to the model for an input id outside the draft vocabulary. */
  unkDraftId: number;
  reduced: boolean;
}

/** Token frequencies of the training targets (prompts and completions), streamed. */
export async function countTokens(
  trainFile: string,
): Promise<{ counts: Float64Array; maxId: number; rows: number; topK: number }> {
  let counts = new Float64Array(1024);
  let maxId = -1;
  let rows = 0;
  let topK = 0;
  const add = (id: number): void => {
    if (id >= counts.length) {
      const grown = new Float64Array(Math.max(id + 1, counts.length * 2));
      grown.set(counts);
      counts = grown;
    }
    counts[id] += 1;
    if (id > maxId) maxId = id;
  };
  for await (const row of readTargetRows(trainFile)) {
    rows++;
    if (row.top_ids && row.top_logprobs) topK = Math.max(topK, row.top_k);
    for (const id of row.prompt_token_ids) add(id);
    for (const id of row.completion_token_ids) add(id);
    if (row.top_ids) for (const id of row.top_ids) if (id >= 0) add(id);
  }
  return { counts: counts.subarray(0, maxId + 1), maxId, rows, topK };
}

/** The full target vocabulary as the draft's (identity maps). */
export function fullVocab(targetVocabSize: number, unkId = 0): DraftVocab {
  const identity = Int32Array.from({ length: targetVocabSize }, (_, i) => i);
  return {
    targetVocabSize,
    draftToTarget: identity,
    targetToDraft: Int32Array.from(identity),
    unkDraftId: unkId,
    reduced: false,
  };
}

/**
 * The `size` most frequent target ids (ties to the lower id), in frequency order. Input ids outside
 * it are fed as the target's unknown token when that is kept, else as the least frequent draft row.
 */
export function reducedVocab(
  counts: ArrayLike<number>,
  targetVocabSize: number,
  size: number,
  targetUnkId?: number,
): DraftVocab {
  if (size >= targetVocabSize) return fullVocab(targetVocabSize, targetUnkId ?? 0);
  const order = Array.from({ length: targetVocabSize }, (_, i) => i).sort(
    (a, b) => (counts[b] ?? 0) - (counts[a] ?? 0) || a - b,
  );
  return vocabFromMap(Int32Array.from(order.slice(0, size)), targetVocabSize, targetUnkId);
}

/** Rebuild the maps from a stored draft→target map (a checkpoint's draft_vocab.json). */
export function vocabFromMap(draftToTarget: Int32Array, targetVocabSize: number, targetUnkId?: number): DraftVocab {
  const targetToDraft = new Int32Array(targetVocabSize).fill(-1);
  draftToTarget.forEach((targetId, draftId) => (targetToDraft[targetId] = draftId));
  const unkDraftId =
    targetUnkId !== undefined && targetToDraft[targetUnkId] >= 0
      ? targetToDraft[targetUnkId]
      : draftToTarget.length - 1;
  return { targetVocabSize, draftToTarget, targetToDraft, unkDraftId, reduced: draftToTarget.length < targetVocabSize };
}

/** The draft row to feed for a target input id. */
export function inputDraftId(vocab: DraftVocab, targetId: number): number {
  const id = targetId >= 0 && targetId < vocab.targetVocabSize ? vocab.targetToDraft[targetId] : -1;
  return id >= 0 ? id : vocab.unkDraftId;
}
