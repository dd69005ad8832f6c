/**
 * The acceptance math of greedy speculative decoding (Leviathan et al. 2023; Chen et al. 2023),
 * computed exactly from *match lengths* rather than by re-running a proposer for every k.
 *
 * Definitions used throughout fireopt (and in report.json):
 * - A completion has N target tokens c[0..N). A *step* is one target forward pass. A step that
 *   starts at position t drafts d = min(k, proposed_t, N − t − 1) tokens (a proposer may offer fewer
 *   than k; nothing is drafted past the last token, whose arrival ends decoding), accepts the
 *   matching prefix a = min(m_t, d), and emits a + 1 tokens (the accepted drafts plus the target's
 *   own token after them, the *bonus*). The next step starts at t + a + 1.
 * - m_t, the *match length* at t, is how many leading tokens of the proposer's proposal for context
 *   prompt + c[0..t) equal c[t..]. Proposals are prefix-consistent (the proposal for k is the first k
 *   tokens of the proposal for k_max), so one m_t per position serves every k ≤ k_max.
 *   For a deterministic greedy draft model, m_t is the run of consecutive teacher-forced top-1 hits
 *   starting at t: while its proposals match, it conditions on exactly the target's tokens.
 * - τ (mean acceptance length) = tokens emitted / steps = N / steps, summed over completions. This is
 *   vLLM's `1 + accepted / drafts` with drafts = steps (every step is one draft round, even one
 *   whose proposer offered nothing) and accepted = emitted − 1 per step.
 * - acceptance rate α̂ = accepted draft tokens / drafted tokens.
 * - per position i = 1..k: `unconditional` = P(first i drafts all accepted | i drafted),
 *   `conditional` = P(draft i accepted | drafts 1..i−1 accepted and i drafted).
 * - expected speed-up of k drafts per step at cost ratio c (one draft forward / one target
 *   forward): S = τ_k / (k·c + 1). The closed form of i.i.d. acceptance α is
 *   S = (1 − α^(k+1)) / ((1 − α)(k·c + 1)); the per-position form replaces α^i by Π_{j≤i} β_j
 *   with the measured conditional rates β_j. Where the target's verification of k + 1 tokens was
 *   measured (v_k = its time / one target decode step), the step costs k·c + v_k instead of k·c + 1.
 */

/** Most draft tokens per step that fireopt simulates. */
export const MAX_DRAFT_TOKENS = 8;

/** Per-position match lengths of one completion under one proposer. */
export interface CompletionMatches {
  /** m_t for t = 0..N−1, capped at the k_max they were computed for. */
  matchLengths: Uint8Array;
  /** How many tokens the proposer offered at t (≤ k_max); k_max everywhere for a draft model. */
  proposedLengths: Uint8Array;
  /**
   * 1 where a step starting at t runs the draft model, 0 where a free proposer (the suffix tree) answers
   * instead: a hybrid speculator's per-position choice. Absent: the proposer's cost applies at every step.
   */
  draftModelRuns?: Uint8Array;
}

/** Counts of one greedy simulation at one k (add them up over completions; ratios at the end). */
export interface GreedyCounts {
  tokens: number;
  steps: number;
  /** Steps whose proposal ran the draft model (all steps unless the matches say otherwise). */
  modelSteps: number;
  drafted: number;
  accepted: number;
  /** [i − 1] = steps that drafted at least i tokens. */
  draftedAt: number[];
  /** [i − 1] = steps that drafted at least i tokens and accepted the first i. */
  acceptedAt: number[];
  /** [i − 1] = steps that drafted at least i tokens and accepted the first i − 1. */
  reachedAt: number[];
}

export function emptyCounts(k: number): GreedyCounts {
  return {
    tokens: 0,
    steps: 0,
    modelSteps: 0,
    drafted: 0,
    accepted: 0,
    draftedAt: new Array(k).fill(0),
    acceptedAt: new Array(k).fill(0),
    reachedAt: new Array(k).fill(0),
  };
}

