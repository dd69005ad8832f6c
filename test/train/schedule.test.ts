/**
 * The schedule length of a time-budgeted candidate. Figures from a real `fireopt train --time-budget 240`
 * run (two candidates of 120 s each): the first candidate's first step took 1.78 s (the process's
 * warm-up), then ~0.12–0.17 s a step. Set from steps 1–3 alone, it trained 148 steps in 18 s of its 120 s.
 */
import { describe, expect, it } from 'vitest';
import { budgetedSteps } from '../../src/train/loop.js';

describe('budgetedSteps', () => {
  it('errs short from the warm-up steps, then fills the budget from the steady step time', () => {
    const budgetMs = 120_000;
    const atStep3 = 2_107; // elapsed after steps 1–3, warm-up included
    const provisional = budgetedSteps(budgetMs, atStep3, 3, atStep3 / 3, 10_000);
    expect(provisional).toBe(148); // as that run did
    const atStep13 = atStep3 + 10 * 165; // steps 4–13 at 165 ms
    const steady = budgetedSteps(budgetMs, atStep13, 13, 165, 10_000);
    expect(steady).toBe(625);
    // The steps it adds fit the rest of the budget with 15% to spare for evaluations.
    expect((steady - 13) * 165 * 1.15).toBeLessThanOrEqual(budgetMs - atStep13);
    expect((steady - 12) * 165 * 1.15).toBeGreaterThan(budgetMs - atStep13);
  });

  it('stays within max_steps, never below the steps done, and at least 4', () => {
    expect(budgetedSteps(120_000, 1_000, 13, 10, 500)).toBe(500);
    expect(budgetedSteps(1_000, 5_000, 13, 100, 10_000)).toBe(13);
    expect(budgetedSteps(10, 9, 1, 100, 10_000)).toBe(4);
  });
});
