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
  type Proposer,
} from '../speculation/index.js';

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

/** Simulate prompt lookup and the suffix speculator on the held-out rows. */
export async function modelFreeBaselines(options: ModelFreeOptions): Promise<ModelFreeResult[]> {
  const suffix = new SuffixTreeProposer();
  for await (const row of readTargetRows(options.trainFile)) suffix.add(row.completion_token_ids);
  const methods: Array<[ModelFreeResult['method'], Proposer]> = [
    ['prompt-lookup', new PromptLookupProposer()],
    ['suffix', suffix],
  ];
  const results: ModelFreeResult[] = [];
  for (const [method, proposer] of methods) {
    const counts = emptyCounts(options.draftTokens);
    let hits = 0;
    let tokens = 0;
    let rows = 0;
    for await (const row of readTargetRows(options.heldoutFile)) {
      if (options.rows > 0 && rows >= options.rows) break;
      rows++;
      const completion = Array.from(row.completion_token_ids);
      const matches = await matchesWithProposer(proposer, Array.from(row.prompt_token_ids), completion);
      simulateGreedy(matches, options.draftTokens, counts);
      for (const length of matches.matchLengths) if (length >= 1) hits++;
      tokens += completion.length;
    }
    const tau = acceptanceLength(counts);
    results.push({
      method,
      tokens,
      hitRate: tokens ? hits / tokens : 0,
      acceptanceLength: tau,
      expectedSpeedup: speedupFromTau(tau, options.draftTokens, 0, options.verifyCost),
    });
  }
  return results;
}