/** m_t for a proposer whose proposals at t are `proposals[t]` (any length), against completion c. */
export function matchesFromProposals(
  completion: ArrayLike<number>,
  proposals: ArrayLike<number>[],
  kMax = MAX_DRAFT_TOKENS,
): CompletionMatches {
  const n = completion.length;
  const matchLengths = new Uint8Array(n);
  const proposedLengths = new Uint8Array(n);
  for (let t = 0; t < n; t++) {
    const proposal = proposals[t];
    const offered = Math.min(kMax, proposal.length);
    let m = 0;
    while (m < offered && t + m < n && proposal[m] === completion[t + m]) m++;
    matchLengths[t] = m;
    proposedLengths[t] = offered;
  }
  return { matchLengths, proposedLengths };
}

/**
 * m_t of a deterministic greedy draft from its teacher-forced top-1 predictions: predicted[t] is the
 * draft's argmax for position t given prompt + c[0..t). m_t = run of hits starting at t (capped).
 */
export function matchesFromTeacherForcing(
  completion: ArrayLike<number>,
  predicted: ArrayLike<number>,
  kMax = MAX_DRAFT_TOKENS,
): CompletionMatches {
  const n = completion.length;
  const matchLengths = new Uint8Array(n);
  let run = 0;
  for (let t = n - 1; t >= 0; t--) {
    run = predicted[t] === completion[t] ? run + 1 : 0;
    matchLengths[t] = Math.min(run, kMax);
  }
  return { matchLengths, proposedLengths: new Uint8Array(n).fill(kMax) };
}

/** Walk one completion with k drafts per step; adds to `into` (created when absent) and returns it. */
export function simulateGreedy(
  matches: CompletionMatches,
  k: number,
  into: GreedyCounts = emptyCounts(k),
): GreedyCounts {
  if (!Number.isInteger(k) || k < 1) throw new Error(`k must be a positive integer, got ${k}`);
  const { matchLengths, proposedLengths, draftModelRuns } = matches;
  const n = matchLengths.length;
  let t = 0;
  while (t < n) {
    const drafted = Math.min(k, proposedLengths[t], n - t - 1);
    const accepted = Math.min(matchLengths[t], drafted);
    into.steps += 1;
    if (!draftModelRuns || draftModelRuns[t]) into.modelSteps += 1;
    into.drafted += drafted;
    into.accepted += accepted;
    for (let i = 1; i <= drafted; i++) {
      into.draftedAt[i - 1] += 1;
      if (accepted >= i - 1) into.reachedAt[i - 1] += 1;
      if (accepted >= i) into.acceptedAt[i - 1] += 1;
    }
    t += accepted + 1;
  }
  into.tokens += n;
  return into;
}

/** Add counts b into a (same k). */
export function addCounts(a: GreedyCounts, b: GreedyCounts): GreedyCounts {
  a.tokens += b.tokens;
  a.steps += b.steps;
  a.modelSteps += b.modelSteps;
  a.drafted += b.drafted;
  a.accepted += b.accepted;
  for (let i = 0; i < a.draftedAt.length; i++) {
    a.draftedAt[i] += b.draftedAt[i];
    a.acceptedAt[i] += b.acceptedAt[i];
    a.reachedAt[i] += b.reachedAt[i];
  }
  return a;
}

const ratio = (numerator: number, denominator: number): number | null =>
  denominator > 0 ? numerator / denominator : null;

/** τ = tokens / steps (1 when nothing was decoded). */
export function acceptanceLength(counts: GreedyCounts): number {
  return counts.steps > 0 ? counts.tokens / counts.steps : 1;
}

/** Accepted / drafted tokens (null when nothing was drafted). */
export function acceptanceRate(counts: GreedyCounts): number | null {
  return ratio(counts.accepted, counts.drafted);
}

/** Per draft position i = 1..k: conditional and unconditional acceptance (null where never drafted). */
export function positionAcceptance(
  counts: GreedyCounts,
): Array<{ position: number; conditional: number | null; unconditional: number | null; drafted: number }> {
  return counts.draftedAt.map((drafted, i) => ({
    position: i + 1,
    conditional: ratio(counts.acceptedAt[i], counts.reachedAt[i]),
    unconditional: ratio(counts.acceptedAt[i], drafted),
    drafted,
  }));
}

/**
 * S = τ / (k·c + v): tokens per unit of target-forward time (v = verification cost, 1 unless measured).
 * A hybrid whose draft model runs in a share s of the steps pays k·c·s per step: pass c·s as c.
 */
export function speedupFromTau(tau: number, k: number, costRatio: number, verifyCost = 1): number {
  return tau / (k * costRatio + verifyCost);
}

