/**
 * Selection's verdict with the hybrid beside it: the hybrid (a draft plus the suffix tree) is reported
 * when it beats everything else, but it never turns a draft that loses to a model-free method (or to
 * plain decoding) into a winner: no engine fireopt exports to serves the pairing.
 */
import { describe, expect, it } from 'vitest';
import { judge } from '../../src/train/index.js';

const draft = (expectedSpeedup: number) => ({ name: 'draft-a', best: { expectedSpeedup } });
const free = (suffix: number) => [
  { method: 'prompt-lookup' as const, expectedSpeedup: 0.97 },
  { method: 'suffix' as const, expectedSpeedup: suffix },
];
const hybrid = (expectedSpeedup: number, minMatch: number | null = 3) => ({
  candidate: 'draft-a',
  minMatch,
  expectedSpeedup,
});

describe('train selection verdict with the hybrid', () => {
  it('a draft that loses to the suffix tree alone still loses, even when its hybrid beats both', () => {
    const { outcome, verdict } = judge(draft(1.2), free(1.5), hybrid(1.8));
    expect(outcome).toBe('model-free-wins');
    expect(verdict).toMatch(/^a model-free method beats the best draft: suffix \(1\.50x\) .*; serve suffix;/);
    expect(verdict).toContain('draft-a with the suffix tree (min_match 3) expects 1.80x');
  });

  it('no draft beats plain decoding: the hybrid is named, the outcome stays', () => {
    const { outcome, verdict } = judge(draft(0.9), free(0.95), hybrid(1.3));
    expect(outcome).toBe('no-speedup');
    expect(verdict).toMatch(/; serve plain decoding; an engine that runs a suffix tree beside a draft/);
  });

  it('says nothing of a hybrid that does not beat the best of the rest', () => {
    const wins = judge(draft(1.6), free(1.2), hybrid(1.5));
    expect(wins.outcome).toBe('draft-wins');
    expect(wins.verdict).not.toContain('suffix tree');
    // A threshold of "never" is the draft alone: nothing to add.
    expect(judge(draft(1.2), free(1.5), hybrid(1.9, null)).verdict).not.toContain('suffix tree');
    expect(judge(draft(1.2), free(1.5), undefined).outcome).toBe('model-free-wins');
  });
});
