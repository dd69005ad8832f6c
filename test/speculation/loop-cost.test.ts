/** The wall-clock cost model of the llama.cpp loop: its arithmetic on hand-made timings (no clocks involved). */
import { describe, expect, it } from 'vitest';
import { emptyCounts, matchesFromProposals, simulateGreedy, stepsByDrafted } from '../../src/speculation/index.js';
import {
  fitLoopCosts,
  predictedLoopMs,
  verifyCostsByDrafted,
  type LoopTiming,
} from '../../src/speculation/loop-cost.js';

/** The timing a decoding would show if the loop paid exactly the model's costs. */
function timingFromModel(
  model: { targetPrefillMs: number; verifyMs: number[]; prefillMs: number; evaluationMs: number; overheadMs: number },
  steps: number[],
  proposerMsPerStep = 0,
): LoopTiming {
  const verifyMsByDrafted = steps.map((n, d) => n * model.verifyMs[d]);
  const evaluations = steps.reduce((sum, n, d) => sum + n * d, 0) * (model.evaluationMs > 0 ? 1 : 0);
  const stepCount = steps.reduce((a, b) => a + b, 0);
  const draftMs = evaluations * model.evaluationMs + stepCount * proposerMsPerStep;
  return {
    wallMs:
      model.targetPrefillMs +
      model.prefillMs +
      verifyMsByDrafted.reduce((a, b) => a + b, 0) +
      draftMs +
      stepCount * model.overheadMs,
    targetPrefillMs: model.targetPrefillMs,
    draftPrefillMs: model.prefillMs,
    draftMs,
    draftEvaluations: evaluations,
    steps: stepCount,
    verifyMsByDrafted,
    verifyCallsByDrafted: steps,
  };
}

describe('verifyCostsByDrafted', () => {
  it('takes the mean where calls were made and a least-squares line elsewhere', () => {
    // d = 0: 2 calls of 10 ms; d = 2: 1 call of 30 ms; d = 1 and 3 never verified: the line 10 + 10·d.
    const v = verifyCostsByDrafted([20, 0, 30, 0], [2, 0, 1, 0]);
    expect(v[0]).toBeCloseTo(10, 12);
    expect(v[1]).toBeCloseTo(20, 12);
    expect(v[2]).toBeCloseTo(30, 12);
    expect(v[3]).toBeCloseTo(40, 12);
  });

  it('weights the line by calls (three points, not on a line)', () => {
    // Means 10 (1 call) at d = 1, 14 (2 calls) at d = 2, 30 (1 call) at d = 4; d = 3 from the line.
    // Weighted means: d̄ = (1 + 4 + 4) / 4 = 2.25, ȳ = (10 + 28 + 30) / 4 = 17;
    // slope = Σ n(d − d̄)(y − ȳ) / Σ n(d − d̄)² = (8.75 + 1.5 + 22.75) / (1.5625 + 0.125 + 3.0625) = 33 / 4.75.
    const v = verifyCostsByDrafted([0, 10, 28, 0, 30], [0, 1, 2, 0, 1]);
    const slope = 33 / 4.75;
    expect(v[3]).toBeCloseTo(17 + slope * (3 - 2.25), 10);
    expect(v[0]).toBeCloseTo(17 + slope * (0 - 2.25), 10);
    expect(v[2]).toBe(14);
  });

  it('uses the one observed mean everywhere, and never goes below 0', () => {
    expect(verifyCostsByDrafted([0, 12, 0], [0, 3, 0])).toEqual([4, 4, 4]);
    // A steep line through d = 2 and 3 would go negative at d = 0.
    expect(verifyCostsByDrafted([0, 0, 1, 11], [0, 0, 1, 1])[0]).toBe(0);
    expect(verifyCostsByDrafted([0, 0], [0, 0])).toEqual([0, 0]);
  });
});

