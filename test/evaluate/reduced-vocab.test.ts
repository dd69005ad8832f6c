/**
 * `fireopt eval` with a reduced-vocabulary draft: a real draft trained by `fireopt train` on
 * stories260K targets with 128 of the 512 target tokens. Its outputs must map back through
 * `draft_to_target`, and input ids outside its vocabulary must be fed as the checkpoint's
 * `training.unk_draft_id` — the row training fed them as. The reference below scores every held-out
 * completion position one row at a time with the model itself, mapping by hand.
 */
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDraftCheckpoint } from '../../src/formats/draft-checkpoint.js';
import { readTargetRows, type TargetRow } from '../../src/formats/targets-schema.js';
import { LlamaModel } from '../../src/model/index.js';
import { DraftModel } from '../../src/speculation/index.js';
import type { EvalReport } from '../../src/evaluate/index.js';
import { runCli } from '../helpers/cli.js';
import { haveShared, STORIES_TARGETS, stories260K, tok512 } from '../helpers/shared.js';
import { makeStoriesTargets, type StoriesTargets } from '../train/stories-targets.js';

const DRAFT_VOCAB = 128;
let data: StoriesTargets;
let draftDir: string;

beforeAll(async () => {
  data = await makeStoriesTargets(160, 64);
  const out = join(data.work, 'reduced');
  const result = await runCli([
    '--json',
    '--quiet',
    '--set',
    'train.select=off',
    '--set',
    'train.backend=wasm',
    '--set',
    'train.model={preset: draft-nano, dim: 32, n_layers: 2, n_heads: 2, n_kv_heads: 1}',
    '--set',
    'train.seq_len=64',
    '--set',
    'train.batch_size=16',
    '--set',
    'train.warmup_steps=10',
    '--set',
    'train.lr=0.005',
    '--set',
    'train.max_steps=100',
    '--set',
    'train.eval_every=50',
    '--set',
    `train.draft_vocab_size=${DRAFT_VOCAB}`,
    '--set',
    `train.tokenizer=${tok512()}`,
    'train',
    data.targets,
    '--out',
    out,
    '--target-model',
    stories260K(),
  ]);
  expect(result.code, result.stderr).toBe(0);
  draftDir = (JSON.parse(result.stdout) as { draft: string }).draft;
}, 120_000);

afterAll(() => data?.remove());

async function heldoutRows(): Promise<TargetRow[]> {
  const rows: TargetRow[] = [];
  for await (const row of readTargetRows(join(data.targets, 'heldout.arrow'))) rows.push(row);
  return rows;
}

/** Greedy hits of the draft over every held-out completion position, with inputs mapped by `inputRow`. */
function referenceHits(
  model: LlamaModel,
  draftToTarget: Int32Array,
  rows: TargetRow[],
  inputRow: (targetId: number) => number,
): { hits: number; positions: number } {
  let hits = 0;
  let positions = 0;
  for (const row of rows) {
    const prompt = Array.from(row.prompt_token_ids);
    const completion = Array.from(row.completion_token_ids);
    const sequence = [...prompt, ...completion.slice(0, -1)].map(inputRow);
    const predicted = tf.tidy(() =>
      tf.argMax(model.forward(tf.tensor2d(sequence, [1, sequence.length], 'int32')), -1).dataSync(),
    ); // [1, T]
    completion.forEach((targetId, t) => {
      if (draftToTarget[predicted[prompt.length - 1 + t]] === targetId) hits++;
    });
    positions += completion.length;
  }
  return { hits, positions };
}

describe.skipIf(!haveShared(...STORIES_TARGETS))('fireopt eval with a reduced-vocabulary draft', () => {
  it('feeds out-of-vocabulary inputs as training.unk_draft_id and maps outputs through draft_to_target', async () => {
    const checkpoint = readDraftCheckpoint(draftDir);
    const reduced = checkpoint.draftVocabulary;
    expect(reduced?.draftToTarget.length).toBe(DRAFT_VOCAB);
    expect(reduced?.targetVocabSize).toBe(512);
    if (!reduced) return;
    const { draftToTarget } = reduced;
    const unkDraftId = checkpoint.training.unk_draft_id;
    expect(typeof unkDraftId).toBe('number');
    if (typeof unkDraftId !== 'number') return;

    const targetToDraft = new Map<number, number>();
    draftToTarget.forEach((targetId, draftId) => targetToDraft.set(targetId, draftId));
    // The draft rows are in frequency order, not target-id order: a reader that skipped the map would miss.
    expect(Array.from(draftToTarget).some((targetId, draftId) => targetId !== draftId)).toBe(true);

    const rows = await heldoutRows();
    const inputs = rows.flatMap((row) => [
      ...row.prompt_token_ids,
      ...Array.from(row.completion_token_ids).slice(0, -1),
    ]);
    const outside = inputs.filter((id) => !targetToDraft.has(id));
    expect(outside.length).toBeGreaterThan(0.05 * inputs.length);

    // The library's mapping: out-of-vocabulary ids to unk_draft_id, the rest through the inverse map.
    const model = LlamaModel.fromWeights(checkpoint.weights, { trainable: false });
    try {
      const draft = new DraftModel(model, draftToTarget, reduced.targetVocabSize, unkDraftId);
      expect(draft.toDraftIds(outside.slice(0, 20))).toEqual(
        new Array<number>(Math.min(20, outside.length)).fill(unkDraftId),
      );
      const inside = Array.from(draftToTarget.slice(0, 10));
      expect(draft.toDraftIds(inside)).toEqual(inside.map((id) => targetToDraft.get(id)));
      expect(() => new DraftModel(model, draftToTarget, reduced.targetVocabSize, DRAFT_VOCAB)).toThrow(RangeError);

      const out = join(data.work, 'eval');
      const result = await runCli([
        '--json',
        '--quiet',
        '--set',
        'eval.backend=wasm',
        'eval',
        '--model',
        draftDir,
        '--data',
        data.targets,
        '--out',
        out,
      ]);
      expect(result.code, result.stderr).toBe(0);
      const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as EvalReport;
      const evaluated = report.candidates[0];

      const reference = referenceHits(model, draftToTarget, rows, (id) => targetToDraft.get(id) ?? unkDraftId);
      expect(report.data.tokens).toBe(reference.positions);
      // Batched and padded passes may flip an exact tie of two logits; nothing more.
      expect(Math.abs((evaluated.greedy_hit_rate ?? 0) * reference.positions - reference.hits)).toBeLessThanOrEqual(2);
      expect(reference.hits / reference.positions).toBeGreaterThan(0.3);
    } finally {
      model.dispose();
    }
  }, 120_000);
});
