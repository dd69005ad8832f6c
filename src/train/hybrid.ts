/**
 * The hybrid speculator as a selection row: each trained draft paired with the suffix tree (the tree
 * answers where it matched a context suffix of at least `min_match` tokens, the draft elsewhere), as
 * `fireopt eval --baseline hybrid` computes it — `min_match` chosen on the train split's calibration
 * rows, then the pairing simulated on the same held-out rows and k as the drafts and the model-free
 * methods. It is information, not a candidate for `<out>/draft`: serving it needs an engine that runs
 * a suffix tree beside a draft model, which no engine fireopt exports to does (HYBRID_SERVING).
 */
import { join } from 'node:path';
import { RunError } from '../errors.js';
import { readDraftCheckpoint } from '../formats/draft-checkpoint.js';
import { readTargetRows } from '../formats/targets-schema.js';
import {
  acceptanceLength,
  calibrationSplit,
  chooseMinMatch,
  DEFAULT_SUFFIX_TREE,
  DraftModel,
  emptyCounts,
  hybridMatches,
  scoreDraftRows,
  simulateGreedy,
  speedupFromTau,
  SuffixTreeProposer,
  suffixMatchesOfRows,
  type SuffixMatches,
} from '../speculation/index.js';
import type { DraftCost } from './candidates.js';
import { heldoutChunks } from './heldout.js';

/** Train rows (every tenth) the threshold is chosen on, as `eval.hybrid.calibration_rows` defaults. */
export const HYBRID_CALIBRATION_ROWS = 200;

/** What reproduces the hybrid in serving, and why `fireopt export` does not configure it. */
export const HYBRID_SERVING =
  'needs an engine that runs a suffix tree beside this draft model; none that fireopt exports to does ' +
  "(vLLM and SGLang run one speculative method at a time: the draft, or vLLM's `method: suffix`; " +
  'Arctic Inference pairs its suffix decoding only with its own speculators), so it is not what `draft/` serves';

export interface HybridResult {
  /** The candidate whose best draft answers where the suffix tree does not. */
  candidate: string;
  /** Shortest matched context suffix at which the tree answers (null: never, the draft alone was best). */
  minMatch: number | null;
  /** Train rows `minMatch` was chosen on. */
  calibrationRows: number;
  /** Completion positions simulated. */
  tokens: number;
  /** Fraction of positions where the hybrid's first proposal is the target's token. */
  hitRate: number;
  /** τ with `draftTokens` proposals per step. */
  acceptanceLength: number;
  /** Share of the steps that ran the draft model (only they pay k·c). */
  draftShare: number;
  /** τ / (k·c·draftShare + v_k). */
  expectedSpeedup: number;
}

export interface HybridOptions {
  trainFile: string;
  heldoutFile: string;
  /** Held-out rows (0 = all), as the drafts' evaluation reads. */
  rows: number;
  draftTokens: number;
  /** Most tokens per teacher-forced pass. */
  tokensPerBatch: number;
  /** The suffix tree's matches on those held-out rows (built from the whole train split), in order. */
  heldoutSuffix: readonly SuffixMatches[];
  /** Ctrl-C / SIGTERM: stop between chunks (the candidates' drafts are already saved). */
  signal?: AbortSignal;
}

/** The hybrid of each trained candidate's best draft (`<dir>/draft`) and the suffix tree, on the held-out rows. */
export async function hybridResults(
  candidates: ReadonlyArray<{ name: string; dir: string; cost: DraftCost }>,
  options: HybridOptions,
): Promise<HybridResult[]> {
  const k = options.draftTokens;
  // One calibration split and its suffix matches serve every candidate (the tree does not depend on them).
  const calibrationTree = new SuffixTreeProposer();
  const calibration = await calibrationSplit(
    readTargetRows(options.trainFile),
    HYBRID_CALIBRATION_ROWS,
    calibrationTree,
  );
  const calibrationSuffix = await suffixMatchesOfRows(calibrationTree, calibration);
  const results: HybridResult[] = [];
  const stopIfAsked = (): void => {
    if (options.signal?.aborted)
      throw new RunError(
        'interrupted while pairing the drafts with the suffix tree; every candidate is trained and saved',
        'HINT: run the same command with --resume to finish the selection',
      );
  };
  for (const candidate of candidates) {
    stopIfAsked();
    const draft = DraftModel.fromCheckpoint(readDraftCheckpoint(join(candidate.dir, 'draft')));
    try {
      const verifyCost = (draftTokens: number): number => candidate.cost.verifyCostByK?.[draftTokens - 1] ?? 1;
      const calibrationDraft = await scoreDraftRows(draft, calibration, { tokensPerBatch: options.tokensPerBatch });
      const { minMatch } = chooseMinMatch(
        calibration.map((_, i) => ({ draft: calibrationDraft[i].matches, suffix: calibrationSuffix[i] })),
        DEFAULT_SUFFIX_TREE.maxPattern,
        candidate.cost.ratio,
        verifyCost,
        k,
      );
      const counts = emptyCounts(k);
      let hits = 0;
      let row = 0;
      for await (const chunk of heldoutChunks(options.heldoutFile, options.rows)) {
        stopIfAsked();
        const scored = await scoreDraftRows(draft, chunk, { tokensPerBatch: options.tokensPerBatch });
        for (const { matches } of scored) {
          const hybrid = hybridMatches(matches, options.heldoutSuffix[row++], minMatch ?? Infinity);
          simulateGreedy(hybrid, k, counts);
          for (const length of hybrid.matchLengths) if (length >= 1) hits++;
        }
      }
      const tau = acceptanceLength(counts);
      const draftShare = counts.steps > 0 ? counts.modelSteps / counts.steps : 1;
      results.push({
        candidate: candidate.name,
        minMatch,
        calibrationRows: calibration.length,
        tokens: counts.tokens,
        hitRate: counts.tokens ? hits / counts.tokens : 0,
        acceptanceLength: tau,
        draftShare,
        expectedSpeedup: speedupFromTau(tau, k, candidate.cost.ratio * draftShare, verifyCost(k)),
      });
    } finally {
      draft.model.dispose();
    }
  }
  return results.sort((a, b) => b.expectedSpeedup - a.expectedSpeedup || b.hitRate - a.hitRate);
}
