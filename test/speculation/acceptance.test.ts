/** The acceptance math on hand-checkable cases, and the model-free speculators on real Taskmaster-4 dialogues. */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  PromptLookupProposer,
  SuffixTreeProposer,
  acceptanceLength,
  acceptanceRate,
  bestK,
  emptyCounts,
  hybridMatches,
  matchesFromProposals,
  matchesFromTeacherForcing,
  matchesWithProposer,
  positionAcceptance,
  samplingAcceptance,
  simulateGreedy,
  speedupClosedForm,
  speedupFromCounts,
  speedupFromTau,
  speedupPerPosition,
} from '../../src/speculation/index.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { haveShared, sharedPath } from '../helpers/shared.js';

describe('the hybrid of a suffix tree and a draft, by hand', () => {
  // Completion 10..15. The draft misses position 2; the tree matched long contexts at 2 and 3 (and
  // proposes the right tokens there) but has nothing to offer at 4.
  const completion = [10, 11, 12, 13, 14, 15];
  const draft = matchesFromTeacherForcing(completion, [10, 11, 99, 13, 14, 15]);
  const tree = {
    ...matchesFromProposals(completion, [[], [], [12, 13, 14, 15], [13, 14], [], [15]]),
    matched: Uint8Array.from([0, 1, 4, 4, 5, 1]),
  };

  it('lets the tree answer where its match is long enough and it proposes, the draft elsewhere', () => {
    const hybrid = hybridMatches(draft, tree, 4);
    expect(Array.from(hybrid.draftModelRuns!)).toEqual([1, 1, 0, 0, 1, 1]);
    expect(Array.from(hybrid.matchLengths)).toEqual([2, 1, 4, 2, 2, 1]);
    // k = 4: steps start at 0 (draft: 2 accepted), 3 (tree: 2 accepted, drafting stops before the last token).
    const counts = simulateGreedy(hybrid, 4);
    expect([counts.steps, counts.modelSteps]).toEqual([2, 1]);
    // Never trusted, it is the draft; a plain proposer's every step runs its model.
    const alone = simulateGreedy(hybridMatches(draft, tree, Number.POSITIVE_INFINITY), 4);
    expect(alone).toEqual(simulateGreedy(draft, 4));
    expect(alone.modelSteps).toBe(alone.steps);
  });
});

