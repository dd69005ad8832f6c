/**
 * The wall-clock cost model of fireopt's llama.cpp speculative loop (llama-cpp-loop.ts), with its costs
 * taken from what the loop paid in the same interleaved round as the plain decoding it is compared with
 * (llama-cpp-speedup.ts). Costs timed in a separate phase are noise on a loaded machine: the same draft
 * shape measured c = 0.021 in one phase and 0.068 in another, while the costs paid within the rounds were
 * steady (bench/history/evaluate.md, "Measured speed-up").
 *
 * Decoding a set of prompts speculatively costs, in ms:
 *
 *   P_target + P_draft + Σ_d n_d · (v_d + d·e + o)
 *
 * with n_d the steps that drafted d tokens (from the simulator: the same counts the real loop makes),
 * P the prompt prefills of the target and of the draft model (0 for a model-free method), v_d one target
 * verification of d drafts (d + 1 tokens; v_0 is a plain decode step through the loop's own call),
 * e one draft-model evaluation (0 for a model-free method) and o the rest of a step: KV-cache erases of
 * the rejected tail, the proposer's own work for a model-free method, JavaScript. Plain decoding costs
 * P_target + N·t (t: one plain step), measured in the same round; the predicted speed-up is its wall time
 * over the predicted speculative one.
 *
 * The terms are fitted across configurations, never per configuration (a configuration's own timings
 * would predict it exactly and test nothing): v_d from every verification of d drafts in the round,
 * whoever proposed them (the target's work does not depend on it); e, o and P_draft per drafter over
 * all its k; P_target over every decoding of the round. Where no verification of d drafts happened, v_d
 * comes from a least-squares line through the others (a per-call overhead plus a per-token cost).
 */

/** What one speculative decoding of a round's prompts paid, term by term (summed over the prompts). */
export interface LoopTiming {
  wallMs: number;
  targetPrefillMs: number;
  draftPrefillMs: number;
  /** Time inside the drafter: draft-model evaluations, or a model-free proposer's own work. */
  draftMs: number;
  draftEvaluations: number;
  steps: number;
  /** [d] = total ms / calls of target verifications of d drafts. */
  verifyMsByDrafted: readonly number[];
  verifyCallsByDrafted: readonly number[];
}

/** What plain greedy decoding of the same prompts paid in the same round. */
export interface PlainTiming {
  wallMs: number;
  prefillMs: number;
  tokens: number;
}

/** One drafter's fitted costs, ms. */
export interface DrafterCosts {
  /** P_draft: its prompt prefills (the round's prompts). */
  prefillMs: number;
  /** e: one draft-model evaluation (0: model-free). */
  evaluationMs: number;
  /** o: a step's time outside target and draft-model calls. */
  stepOverheadMs: number;
}

/** The fitted costs of one round, ms. */
export interface LoopCosts {
  /** t: one plain decode step (plain wall time less its prefill, per token). */
  plainStepMs: number;
  /** P_target: the target's prompt prefills (the round's prompts), mean over every decoding of the round. */
  targetPrefillMs: number;
  /** v_d for d = 0..kMax. */
  verifyMsByDrafted: number[];
  /** Per drafter, in the order given. */
  drafters: DrafterCosts[];
}

/** Fit the model's terms from one round: plain decoding and, per drafter, its decodings at every k. */
export function fitLoopCosts(
  plain: PlainTiming,
  byDrafter: readonly (readonly LoopTiming[])[],
  kMax: number,
): LoopCosts {
  const all = byDrafter.flat();
  const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);
  const verifyTotalMs = (t: LoopTiming): number => sum(t.verifyMsByDrafted);
  const drafters = byDrafter.map((timings): DrafterCosts => {
    const evaluations = sum(timings.map((t) => t.draftEvaluations));
    const evaluationMs = evaluations > 0 ? sum(timings.map((t) => t.draftMs)) / evaluations : 0;
    const steps = sum(timings.map((t) => t.steps));
    // A model-free proposer's own time is per step: it lands in o.
    const outsideCalls = sum(
      timings.map(
        (t) => t.wallMs - t.targetPrefillMs - t.draftPrefillMs - verifyTotalMs(t) - t.draftEvaluations * evaluationMs,
      ),
    );
    return {
      prefillMs: timings.length ? sum(timings.map((t) => t.draftPrefillMs)) / timings.length : 0,
      evaluationMs,
      stepOverheadMs: steps > 0 ? Math.max(0, outsideCalls / steps) : 0,
    };
  });
  const verifyMs = new Array<number>(kMax + 1).fill(0);
  const verifyCalls = new Array<number>(kMax + 1).fill(0);
  for (const t of all)
    t.verifyMsByDrafted.forEach((ms, d) => {
      if (d > kMax) throw new RangeError(`loop cost: a verification of ${d} drafts beyond k_max ${kMax}`);
      verifyMs[d] += ms;
      verifyCalls[d] += t.verifyCallsByDrafted[d];
    });
  return {
    plainStepMs: plain.tokens > 0 ? (plain.wallMs - plain.prefillMs) / plain.tokens : 0,
    targetPrefillMs: (plain.prefillMs + sum(all.map((t) => t.targetPrefillMs))) / (1 + all.length),
    verifyMsByDrafted: verifyCostsByDrafted(verifyMs, verifyCalls),
    drafters,
  };
}

/**
 * Mean ms per call for each d where calls were made; elsewhere the call-weighted least-squares line
 * a + b·d through the observed means (one observed d: its mean; none: 0).
 */
export function verifyCostsByDrafted(totalMs: readonly number[], calls: readonly number[]): number[] {
  const observed = calls.flatMap((n, d) => (n > 0 ? [{ d, n, mean: totalMs[d] / n }] : []));
  const weight = observed.reduce((w, o) => w + o.n, 0);
  const meanD = observed.reduce((s, o) => s + o.n * o.d, 0) / (weight || 1);
  const meanMs = observed.reduce((s, o) => s + o.n * o.mean, 0) / (weight || 1);
  const spreadD = observed.reduce((s, o) => s + o.n * (o.d - meanD) ** 2, 0);
  const slope = spreadD > 0 ? observed.reduce((s, o) => s + o.n * (o.d - meanD) * (o.mean - meanMs), 0) / spreadD : 0;
  return calls.map((n, d) => (n > 0 ? totalMs[d] / n : Math.max(0, meanMs + slope * (d - meanD))));
}

/** The predicted wall time (ms) of a decoding by `drafter` that takes stepsByDrafted[d] steps drafting d tokens. */
export function predictedLoopMs(costs: LoopCosts, drafter: number, stepsByDrafted: readonly number[]): number {
  const { prefillMs, evaluationMs, stepOverheadMs } = costs.drafters[drafter];
  let ms = costs.targetPrefillMs + prefillMs;
  stepsByDrafted.forEach((steps, d) => {
    if (steps === 0) return;
    if (d >= costs.verifyMsByDrafted.length) throw new RangeError(`loop cost: no v_d for d = ${d}`);
    ms += steps * (costs.verifyMsByDrafted[d] + d * evaluationMs + stepOverheadMs);
  });
  return ms;
}
