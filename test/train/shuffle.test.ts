/**
 * Training reads its rows in a two-level streaming shuffle: the targets file's record batches in a
 * seeded order, then a small shuffle buffer. Traces that arrive sorted (one source after another) are
 * mixed across the whole file; with the buffer alone, the first quarter of an epoch held only the
 * first quarter's sources.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeTargetsFile } from '../../src/distill/index.js';
import type { TargetRow } from '../../src/formats/targets-schema.js';
import { epochBatches } from '../../src/train/data.js';
import { fullVocab } from '../../src/train/vocab.js';

const SOURCES = 16;
const ROWS_PER_SOURCE = 256; // one record batch each, as distill writes them
const COMPLETION = 8;

const work = mkdtempSync(join(tmpdir(), 'fireopt-shuffle-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Row r of source s: prompt [1], completion of 8 × token (10 + s). */
function row(source: number, r: number): TargetRow {
  return {
    id: `s${source}-r${r}`,
    conversation_id: `s${source}-r${r}`,
    turn_index: 0,
    sample_index: 0,
    split: 'train',
    mode: 'traces',
    prompt_token_ids: Int32Array.from([1]),
    completion_token_ids: new Int32Array(COMPLETION).fill(10 + source),
    loss_mask: new Uint8Array(COMPLETION).fill(1),
    token_logprobs: null,
    top_k: 0,
    top_ids: null,
    top_logprobs: null,
    finish_reason: 'trace',
    sampling: '{}',
    source_file: `source-${source}.jsonl`,
    source_line: r + 1,
    metadata: '{}',
  };
}

/** The source of every trained token of one epoch, in training order. */
async function epochSources(file: string, epoch: number): Promise<number[]> {
  const options = { file, vocab: fullVocab(64), seqLen: 32, batchSize: 4, shuffleRows: 16, seed: 0, topK: 0 };
  const sources: number[] = [];
  for await (const batch of epochBatches(options, epoch))
    for (let i = 0; i < batch.targets.length; i++)
      if (batch.weights[i] === 1 && batch.targets[i] >= 10) sources.push(batch.targets[i] - 10);
  return sources;
}

describe('training data order', () => {
  it('mixes sources that arrive one after another across the whole file, each row once an epoch', async () => {
    const file = join(work, 'train.arrow');
    const rows: TargetRow[] = [];
    for (let source = 0; source < SOURCES; source++)
      for (let r = 0; r < ROWS_PER_SOURCE; r++) rows.push(row(source, r));
    await writeTargetsFile(file, rows);

    const first = await epochSources(file, 0);
    // Every row's tokens once (a token on a window's edge is trained in one window only).
    const perSource = new Array<number>(SOURCES).fill(0);
    for (const source of first) perSource[source]++;
    expect(perSource).toEqual(new Array(SOURCES).fill(ROWS_PER_SOURCE * COMPLETION));
    // The first quarter of the epoch draws on sources from all over the file (the buffer alone: sources 0–4).
    const firstQuarter = new Set(first.slice(0, first.length / 4));
    expect([...firstQuarter].some((source) => source >= SOURCES / 2)).toBe(true);
    expect(firstQuarter.size).toBeGreaterThanOrEqual(3);
    // Another epoch, another order.
    expect(await epochSources(file, 1)).not.toEqual(first);
  });
});