describe('greedy simulation, by hand', () => {
  // Completion 10..15; the draft's teacher-forced top-1 misses only position 2.
  const completion = [10, 11, 12, 13, 14, 15];
  const matches = matchesFromTeacherForcing(completion, [10, 11, 99, 13, 14, 15]);

  it('derives match lengths as runs of hits', () => {
    expect(Array.from(matches.matchLengths)).toEqual([2, 1, 0, 3, 2, 1]);
  });

  it('k = 1: steps at 0 (accept 1), 2 (miss), 3 (accept 1), 5 (last token: nothing drafted) → τ = 6/4', () => {
    const counts = simulateGreedy(matches, 1);
    expect(counts).toMatchObject({ tokens: 6, steps: 4, drafted: 3, accepted: 2 });
    expect(acceptanceLength(counts)).toBe(1.5);
    expect(acceptanceRate(counts)).toBeCloseTo(2 / 3, 12);
  });

  it('k = 2: steps at 0 and 3 accept both drafts → τ = 3 = 1 + accepted / drafts', () => {
    const counts = simulateGreedy(matches, 2);
    expect(counts).toMatchObject({ tokens: 6, steps: 2, drafted: 4, accepted: 4 });
    expect(acceptanceLength(counts)).toBe(3);
    expect(1 + counts.accepted / counts.steps).toBe(3);
  });

  it('speed-up step by step: each step pays for what it drafted (v_0 = 1)', () => {
    const v = (d: number): number => 1 + 0.25 * d;
    // k = 1: steps drafted 1, 1, 1, 0 → cost 3·(c + v_1) + 1.
    const k1 = simulateGreedy(matches, 1);
    expect(speedupFromCounts(k1, 0.1, v)).toBeCloseTo(6 / (3 * (0.1 + 1.25) + 1), 12);
    // k = 8: steps drafted 5 and 2 → cost (5c + v_5) + (2c + v_2), not 2·(8c + v_8).
    const k8 = simulateGreedy(matches, 8);
    expect(speedupFromCounts(k8, 0.1, v)).toBeCloseTo(6 / (0.5 + 2.25 + 0.2 + 1.5), 12);
    // Every step drafting k: the same as τ / (k·c + v_k).
    const full = simulateGreedy(matchesFromTeacherForcing([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]), 2);
    expect(speedupFromCounts(full, 0.1, v)).toBeCloseTo(speedupFromTau(acceptanceLength(full), 2, 0.1, v(2)), 12);
  });

  it('k = 8: drafts are cut at the completion end; per-position rates', () => {
    const counts = simulateGreedy(matches, 8);
    // t=0: 5 drafted, 2 accepted → t=3: 2 drafted, 2 accepted → t=6 end.
    expect(counts).toMatchObject({ steps: 2, drafted: 7, accepted: 4 });
    const positions = positionAcceptance(counts);
    expect(positions[0]).toEqual({ position: 1, conditional: 1, unconditional: 1, drafted: 2 });
    expect(positions[2]).toEqual({ position: 3, conditional: 0, unconditional: 0, drafted: 1 });
    expect(positions[5].drafted).toBe(0);
    expect(positions[5].conditional).toBeNull();
  });

  it('proposers that offer fewer tokens draft fewer', () => {
    const fromProposals = matchesFromProposals(completion, [[10, 11, 12], [], [12], [13, 99], [14], [15]]);
    expect(Array.from(fromProposals.matchLengths)).toEqual([3, 0, 1, 1, 1, 1]);
    expect(Array.from(fromProposals.proposedLengths)).toEqual([3, 0, 1, 2, 1, 1]);
    // k = 4: t=0 drafts 3, accepts 3 → t=4 drafts 1, accepts 1 → done.
    expect(simulateGreedy(fromProposals, 4)).toMatchObject({ steps: 2, drafted: 4, accepted: 4 });
  });

  it('speed-up forms agree for i.i.d. acceptance and pick the best k', () => {
    expect(speedupClosedForm(0.5, 3, 0)).toBeCloseTo(1 + 0.5 + 0.25 + 0.125, 12);
    expect(speedupPerPosition([0.5, 0.5, 0.5], 3, 0.1)).toBeCloseTo(1.875 / 1.3, 12);
    expect(speedupClosedForm(0.8, 4, 0.1)).toBeCloseTo(speedupPerPosition([0.8, 0.8, 0.8, 0.8], 4, 0.1), 12);
    expect(bestK([1.2, 1.5, 1.4])).toBe(2);
  });

  it('bounds sampling acceptance by the mass outside the top-k', () => {
    // Target top-2: p = 0.5, 0.3 (0.2 unknown); draft q = 0.4, 0.4 on them (0.2 elsewhere).
    const q = new Map([
      [7, 0.4],
      [8, 0.4],
    ]);
    const bounds = samplingAcceptance([7, 8], [Math.log(0.5), Math.log(0.3)], 0, 2, (id) => q.get(id) ?? 0);
    expect(bounds.lower).toBeCloseTo(0.7, 12);
    expect(bounds.upper).toBeCloseTo(0.9, 12);
    expect(bounds.unknownTargetMass).toBeCloseTo(0.2, 12);
  });
});

interface Dialogue {
  conversation_id: string;
  utterances: Array<{ speaker: 'user' | 'assistant'; text: string }>;
}

const LLAMA_SPM_VOCAB = 'models/vocab/ggml-vocab-llama-spm.gguf';
const TASKMASTER_00 = 'data/taskmaster4_coffee/data_00.json';

