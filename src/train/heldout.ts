/**
 * Held-out evaluation during training, scored exactly as `fireopt eval` scores a draft: whole rows
 * (prompt and every completion position, however long the row: positions past the draft's trained
 * context are attended to, as a serving engine's draft does with its KV cache), through eval's own
 * scorer (`scoreDraftRows`). The greedy hit rate is P(draft's top-1 = target's token) over every
 * completion position; for a deterministic greedy draft the run of consecutive hits from each position
 * is exactly how many drafts greedy speculative decoding accepts there, which gives the expected
 * speed-up (the speculation module's math). Every read of a tensor is asynchronous, so it runs on the
 * webgpu backend too.
 */
import { InputError } from '../errors.js';
import { readTargetRows, TARGETS_RERUN_HINT, type TargetRow } from '../formats/targets-schema.js';
import type { LlamaModel } from '../model/index.js';
import {
  acceptanceLength,
  DraftModel,
  emptyCounts,
  scoreDraftRows,
  simulateGreedy,
  speedupFromTau,
} from '../speculation/index.js';
import type { DraftVocab } from './vocab.js';

export interface HeldoutResult {
  /** Completion positions evaluated (every one of each row, as eval counts them). */
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
  /** Most tokens (batch × padded row length) per teacher-forced pass. */
  tokensPerBatch: number;
  /** The first this many rows (0 = all), as `eval.limit` counts them. */
  rows: number;
  draftTokens: number;
  costRatio: number;
  /** The target's cost of verifying k + 1 tokens relative to one decode step (1 unless measured). */
  verifyCost?: number;
}

/** Rows scored per pass of the scorer (memory stays bounded by it, as eval's `chunk_rows`). */
const CHUNK_ROWS = 256;

/**
 * The first `limit` rows of a held-out file (0 = all), streamed in chunks of CHUNK_ROWS; an empty
 * prompt is refused as eval refuses it.
 */
export async function* heldoutChunks(file: string, limit: number): AsyncGenerator<TargetRow[]> {
  let count = 0;
  let chunk: TargetRow[] = [];
  for await (const row of readTargetRows(file)) {
    if (limit > 0 && count >= limit) break;
    if (row.prompt_token_ids.length === 0)
      throw new InputError(`${file}: row ${row.id} has an empty prompt`, `HINT: re-run \`${TARGETS_RERUN_HINT}\``);
    count++;
    chunk.push(row);
    if (chunk.length === CHUNK_ROWS) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length) yield chunk;
}

/** The draft being trained, seen through the checkpoint's eyes (its vocabulary map and unknown row). */
function draftOfTraining(model: LlamaModel, vocab: DraftVocab): DraftModel {
  return vocab.reduced
    ? new DraftModel(model, vocab.draftToTarget, vocab.targetVocabSize, vocab.unkDraftId)
    : new DraftModel(model);
}

/** Evaluate `model` on the held-out file (streamed, chunk by chunk). */
export async function evaluateHeldout(model: LlamaModel, options: HeldoutOptions): Promise<HeldoutResult> {
  const draft = draftOfTraining(model, options.vocab);
  let tokens = 0;
  let hits = 0;
  let ceSum = 0;
  let ceCount = 0;
  const counts = emptyCounts(options.draftTokens);
  for await (const chunk of heldoutChunks(options.file, options.rows)) {
    const scored = await scoreDraftRows(draft, chunk, {
      tokensPerBatch: options.tokensPerBatch,
      completionLogprobs: true,
    });
    for (const { matches, completionLogprobs } of scored) {
      simulateGreedy(matches, options.draftTokens, counts);
      tokens += matches.matchLengths.length;
      for (const length of matches.matchLengths) if (length >= 1) hits++;
      for (const logprob of completionLogprobs ?? []) {
        if (Number.isNaN(logprob)) continue; // the draft vocabulary lacks the token
        ceSum -= logprob;
        ceCount++;
      }
    }
  }
  const tau = acceptanceLength(counts);
  return {
    tokens,
    hitRate: tokens ? hits / tokens : 0,
    crossEntropy: ceCount ? ceSum / ceCount : 0,
    acceptanceLength: tau,
    expectedSpeedup: speedupFromTau(tau, options.draftTokens, options.costRatio, options.verifyCost ?? 1),
  };
}
