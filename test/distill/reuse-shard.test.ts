/**
 * Distill by row id on the real stories260K target in llama.cpp (greedy), with real ShareGPT
 * prompts: `--reuse` takes an earlier night's rows and distills only the new ones, and `--shard i/n`
 * + `fireopt merge` split the work across workers; both must give the same Arrow bytes as one full
 * distill of the same dataset.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTargetRows } from '../../src/formats/targets-schema.js';
import type { DistillSummary } from '../../src/distill/index.js';
import { runCli } from '../helpers/cli.js';
import { haveShared, sharedPath, SHAREGPT, STORIES_TARGETS } from '../helpers/shared.js';
import { writeStoriesGguf, type StoriesGguf } from '../targets/stories-gguf.js';

interface ShareGpt {
  conversations: Array<{ from: string; value: string }>;
}

let work: string;
let gguf: StoriesGguf;
let night1: string;
let night2: string;
let full2: string;
const MAX_TOKENS = 12;
// An f16 KV cache makes llama.cpp's log-probabilities depend (in their last bits) on which prompts
// ran before in the same context; with f32 they are exact, so row order cannot change a byte.
const EXACT = ['--set', 'target.kv_cache_type=f32'];

/** Ingest ShareGPT prompts [from, to) as one night's traces. */
async function ingestNight(name: string, prompts: string[]): Promise<string> {
  const file = join(work, `${name}.jsonl`);
  writeFileSync(file, prompts.map((prompt) => JSON.stringify({ prompt })).join('\n') + '\n');
  const out = join(work, `${name}-dataset`);
  const result = await runCli(['--quiet', 'ingest', file, '--out', out, '--heldout', '0.25']);
  expect(result.code, result.stderr).toBe(0);
  return out;
}

async function distill(dataset: string, out: string, ...extra: string[]): Promise<DistillSummary> {
  const args = ['--json', '--quiet', 'distill', dataset, '--out', out, '--target-model', gguf.path, ...EXACT];
  const result = await runCli([...args, '--max-tokens', String(MAX_TOKENS), '--top-logprobs', '3', ...extra]);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as DistillSummary;
}

/** The Arrow files of a targets folder, byte for byte. */
function arrowBytes(dir: string): Record<string, Buffer> {
  return { train: readFileSync(join(dir, 'train.arrow')), heldout: readFileSync(join(dir, 'heldout.arrow')) };
}

async function ids(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const split of ['train', 'heldout'])
    for await (const row of readTargetRows(join(dir, `${split}.arrow`))) found.push(row.id);
  return found;
}

