/**
 * scoreDraftRows, the one scorer of `fireopt eval` and of train's held-out evaluation, against an
 * independent pass: each row alone through `nextTokenDistributions` (one forward pass, log-softmax).
 * Rows are scored whole, one of them twice as long as the draft's trained context; a reduced
 * vocabulary maps outputs back to target ids and has no log-probability for tokens it lacks.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import {
  LlamaModel,
  nextTokenDistributions,
  presetConfig,
  randomWeights,
  SeededRandom,
} from '../../src/model/index.js';
import {
  DraftModel,
  matchesFromTeacherForcing,
  samplingAcceptance,
  scoreDraftRows,
} from '../../src/speculation/index.js';

const TARGET_VOCAB = 64;
const DRAFT_ROWS = 48; // the draft predicts target ids 0..47; 48..63 are outside its vocabulary
const CONTEXT = 32;

beforeAll(async () => {
  await initBackend('cpu');
});

function randomIds(random: SeededRandom, length: number): number[] {
  return Array.from({ length }, () => 1 + (random.nextUint32() % (TARGET_VOCAB - 1)));
}

describe('scoreDraftRows', () => {
  it('scores every position of whole rows as an independent pass does, with log q of each token', async () => {
    const config = presetConfig('draft-nano', DRAFT_ROWS, CONTEXT, { dim: 32, nLayers: 2, nHeads: 2, nKvHeads: 1 });
    const model = LlamaModel.fromWeights(randomWeights(config, { seed: 7, std: 0.5 }), { trainable: false });
    const draftToTarget = Int32Array.from({ length: DRAFT_ROWS }, (_, i) => i);
    const draft = new DraftModel(model, draftToTarget, TARGET_VOCAB, 0);
    const random = new SeededRandom(3);
    // The target's top-2 at each position: its token (p 0.6) and another id (p 0.3), some outside the draft's rows.
    const withTopTwo = (row: { prompt_token_ids: number[]; completion_token_ids: number[] }) => ({
      ...row,
      top_k: 2,
      top_ids: row.completion_token_ids.flatMap((id) => [id, randomIds(random, 1)[0]]),
      top_logprobs: row.completion_token_ids.flatMap(() => [Math.log(0.6), Math.log(0.3)]),
    });
    const rows = [
      { prompt_token_ids: [1, ...randomIds(random, 5)], completion_token_ids: randomIds(random, 2 * CONTEXT) },
      { prompt_token_ids: [1], completion_token_ids: randomIds(random, 7) },
      { prompt_token_ids: [1, ...randomIds(random, 3)], completion_token_ids: randomIds(random, 12) },
    ].map(withTopTwo);
    try {
      // The head projects every position of a pass at once, or 5 positions at a time (as a large vocabulary
      // makes it do): the same scores either way.
      const whole = await scoreDraftRows(draft, rows, { tokensPerBatch: 40, completionLogprobs: true });
      const chunked = await scoreDraftRows(draft, rows, {
        tokensPerBatch: 40,
        completionLogprobs: true,
        positionsPerHead: 5,
      });
      expect(chunked).toEqual(whole);
      const scored = whole;
      for (const [r, row] of rows.entries()) {
        const { predicted, completionLogprobs, matches } = scored[r];
        const n = row.completion_token_ids.length;
        expect(predicted).toHaveLength(n);
        // The reference: the row alone, every id outside the draft vocabulary fed as row 0.
        const sequence = [...row.prompt_token_ids, ...row.completion_token_ids.slice(0, -1)];
        const logprobs = await nextTokenDistributions(
          model,
          sequence.map((id) => (id < DRAFT_ROWS ? id : 0)),
        );
        const base = row.prompt_token_ids.length - 1;
        for (let t = 0; t < n; t++) {
          const at = (base + t) * DRAFT_ROWS;
          let best = 0;
          for (let v = 1; v < DRAFT_ROWS; v++) if (logprobs[at + v] > logprobs[at + best]) best = v;
          expect(predicted[t]).toBe(best);
          const token = row.completion_token_ids[t];
          if (token < DRAFT_ROWS) expect(completionLogprobs?.[t]).toBeCloseTo(logprobs[at + token], 4);
          else expect(completionLogprobs?.[t]).toBeNaN();
          // Sampling acceptance from the same q, 0 where the draft lacks the id.
          const q = (id: number) => (id < DRAFT_ROWS ? Math.exp(logprobs[at + id]) : 0);
          const expected = samplingAcceptance(row.top_ids, row.top_logprobs, t * 2, 2, q);
          const bounds = scored[r].sampling?.[t];
          expect(bounds?.lower).toBeCloseTo(expected.lower, 5);
          expect(bounds?.upper).toBeCloseTo(expected.upper, 5);
        }
        expect(matches).toEqual(matchesFromTeacherForcing(row.completion_token_ids, predicted));
      }
      // Positions past the trained context were scored, and some tokens lie outside the vocabulary.
      expect(rows[0].prompt_token_ids.length + rows[0].completion_token_ids.length).toBeGreaterThan(2 * CONTEXT);
      expect(rows.flatMap((row) => row.completion_token_ids).some((id) => id >= DRAFT_ROWS)).toBe(true);
    } finally {
      model.dispose();
    }
  });
});
