/**
 * The model-free methods on selection's held-out split: prompt lookup and the suffix speculator
 * (its trie built from the train split's completions, as eval builds it). They cost no forward
 * pass, so a draft that does not beat them should not be served; the leaderboard and the summary
 * say so. Same simulator and the same k as the drafts' held-out evaluation.
 */
import { readTargetRows } from '../formats/targets-schema.js';
import {
  acceptanceLength,
  emptyCounts,
  matchesWithProposer,
  PromptLookupProposer,
  simulateGreedy,
  speedupFromTau,
  SuffixTreeProposer,
  suffixMatchesOfRows,
  type CompletionMatches,
  type SuffixMatches,
} from '../speculation/index.js';
import { heldoutChunks } from './heldout.js';

export const MODEL_FREE = ['prompt-lookup', 'suffix'] as const;

export interface ModelFreeResult {
  method: (typeof MODEL_FREE)[number];
  /** Completion positions simulated. */
  tokens: number;
  /** Fraction of positions where the method's first proposal is the target's token. */
  hitRate: number;
  /** τ with `draftTokens` proposals per step. */
  acceptanceLength: number;
  /** τ / v_k (c = 0: no draft forward pass). */
  expectedSpeedup: number;
}

export interface ModelFreeOptions {
  trainFile: string;
  heldoutFile: string;
  draftTokens: number;
  /** Held-out rows (0 = all), as the drafts' evaluation reads. */
  rows: number;
  /** The target's cost of verifying k + 1 tokens relative to one decode step (1 unless measured). */
  verifyCost: number;
}

/**
 * Simulate prompt lookup and the suffix speculator on the held-out rows; also gives the suffix tree's
 * matches on each row (with how much context it matched), which the hybrid rows pair with each draft.
 */
export async function modelFreeBaselines(
  options: ModelFreeOptions,
): Promise<{ results: ModelFreeResult[]; heldoutSuffix: SuffixMatches[] }> {
  const suffix = new SuffixTreeProposer();
  for await (const row of readTargetRows(options.trainFile)) suffix.add(row.completion_token_ids);
  const promptLookup = new PromptLookupProposer();
  const heldoutSuffix: SuffixMatches[] = [];
  const results: ModelFreeResult[] = [];
  for (const method of MODEL_FREE) {
    const counts = emptyCounts(options.draftTokens);
    let hits = 0;
    for await (const chunk of heldoutChunks(options.heldoutFile, options.rows)) {
      const matches: CompletionMatches[] = [];
      if (method === 'suffix') {
        const scored = await suffixMatchesOfRows(suffix, chunk);
        heldoutSuffix.push(...scored);
        matches.push(...scored);
      } else {
        for (const row of chunk)
          matches.push(
            await matchesWithProposer(
              promptLookup,
              Array.from(row.prompt_token_ids),
              Array.from(row.completion_token_ids),
            ),
          );
      }
      for (const rowMatches of matches) {
        simulateGreedy(rowMatches, options.draftTokens, counts);
        for (const length of rowMatches.matchLengths) if (length >= 1) hits++;
      }
    }
    const tau = acceptanceLength(counts);
    results.push({
      method,
      tokens: counts.tokens,
      hitRate: counts.tokens ? hits / counts.tokens : 0,
      acceptanceLength: tau,
      expectedSpeedup: speedupFromTau(tau, options.draftTokens, 0, options.verifyCost),
    });
  }
  return { results, heldoutSuffix };
}
