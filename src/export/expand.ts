/**
 * A draft over the target's whole vocabulary, whose greedy choices are the draft's own.
 *
 * A reduced-vocabulary draft (FR-Spec / EAGLE-3 style) has rows only for its `draftToTarget` ids,
 * and a draft may know fewer ids than the target's padded vocab_size. Engines need one row per
 * target id, so the expanded model has:
 *
 * - **input embedding** row t = the draft's row for t, or its `unk_draft_id` row for ids outside
 *   the draft vocabulary: exactly what the draft was fed in training;
 * - **output** row t = the draft's row for t, or, for the others, the *mean of a set of the draft's
 *   output rows* (by default all of them; `runExport` picks the rows with the lowest logits on the
 *   draft's own text, see probe.ts). Llama has no output bias and the final RMSNorm output h can
 *   point anywhere, so no fixed row has a logit below every draft row's for every h, except a
 *   convex combination of them: the mean row's logit is the mean of those rows' logits,
 *   mean_{j∈S}(w_j·h) ≤ max_j(w_j·h), with equality only when every logit in S equals the maximum.
 *   An outside id therefore never wins the argmax (exact ties aside), so greedy decoding is
 *   unchanged. Sampling is not: each outside id keeps probability ∝ exp(that mean logit), which is
 *   why S is the draft's least likely rows rather than all of them.
 *
 * The expanded model is untied (its output rows are not its embedding rows).
 */
import type { LlamaWeights } from '../model/weights.js';

export interface VocabularyExpansion {
  /** Target id of each draft row (absent: draft row i is target id i). */
  draftToTarget?: Int32Array;
  /** Draft row fed for input ids the draft does not know. */
  unkDraftId: number;
  /** Rows of the expanded model. */
  vocabSize: number;
  /** Draft rows averaged into the output row of ids outside the draft vocabulary (default: all). */
  outsideSourceRows?: ArrayLike<number>;
}

export interface ExpandedWeights {
  weights: LlamaWeights;
  /** Target ids whose output row is the never-winning mean row. */
  outsideIds: number;
}

/** The draft over `vocabSize` target ids (returned as is when nothing changes). */
export function expandVocabulary(draft: LlamaWeights, expansion: VocabularyExpansion): ExpandedWeights {
  const { config } = draft;
  const rows = config.vocabSize;
  const { vocabSize, unkDraftId } = expansion;
  const draftToTarget = expansion.draftToTarget ?? Int32Array.from({ length: rows }, (_, i) => i);
  if (draftToTarget.length !== rows)
    throw new Error(`draft vocabulary map has ${draftToTarget.length} entries for ${rows} rows`);
  if (!Number.isInteger(unkDraftId) || unkDraftId < 0 || unkDraftId >= rows)
    throw new Error(`unk_draft_id ${unkDraftId} is not a draft row (< ${rows})`);
  const identity = vocabSize === rows && draftToTarget.every((targetId, row) => targetId === row);
  if (identity) return { weights: draft, outsideIds: 0 };

  const rowOfTarget = new Int32Array(vocabSize).fill(-1);
  draftToTarget.forEach((targetId, row) => {
    if (targetId < 0 || targetId >= vocabSize)
      throw new Error(`draft row ${row} maps to target id ${targetId}, outside the ${vocabSize}-id vocabulary`);
    if (rowOfTarget[targetId] < 0) rowOfTarget[targetId] = row;
  });

  const dim = config.dim;
  const embedding = draft.tokenEmbedding.data; // [rows, dim]
  const output = (draft.output ?? draft.tokenEmbedding).data; // [rows, dim]
  // The mean of the source rows, accumulated in float64.
  const sources = expansion.outsideSourceRows ?? Int32Array.from({ length: rows }, (_, i) => i);
  if (sources.length === 0) throw new Error('no draft rows to average for the outside ids');
  const meanRow = new Float64Array(dim);
  for (let k = 0; k < sources.length; k++) {
    const row = sources[k];
    if (!Number.isInteger(row) || row < 0 || row >= rows)
      throw new Error(`outside source row ${row} is not a draft row (< ${rows})`);
    for (let i = 0; i < dim; i++) meanRow[i] += output[row * dim + i];
  }
  const meanOutput = Float32Array.from(meanRow, (sum) => sum / sources.length);

  const expandedEmbedding = new Float32Array(vocabSize * dim); // [vocabSize, dim]
  const expandedOutput = new Float32Array(vocabSize * dim); // [vocabSize, dim]
  let outsideIds = 0;
  for (let id = 0; id < vocabSize; id++) {
    const row = rowOfTarget[id];
    const inputRow = row >= 0 ? row : unkDraftId;
    expandedEmbedding.set(embedding.subarray(inputRow * dim, (inputRow + 1) * dim), id * dim);
    if (row >= 0) expandedOutput.set(output.subarray(row * dim, (row + 1) * dim), id * dim);
    else {
      expandedOutput.set(meanOutput, id * dim);
      outsideIds++;
    }
  }
  return {
    weights: {
      config: { ...config, vocabSize, tiedEmbeddings: false },
      tokenEmbedding: { shape: [vocabSize, dim], data: expandedEmbedding },
      layers: draft.layers,
      finalNorm: draft.finalNorm,
      output: { shape: [vocabSize, dim], data: expandedOutput },
    },
    outsideIds,
  };
}
