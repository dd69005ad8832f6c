/**
 * A hybrid speculator, as SuffixDecoding (Oliaro et al. 2024) pairs its suffix tree with EAGLE: at each
 * step the suffix tree answers where it matched a context suffix of at least `minMatch` tokens and has
 * a continuation to offer — free, no draft forward pass — and the draft model answers everywhere else.
 * It is computed from the two proposers' per-position matches, so it costs nothing beyond evaluating
 * both, and the steps that ran the draft are counted so that only they pay the draft's cost.
 */
import {
  acceptanceLength,
  bestK,
  type CompletionMatches,
  emptyCounts,
  MAX_DRAFT_TOKENS,
  matchesFromProposals,
  simulateGreedy,
  speedupFromTau,
} from './acceptance.js';
import type { CompletionRow } from './draft-proposer.js';
import type { SuffixTreeProposer } from './suffix-tree.js';

/** The suffix speculator's matches, with the length of the context suffix it matched at each position. */
export interface SuffixMatches extends CompletionMatches {
  matched: Uint8Array;
}

/** The suffix tree's proposal at every completion position (k_max tokens each) and how much it matched. */
export async function suffixMatches(
  tree: SuffixTreeProposer,
  promptIds: readonly number[],
  completion: readonly number[],
  kMax = MAX_DRAFT_TOKENS,
): Promise<SuffixMatches> {
  const session = tree.openMatched(promptIds);
  try {
    const proposals: number[][] = [];
    const matched = new Uint8Array(completion.length);
    for (let t = 0; t < completion.length; t++) {
      const proposal = session.proposeMatched(kMax);
      proposals.push(proposal.tokens);
      matched[t] = Math.min(255, proposal.matched);
      await session.append([completion[t]]);
    }
    return { ...matchesFromProposals(completion, proposals, kMax), matched };
  } finally {
    session.dispose();
  }
}

/** The suffix tree's matches on rows, with the context-suffix length it matched at each position. */
export async function suffixMatchesOfRows(
  tree: SuffixTreeProposer,
  rows: readonly CompletionRow[],
): Promise<SuffixMatches[]> {
  const matches: SuffixMatches[] = [];
  for (const row of rows)
    matches.push(await suffixMatches(tree, Array.from(row.prompt_token_ids), Array.from(row.completion_token_ids)));
  return matches;
}

/**
 * The hybrid's calibration split of the train rows, as eval and train both choose `min_match`: every
 * tenth row, up to `limit`, is returned to calibrate on; every other row is indexed into `tree`, so the
 * tree has not seen the rows it is judged on.
 */
export async function calibrationSplit<Row extends CompletionRow>(
  trainRows: AsyncIterable<Row>,
  limit: number,
  tree: SuffixTreeProposer,
): Promise<Row[]> {
  const calibration: Row[] = [];
  let index = 0;
  for await (const row of trainRows) {
    if (index++ % 10 === 0 && calibration.length < limit) calibration.push(row);
    else tree.add(row.completion_token_ids);
  }
  return calibration;
}

/** Per position: the suffix tree's proposal where it matched ≥ `minMatch` tokens and offers one, else the draft's. */
export function hybridMatches(draft: CompletionMatches, suffix: SuffixMatches, minMatch: number): CompletionMatches {
  const n = draft.matchLengths.length;
  if (suffix.matchLengths.length !== n)
    throw new Error('hybrid: the draft and the suffix tree saw different completions');
  const matchLengths = new Uint8Array(n);
  const proposedLengths = new Uint8Array(n);
  const draftModelRuns = new Uint8Array(n);
  for (let t = 0; t < n; t++) {
    const useSuffix = suffix.matched[t] >= minMatch && suffix.proposedLengths[t] > 0;
    const from = useSuffix ? suffix : draft;
    matchLengths[t] = from.matchLengths[t];
    proposedLengths[t] = from.proposedLengths[t];
    draftModelRuns[t] = useSuffix ? 0 : 1;
  }
  return { matchLengths, proposedLengths, draftModelRuns };
}

/** One setting of the threshold tried on the calibration rows. */
export interface HybridTrial {
  /** Shortest matched context suffix at which the suffix tree answers (null: never, the draft alone). */
  min_match: number | null;
  best_k: number;
  best_speedup: number;
}

/**
 * The `minMatch` with the highest expected speed-up (at its best k, or at `onlyK` when given: train's
 * selection prices every candidate at one k) on calibration rows, trying every length up to `maxPattern`
 * and the draft alone; the draft's cost ratio c and verification cost v_k price the steps that run it.
 * Ties go to the longer threshold (trusting the tree less).
 */
export function chooseMinMatch(
  rows: ReadonlyArray<{ draft: CompletionMatches; suffix: SuffixMatches }>,
  maxPattern: number,
  costRatio: number,
  verifyCost: (k: number) => number,
  onlyK?: number,
): { minMatch: number | null; trials: HybridTrial[] } {
  const trials: HybridTrial[] = [];
  for (const minMatch of [null, ...Array.from({ length: maxPattern }, (_, i) => maxPattern - i)]) {
    const speedups = Array.from({ length: MAX_DRAFT_TOKENS }, (_, i) => {
      const k = i + 1;
      if (onlyK !== undefined && k !== onlyK) return -Infinity;
      const counts = emptyCounts(k);
      for (const row of rows)
        simulateGreedy(minMatch === null ? row.draft : hybridMatches(row.draft, row.suffix, minMatch), k, counts);
      const share = counts.steps > 0 ? counts.modelSteps / counts.steps : 1;
      return speedupFromTau(acceptanceLength(counts), k, costRatio * share, verifyCost(k));
    });
    const k = bestK(speedups);
    trials.push({ min_match: minMatch, best_k: k, best_speedup: speedups[k - 1] });
  }
  const best = trials.reduce((a, b) => (b.best_speedup > a.best_speedup + 1e-12 ? b : a));
  return { minMatch: best.min_match, trials };
}