describe.skipIf(!haveShared(LLAMA_SPM_VOCAB, TASKMASTER_00))(
  'model-free speculators on Taskmaster-4 coffee-ordering dialogues',
  () => {
    let train: Array<{ prompt: number[]; completion: number[] }> = [];
    let heldout: typeof train = [];
    beforeAll(async () => {
      const tokenizer = await loadTokenizer(sharedPath(LLAMA_SPM_VOCAB));
      const dialogues = JSON.parse(readFileSync(sharedPath(TASKMASTER_00), 'utf8')) as Dialogue[];
      // Each agent turn is a completion; the earlier turns, one per line, are its prompt.
      const samplesOf = (slice: Dialogue[]) =>
        slice.flatMap((dialogue) =>
          dialogue.utterances.flatMap((utterance, i) => {
            if (utterance.speaker !== 'assistant' || i === 0) return [];
            const context =
              dialogue.utterances
                .slice(0, i)
                .map((u) => `${u.speaker}: ${u.text}`)
                .join('\n') + '\nassistant:';
            return [
              {
                prompt: tokenizer.encode(context, { addBos: true }),
                completion: tokenizer.encode(` ${utterance.text}`),
              },
            ];
          }),
        );
      // Split by dialogue, as ingest does: no held-out turn's conversation is in the training set.
      train = samplesOf(dialogues.slice(0, 300));
      heldout = samplesOf(dialogues.slice(300, 420));
    });

    function tau(proposerMatches: Awaited<ReturnType<typeof matchesWithProposer>>[], k: number): number {
      const counts = emptyCounts(k);
      for (const m of proposerMatches) simulateGreedy(m, k, counts);
      return acceptanceLength(counts);
    }

    it('prompt lookup proposes exactly what a brute-force scan for the latest earlier n-gram finds', async () => {
      const proposer = new PromptLookupProposer({ maxNgram: 3, minNgram: 1 });
      for (const { prompt, completion } of heldout.slice(0, 30)) {
        const session = await proposer.open(prompt);
        const context = [...prompt];
        for (const token of completion) {
          let expected: number[] = [];
          for (let n = Math.min(3, context.length); n >= 1 && !expected.length; n--) {
            const tail = context.slice(-n);
            for (let start = context.length - n - 1; start >= 0; start--) {
              if (tail.every((t, j) => context[start + j] === t)) {
                expected = context.slice(start + n, start + n + 8);
                break;
              }
            }
            if (expected.length) break;
          }
          expect(await session.propose(8)).toEqual(expected);
          await session.append([token]);
          context.push(token);
        }
      }
    });

    it('the suffix tree built from training completions beats prompt lookup on this repetitive traffic', async () => {
      expect(train.length).toBeGreaterThan(400);
      expect(heldout.length).toBeGreaterThan(100);
      const suffix = new SuffixTreeProposer();
      for (const sample of train) suffix.add(sample.completion);
      const lookup = new PromptLookupProposer();
      const suffixMatches = await Promise.all(heldout.map((s) => matchesWithProposer(suffix, s.prompt, s.completion)));
      const lookupMatches = await Promise.all(heldout.map((s) => matchesWithProposer(lookup, s.prompt, s.completion)));
      const suffixTau = tau(suffixMatches, 8);
      const lookupTau = tau(lookupMatches, 8);
      // Agents repeat order confirmations across conversations ("Your total is ...", "Anything else?"),
      // which the training completions hold and the request's own context mostly does not.
      console.log(
        `Taskmaster-4 held-out τ at k = 8: suffix ${suffixTau.toFixed(3)}, prompt lookup ${lookupTau.toFixed(3)}`,
      );
      expect(lookupTau).toBeGreaterThan(1);
      expect(suffixTau).toBeGreaterThan(lookupTau + 0.3);
      // τ grows with k for model-free speculators (they cost nothing to draft).
      expect(tau(suffixMatches, 4)).toBeGreaterThan(tau(suffixMatches, 1));
    });

    it(
      'every suffix-tree proposal continues its matched pattern somewhere in ' +
        'the training completions or the context',
      () => {
        const suffix = new SuffixTreeProposer();
        for (const sample of train) suffix.add(sample.completion);
        const contains = (haystack: number[], needle: number[]): boolean => {
          outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
            for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
            return true;
          }
          return false;
        };
        let checked = 0;
        for (const { prompt, completion } of heldout.slice(0, 10)) {
          const context = [...prompt];
          for (const token of completion) {
            const global = suffix.proposeFrom(context, 8);
            if (global.tokens.length) {
              const path = [...context.slice(context.length - global.matched), ...global.tokens];
              expect(train.some((s) => contains(s.completion, path))).toBe(true);
              checked++;
            }
            context.push(token);
          }
        }
        expect(checked).toBeGreaterThan(20);
      },
    );
  },
);