describe.skipIf(!haveShared(...STORIES_TARGETS, SHAREGPT))('distill by row id: --reuse, --shard, merge', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'fireopt-reuse-shard-'));
    gguf = writeStoriesGguf();
    const sharegpt = JSON.parse(readFileSync(sharedPath(SHAREGPT), 'utf8')) as ShareGpt[];
    const prompts = sharegpt.slice(0, 20).map((c) => c.conversations[0].value.split(/\s+/).slice(0, 8).join(' '));
    // Night 2 drops the first 3 traces of night 1 and adds 8 new ones.
    night1 = await ingestNight('night1', prompts.slice(0, 12));
    night2 = await ingestNight('night2', prompts.slice(3, 20));
    full2 = join(work, 'full2');
    await distill(night2, full2);
  }, 120_000);

  afterAll(() => {
    gguf?.remove();
    if (work && !process.env.KEEP) rmSync(work, { recursive: true, force: true });
  });

  it(
    '--reuse distills only the new rows, drops the rows that left, and ' + 'writes the bytes of a full distill',
    async () => {
      const targets1 = join(work, 'targets1');
      const first = await distill(night1, targets1);
      expect(first.counts.input).toBe(12);
      const targets2 = join(work, 'targets2');
      const second = await distill(night2, targets2, '--reuse', targets1);
      expect(second.counts).toMatchObject({ input: 17, ok: 17, reused: 9, failed: 0 });
      expect(second.reuse?.reason).toMatch(/reusing rows of/);
      expect(arrowBytes(targets2)).toEqual(arrowBytes(full2));
      const left = new Set(await ids(targets1));
      for (const id of await ids(targets2)) left.delete(id);
      expect(left.size).toBe(3); // the rows whose traces left the dataset are gone from the new targets

      // Reusing the output folder itself (as `fireopt run` does night after night): everything reused.
      const again = await distill(night2, targets2, '--reuse', targets2);
      expect(again.counts).toMatchObject({ input: 17, reused: 17 });
      expect(arrowBytes(targets2)).toEqual(arrowBytes(full2));
    },
  );

  it('re-distills every row, saying why, when a setting that changes outputs differs', async () => {
    const out = join(work, 'longer');
    const result = await runCli([
      'distill',
      night2,
      '--out',
      out,
      '--target-model',
      gguf.path,
      '--max-tokens',
      String(MAX_TOKENS + 1),
      '--top-logprobs',
      '3',
      '--reuse',
      join(work, 'full2'),
      ...EXACT,
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/0 of 17 rows reused: re-distilling every row: .*distill\.max_tokens: 12 → 13/);
  });

  it('--shard i/n + merge writes the bytes of one unsharded run', async () => {
    const shards = [0, 1, 2].map((index) => join(work, `shard-${index}`));
    const counts: number[] = [];
    for (const [index, dir] of shards.entries()) {
      const summary = await distill(night2, dir, '--shard', `${index}/3`);
      expect(summary.shard).toEqual({ index, count: 3 });
      counts.push(summary.counts.input);
      const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { shard: unknown };
      expect(manifest.shard).toEqual({ index, count: 3, limit: 0 });
    }
    expect(counts.reduce((a, b) => a + b)).toBe(17);
    expect(Math.min(...counts)).toBeGreaterThan(0);
    const merged = join(work, 'merged');
    const result = await runCli(['--json', '--quiet', 'merge', shards[2], shards[0], shards[1], '--out', merged]);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ shards: 3, counts: { input: 17, ok: 17 } });
    expect(arrowBytes(merged)).toEqual(arrowBytes(full2));
    const manifest = JSON.parse(readFileSync(join(merged, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({
      kind: 'targets',
      shard: null,
      counts: { input: 17, rows: { train: expect.any(Number) } },
    });

    // A shard reuses earlier targets too (what a nightly Indexed Job does with the last merged targets).
    const reusedShard = join(work, 'shard-1-reused');
    const shard1 = await distill(night2, reusedShard, '--shard', '1/3', '--reuse', join(work, 'targets1'));
    expect(shard1.counts.reused).toBeGreaterThan(0);
    expect(shard1.counts.reused).toBeLessThan(shard1.counts.input);
    expect(arrowBytes(reusedShard)).toEqual(arrowBytes(shards[1]));

    // A shard keeps its rows when the dataset grows: every night-1 row of shard 0 is in night 2's shard 0 too.
    const shard0Night1 = join(work, 'shard-0-night1');
    await distill(night1, shard0Night1, '--shard', '0/3');
    const shard0 = new Set(await ids(shards[0]));
    const night2Ids = new Set(await ids(full2));
    for (const id of await ids(shard0Night1)) if (night2Ids.has(id)) expect(shard0.has(id)).toBe(true);
  });

  it('merge refuses missing, duplicated and foreign shards (exit 2, naming them), and a bad --shard', async () => {
    const shards = [0, 1, 2].map((index) => join(work, `shard-${index}`));
    const missing = await runCli(['merge', shards[0], shards[2], '--out', join(work, 'bad')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/missing shard 1\/3 \(2 of 3 given\)/);

    const duplicated = await runCli(['merge', ...shards, shards[1], '--out', join(work, 'bad')]);
    expect(duplicated.code).toBe(2);
    expect(duplicated.stderr).toMatch(/shard 1\/3 given more than once/);

    const foreign = join(work, 'foreign-1');
    await distill(night2, foreign, '--shard', '1/3', '--top-logprobs', '2');
    const mixed = await runCli(['merge', shards[0], foreign, shards[2], '--out', join(work, 'bad')]);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toMatch(/not shards of one run: different target or settings: distill\.top_logprobs: 3 → 2/);

    const otherNight = await runCli([
      'merge',
      join(work, 'shard-0-night1'),
      shards[1],
      shards[2],
      '--out',
      join(work, 'bad'),
    ]);
    expect(otherNight.code).toBe(2);
    expect(otherNight.stderr).toMatch(/not shards of one run: distilled from different datasets/);

    const unsharded = await runCli(['merge', full2, '--out', join(work, 'bad')]);
    expect(unsharded.code).toBe(2);
    expect(unsharded.stderr).toMatch(/not a shard/);

    const outOfRange = await runCli([
      'distill',
      night2,
      '--out',
      join(work, 'bad'),
      '--target-model',
      gguf.path,
      '--shard',
      '3/3',
    ]);
    expect(outOfRange.code).toBe(2);
    expect(outOfRange.stderr).toMatch(/--shard 3\/3: expected i\/n with 0 <= i < n/);
  });
});