describe('fitLoopCosts and predictedLoopMs', () => {
  const verifyMs = [2, 2.4, 2.8, 3.2, 3.6];
  const draftModel = { targetPrefillMs: 5, verifyMs, prefillMs: 1.5, evaluationMs: 0.3, overheadMs: 0.2 };
  const modelFree = { ...draftModel, prefillMs: 0, evaluationMs: 0, overheadMs: 0.15 };
  // Steps by drafted length: a draft at k = 2 and 4 (short drafts only near the budget's end), prompt
  // lookup at k = 2 and 4 (often offering fewer than k).
  const draftRuns = [
    [1, 0, 20],
    [1, 0, 0, 1, 12],
  ];
  const lookupRuns = [
    [10, 5, 15],
    [10, 4, 3, 2, 9],
  ];
  const plain = { wallMs: 5 + 64 * 2.1, prefillMs: 5, tokens: 64 };
  const round = [
    draftRuns.map((steps) => timingFromModel(draftModel, steps)),
    lookupRuns.map((steps) => timingFromModel(modelFree, steps, 0.05)),
  ];

  it('recovers every term of timings made by the model', () => {
    const costs = fitLoopCosts(plain, round, 4);
    expect(costs.plainStepMs).toBeCloseTo(2.1, 12);
    expect(costs.targetPrefillMs).toBeCloseTo(5, 12);
    costs.verifyMsByDrafted.forEach((v, d) => expect(v).toBeCloseTo(verifyMs[d], 12));
    expect(costs.drafters[0].prefillMs).toBeCloseTo(1.5, 12);
    expect(costs.drafters[0].evaluationMs).toBeCloseTo(0.3, 12);
    expect(costs.drafters[0].stepOverheadMs).toBeCloseTo(0.2, 12);
    // A model-free proposer's own time is per step: it joins the overhead.
    expect(costs.drafters[1].evaluationMs).toBe(0);
    expect(costs.drafters[1].stepOverheadMs).toBeCloseTo(0.15 + 0.05, 12);
    // And then predicts each decoding's wall time.
    for (const [d, runs] of [draftRuns, lookupRuns].entries())
      runs.forEach((steps, i) => expect(predictedLoopMs(costs, d, steps)).toBeCloseTo(round[d][i].wallMs, 9));
  });

  it('predicts by hand: P_target + P_draft + Σ_d n_d·(v_d + d·e + o)', () => {
    const costs = fitLoopCosts(plain, round, 4);
    // 3 steps of 1 draft and 2 of 4: 5 + 1.5 + 3·(2.4 + 0.3 + 0.2) + 2·(3.6 + 1.2 + 0.2).
    expect(predictedLoopMs(costs, 0, [0, 3, 0, 0, 2])).toBeCloseTo(5 + 1.5 + 3 * 2.9 + 2 * 5, 9);
    expect(() => predictedLoopMs(costs, 0, [0, 0, 0, 0, 0, 1])).toThrow(/no v_d for d = 5/);
  });

  it('pools the terms across configurations: a slower decoding is not predicted from its own costs', () => {
    // The k = 4 draft decoding paid 1 ms more per verification than the model (a burst of load, say).
    const slow = { ...draftModel, verifyMs: verifyMs.map((v) => v + 1) };
    const noisy = [[round[0][0], timingFromModel(slow, draftRuns[1])], round[1]];
    const costs = fitLoopCosts(plain, noisy, 4);
    const predicted = predictedLoopMs(costs, 0, draftRuns[1]);
    expect(predicted).toBeLessThan(noisy[0][1].wallMs);
    expect(predicted).toBeGreaterThan(round[0][1].wallMs);
  });

  it('refuses a verification longer than k_max', () => {
    expect(() => fitLoopCosts(plain, round, 2)).toThrow(/beyond k_max 2/);
  });
});

describe('stepsByDrafted', () => {
  it('counts the steps that drafted exactly d tokens', () => {
    // Proposals of 0, 2, 3 and 1 tokens along a 6-token completion, k = 2.
    const completion = [1, 2, 3, 4, 5, 6];
    const matches = matchesFromProposals(completion, [[], [2, 3], [3, 9, 9], [4], [5, 6], []]);
    const counts = simulateGreedy(matches, 2, emptyCounts(2));
    // Steps at t = 0 (drafts 0), t = 1 (2, both accepted), t = 4 (1: only one token is left to draft after it).
    expect(stepsByDrafted(counts)).toEqual([1, 1, 1]);
    const steps = stepsByDrafted(counts);
    expect(steps.reduce((a, b) => a + b, 0)).toBe(counts.steps);
    expect(steps.reduce((sum, n, d) => sum + n * d, 0)).toBe(counts.drafted);
  });
});