/**
 * The speed-up of a simulated run, step by step: target tokens / Σ over steps of (d·c + v_d), where d is
 * what the step really drafted (≤ k: a model-free method often offers fewer, any drafter stops at the
 * completion's end) and v_d the target's cost of verifying d drafts (v_0 = 1: a step that drafts nothing
 * is a plain decode step). Equal to `speedupFromTau` when every step drafts k; lower v_d for shorter
 * drafts is what τ / (k·c + v_k) misses for prompt lookup, whose verification cost grows with what it offers.
 */
export function speedupFromCounts(
  counts: GreedyCounts,
  costRatio: number,
  verifyCost: (drafted: number) => number = () => 1,
): number {
  let cost = 0;
  stepsByDrafted(counts).forEach((steps, d) => {
    cost += steps * (d * costRatio + (d === 0 ? 1 : verifyCost(d)));
  });
  return cost > 0 ? counts.tokens / cost : 1;
}

/** [d] = steps that drafted exactly d tokens, d = 0..k. */
export function stepsByDrafted(counts: GreedyCounts): number[] {
  const k = counts.draftedAt.length;
  return Array.from(
    { length: k + 1 },
    (_, d) => (d === 0 ? counts.steps : counts.draftedAt[d - 1]) - (d < k ? counts.draftedAt[d] : 0),
  );
}

/** Closed form for i.i.d. acceptance α: (1 − α^(k+1)) / ((1 − α)(k·c + 1)). */
export function speedupClosedForm(alpha: number, k: number, costRatio: number, verifyCost = 1): number {
  const expectedTokens = alpha >= 1 ? k + 1 : (1 - Math.pow(alpha, k + 1)) / (1 - alpha);
  return expectedTokens / (k * costRatio + verifyCost);
}

/**
 * Per-position form: expected tokens per step = 1 + Σ_{i≤k} Π_{j≤i} β_j with β_j the conditional
 * acceptance at position j (a missing β ends the sum), divided by the step's cost k·c + 1.
 */
export function speedupPerPosition(
  conditional: ReadonlyArray<number | null>,
  k: number,
  costRatio: number,
  verifyCost = 1,
): number {
  let expectedTokens = 1;
  let reach = 1;
  for (let i = 0; i < k && i < conditional.length; i++) {
    const beta = conditional[i];
    if (beta === null) break;
    reach *= beta;
    expectedTokens += reach;
  }
  return expectedTokens / (k * costRatio + verifyCost);
}

/** The k (1-based) with the largest value; the smallest such k on ties. */
export function bestK(speedups: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < speedups.length; i++) if (speedups[i] > speedups[best] + 1e-12) best = i;
  return best + 1;
}

/** Bounds of Σ_x min(p(x), q(x)) at one position, and the target mass left unknown by top-k truncation. */
export interface SamplingAcceptanceBounds {
  lower: number;
  upper: number;
  unknownTargetMass: number;
}

/**
 * Sampling acceptance at one position (the probability that speculative sampling accepts a draft
 * token at temperature 1): Σ_x min(p_x, q_x), with the target p known only at its top-k ids.
 * Known part L = Σ_{x∈top-k} min(p_x, q_x); the rest lies in [0, min(1 − Σ_top p, 1 − Σ_top q)].
 * `topIds`/`topLogprobs` are the target's (−1 / −∞ padded); `draftProbability(id)` is q.
 */
export function samplingAcceptance(
  topIds: ArrayLike<number>,
  topLogprobs: ArrayLike<number>,
  offset: number,
  topK: number,
  draftProbability: (targetId: number) => number,
): SamplingAcceptanceBounds {
  let known = 0;
  let targetMass = 0;
  let draftMass = 0;
  for (let j = 0; j < topK; j++) {
    const id = topIds[offset + j];
    if (id < 0) continue;
    const p = Math.exp(topLogprobs[offset + j]);
    const q = draftProbability(id);
    known += Math.min(p, q);
    targetMass += p;
    draftMass += q;
  }
  const unknownTargetMass = Math.max(0, 1 - targetMass);
  return {
    lower: known,
    upper: Math.min(1, known + Math.min(unknownTargetMass, Math.max(0, 1 - draftMass))),
    unknownTargetMass,
  };
}
