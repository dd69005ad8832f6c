/**
 * `fireopt ingest --shard i/n` over several real trace files (AlpacaEval outputs, Taskmaster-4
 * dialogues), with duplicates across files, then `fireopt merge`: the same rows, in the same order,
 * with the same duplicates removed, as one unsharded ingest.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTraceRows, type TraceRow } from '../../src/formats/traces-schema.js';
import { shardOf } from '../../src/util/shard.js';
import { runCli } from '../helpers/cli.js';
import { haveShared } from '../helpers/shared.js';
import { PIPELINE_TRACES, writeAlpacaTraces, writeTaskmasterTraces } from '../pipeline/traces.js';

async function rowsOf(dir: string): Promise<Record<string, TraceRow[]>> {
  const rows: Record<string, TraceRow[]> = { train: [], heldout: [] };
  for (const split of ['train', 'heldout'])
    for await (const row of readTraceRows(join(dir, `${split}.arrow`))) rows[split].push(row);
  return rows;
}

describe.skipIf(!haveShared(...PIPELINE_TRACES))('fireopt ingest --shard + merge', () => {
  let work: string;
  const files: string[] = [];

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'fireopt-ingest-shard-'));
    mkdirSync(join(work, 'traces'));
    writeAlpacaTraces(join(work, 'all-alpaca.jsonl'), 40, 200);
    const alpaca = readFileSync(join(work, 'all-alpaca.jsonl'), 'utf8').trim().split('\n');
    // 6 files: 4 of Alpaca rows (the last repeats 5 rows of the first: duplicates across files), 2 of dialogues.
    for (let i = 0; i < 4; i++) {
      const lines = alpaca.slice(i * 10, i * 10 + 10);
      let name = `alpaca-${i}`;
      if (i === 3) {
        lines.push(...alpaca.slice(0, 5));
        // the temporary folder is in the hashed path: pick a name whose shard is not alpaca-0's
        for (let k = 0; shardOf(join(work, 'traces', `${name}.jsonl`), 3) === shardOf(files[0], 3); k++) {
          name = `alpaca-3-${k}`;
        }
      }
      files.push(join(work, 'traces', `${name}.jsonl`));
      writeFileSync(files[i], lines.join('\n') + '\n');
    }
    for (let i = 0; i < 2; i++) {
      files.push(join(work, 'traces', `coffee-${i}.jsonl`));
      writeTaskmasterTraces(files[4 + i], 8, i * 8);
    }
  });

  afterAll(() => {
    if (work && !process.env.KEEP) rmSync(work, { recursive: true, force: true });
  });

  it('merged shards hold exactly the rows of one unsharded ingest, duplicates across shards removed', async () => {
    const glob = join(work, 'traces', '*.jsonl');
    const whole = await runCli(['--json', '--quiet', 'ingest', glob, '--out', join(work, 'whole'), '--heldout', '0.3']);
    expect(whole.code, whole.stderr).toBe(0);
    const wholeSummary = JSON.parse(whole.stdout) as { rows: { total: number }; duplicates_removed: number };
    expect(wholeSummary.duplicates_removed).toBeGreaterThanOrEqual(5);

    const shards = [0, 1, 2].map((i) => join(work, `shard-${i}`));
    for (const [index, out] of shards.entries()) {
      const result = await runCli([
        '--quiet',
        'ingest',
        glob,
        '--out',
        out,
        '--heldout',
        '0.3',
        '--shard',
        `${index}/3`,
      ]);
      expect(result.code, result.stderr).toBe(0);
    }
    const merged = await runCli(['--json', '--quiet', 'merge', ...shards.reverse(), '--out', join(work, 'merged')]);
    expect(merged.code, merged.stderr).toBe(0);
    const summary = JSON.parse(merged.stdout) as { rows: { total: number }; duplicates_across_shards: number };
    expect(summary.rows.total).toBe(wholeSummary.rows.total);
    expect(summary.duplicates_across_shards).toBe(5); // alpaca-0's 5 rows repeated in another shard's file

    expect(await rowsOf(join(work, 'merged'))).toEqual(await rowsOf(join(work, 'whole')));
    const manifest = (dir: string) => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    const [m, w] = [manifest(join(work, 'merged')), manifest(join(work, 'whole'))];
    for (const key of ['rows', 'records', 'samples_before_dedup', 'duplicates_removed', 'input_bytes', 'split']) {
      expect(m[key], key).toEqual(w[key]);
    }
    expect(m.inputs.map((i: { path: string }) => i.path)).toEqual(w.inputs.map((i: { path: string }) => i.path));
  });

  it('merges shards that hold no file (7 shards of 6 files: at least one is empty)', async () => {
    const glob = join(work, 'traces', '*.jsonl');
    const shards = Array.from({ length: 7 }, (_, i) => join(work, `seven-${i}`));
    for (const [index, out] of shards.entries()) {
      const args = ['--quiet', 'ingest', glob, '--out', out, '--heldout', '0.3', '--shard', `${index}/7`];
      const result = await runCli(args);
      expect(result.code, result.stderr).toBe(0);
    }
    const empty = shards.filter((dir) => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).rows.total === 0);
    expect(empty.length).toBeGreaterThanOrEqual(1);
    const merged = await runCli(['--quiet', 'merge', ...shards, '--out', join(work, 'merged-7')]);
    expect(merged.code, merged.stderr).toBe(0);
    // `whole` is the unsharded ingest of the test above.
    expect(await rowsOf(join(work, 'merged-7'))).toEqual(await rowsOf(join(work, 'whole')));
  });

  it('merge refuses a missing ingest shard (exit 2) and --shard with stdin', async () => {
    const missing = await runCli(['merge', join(work, 'shard-0'), join(work, 'shard-2'), '--out', join(work, 'bad')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/missing shard 1\/3/);
    const stdin = await runCli(['ingest', '-', '--out', join(work, 'bad'), '--shard', '0/2']);
    expect(stdin.code).toBe(2);
    expect(stdin.stderr).toMatch(/--shard takes files, not stdin/);
  });
});
