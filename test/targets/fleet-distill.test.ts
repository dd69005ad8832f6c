/**
 * Distill across a fleet on this machine: four `fireopt serve` processes over stories260K on
 * loopback, one killed with SIGKILL mid-run and restarted at its address — under one distill process,
 * and under four sharded ones (`--shard i/4`) joined by `fireopt merge`. Every row comes out exactly
 * once and equal to one process against a single replica (greedy): every column identical but the
 * log-probability floats, which agree within 5e-3 (see expectSameRows).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTargetRows, type TargetRow } from '../../src/formats/targets-schema.js';
import { ingestPrompts, runBinAsync } from '../helpers/cli.js';
import { haveShared, repoRoot, sharedPath, SHAREGPT, STORIES_TARGETS } from '../helpers/shared.js';
import { writeStoriesGguf, type StoriesGguf } from './stories-gguf.js';

const ROWS = 30;
const REPLICAS = 4;
const SHARDS = 4;

interface Replica {
  port: number;
  url: string;
  child: ChildProcess;
}

let work: string;
let gguf: StoriesGguf;
let dataset: string;
/** Targets of one distill process against replicas[0] alone: what every fleet run must equal. */
let single: string;
const replicas: Replica[] = [];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A spawned `fireopt serve` on `port`, resolved once it listens (it prints its URL first). */
function startServe(port: number): Promise<Replica> {
  const args = ['--json', 'serve', '--model', gguf.path, '--port', String(port), '--context-size', '256'];
  const child = spawn(process.execPath, [join(repoRoot, 'bin/fireopt'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (!stdout.includes('\n')) return;
      const { url } = JSON.parse(stdout.split('\n')[0]) as { url: string };
      resolve({ port, url, child });
    });
    child.on('exit', (code) => reject(new Error(`fireopt serve on ${port} exited early (${code}): ${stderr}`)));
  });
}

function stop(replica: Replica, signal: NodeJS.Signals): Promise<void> {
  if (replica.child.exitCode !== null || replica.child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => replica.child.once('exit', () => resolve()));
  replica.child.kill(signal);
  return exited;
}

/** The config of every replica, as they are now. */
function fleetConfig(): string {
  return writeConfig(
    'fleet',
    replicas.map((replica) => replica.url),
  );
}

function writeConfig(name: string, urls: string[]): string {
  const path = join(work, `${name}.yaml`);
  const lines = [
    'target:',
    '  engine: openai',
    `  base_urls: [${urls.join(', ')}]`,
    '  model: stories260K',
    '  concurrency: 2',
    '  timeout_ms: 20000',
    '  max_retries: 8',
    '  retry_min_delay_ms: 50',
    '  retry_max_delay_ms: 400',
  ];
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

/** `concurrency`: rows in flight in this process. */
function distillArgs(config: string, out: string, concurrency = 6): string[] {
  const settings = [`distill.concurrency=${concurrency}`, 'distill.chunk_rows=1', `distill.tokenizer=${gguf.path}`];
  return [
    '-c',
    config,
    '--json',
    '--quiet',
    'distill',
    dataset,
    '--out',
    out,
    '--max-tokens',
    '12',
    '--top-logprobs',
    '3',
    ...settings.flatMap((setting) => ['--set', setting]),
  ];
}

async function readRows(out: string): Promise<TargetRow[]> {
  const rows: TargetRow[] = [];
  for (const split of ['train', 'heldout']) {
    for await (const row of readTargetRows(join(out, `${split}.arrow`))) rows.push(row);
  }
  return rows;
}

/**
 * `actual` holds the rows of `expected`, each once, in the same order, with every column identical
 * (token ids, top-k ids, masks, finish reasons, sampling, metadata) except the log-probability
 * floats: fireopt serve reuses a prompt prefix's KV cache (F16) from whatever request came before on
 * that replica, so the last bits of a log-probability depend on the request history — as on a real
 * serving fleet, whose kernels are not batch-invariant. Those agree within 5e-3 (an F16 KV cache moves
 * them by ~1.5e-3 against F32, docs/cli.md; 1.27e-3 was seen between two F16 runs).
 */
async function expectSameRows(actual: string, expected: string): Promise<void> {
  const [actualRows, expectedRows] = [await readRows(actual), await readRows(expected)];
  const ids = actualRows.map((row) => row.id);
  expect(new Set(ids).size).toBe(ROWS);
  expect(ids).toEqual(expectedRows.map((row) => row.id));
  const withoutFloats = ({ token_logprobs: _t, top_logprobs: _k, ...rest }: TargetRow) => rest;
  expect(actualRows.map(withoutFloats)).toEqual(expectedRows.map(withoutFloats));
  actualRows.forEach((row, i) => {
    for (const column of ['token_logprobs', 'top_logprobs'] as const) {
      const [got, want] = [row[column] as Float32Array, expectedRows[i][column] as Float32Array];
      expect(got.length).toBe(want.length);
      got.forEach((value, j) => expect(Math.abs(value - want[j])).toBeLessThan(5e-3));
    }
  });
}

/** Chunks (each one row: chunk_rows 1) journaled so far by the distill run writing `out`. */
function journalChunks(out: string): number {
  const journal = join(dirname(out), `.${basename(out)}.distill-journal`);
  return existsSync(journal) ? readdirSync(journal).filter((f) => /^chunk-\d+\.json$/.test(f)).length : 0;
}

/** Rows the distill run writing `out` has finished: its manifest's count once done, else its journal's. */
function rowsDone(out: string): number {
  return existsSync(join(out, 'manifest.json'))
    ? (JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { counts: { input: number } }).counts.input
    : journalChunks(out);
}

/** Poll (no time assertion: the machine may be loaded) until each run writing `outs` has done `rows` rows. */
async function untilJournaled(outs: string[], rows: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (outs.some((out) => rowsDone(out) < rows) && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 5));
}

interface Summary {
  counts: { input: number; ok: number; failed: number };
  replicas: Array<{ baseUrl: string; rows: number; tokens: number; failedAttempts: number; timesTakenOut: number }>;
}

beforeAll(async () => {
  if (!haveShared(...STORIES_TARGETS)) return;
  work = mkdtempSync(join(tmpdir(), 'fireopt-fleet-'));
  gguf = writeStoriesGguf();
  // Real user prompts, cut to a story-sized opening (the target is a tiny story model).
  const sharegpt = JSON.parse(readFileSync(sharedPath(SHAREGPT), 'utf8')) as Array<{
    conversations: Array<{ value: string }>;
  }>;
  const prompts = sharegpt.slice(0, ROWS).map((c) => c.conversations[0].value.split(/\s+/).slice(0, 8).join(' '));
  dataset = await ingestPrompts(work, prompts);
  const ports = await Promise.all(Array.from({ length: REPLICAS }, freePort));
  replicas.push(...(await Promise.all(ports.map(startServe))));
  single = join(work, 'single');
  const alone = await runBinAsync(distillArgs(writeConfig('single', [replicas[0].url]), single));
  if (alone.code !== 0) throw new Error(`the single-replica distill failed (${alone.code}): ${alone.stderr}`);
}, 90_000);

afterAll(async () => {
  await Promise.all(replicas.map((replica) => stop(replica, 'SIGTERM')));
  gguf?.remove();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!haveShared(...STORIES_TARGETS))('distill over a fleet of fireopt serve replicas', () => {
  it('survives a replica killed and restarted mid-run: every row once, equal to one replica', async () => {
    const fleet = join(work, 'fleet');
    const running = runBinAsync(distillArgs(fleetConfig(), fleet));
    await untilJournaled([fleet], 6);
    const victim = replicas[1];
    await stop(victim, 'SIGKILL');
    const killedAfter = journalChunks(fleet);
    replicas[1] = await startServe(victim.port);
    const result = await running;
    expect(result.code, result.stderr).toBe(0);
    expect(killedAfter).toBeLessThan(ROWS); // killed mid-run, not after the end
    expect(result.stderr).toContain(`target replica ${victim.url} taken out`);

    const summary = JSON.parse(result.stdout) as Summary;
    expect(summary.counts).toMatchObject({ ok: ROWS, failed: 0 });
    expect(summary.replicas.map((replica) => replica.baseUrl)).toEqual(replicas.map((replica) => replica.url));
    expect(summary.replicas.reduce((sum, replica) => sum + replica.rows, 0)).toBe(ROWS);
    expect(summary.replicas[1].timesTakenOut).toBeGreaterThanOrEqual(1);
    expect(summary.replicas[1].failedAttempts).toBeGreaterThanOrEqual(1);
    const manifest = JSON.parse(readFileSync(join(fleet, 'manifest.json'), 'utf8')) as Summary & {
      target: { baseUrls: string[] };
    };
    expect(manifest.replicas).toEqual(summary.replicas);
    expect(manifest.target.baseUrls).toEqual(replicas.map((replica) => replica.url));

    await expectSameRows(fleet, single);
  }, 180_000);

  it('continues after the distill process is killed with SIGKILL, each row once, equal to one replica', async () => {
    const out = join(work, 'killed');
    const args = distillArgs(fleetConfig(), out);
    const child = spawn(process.execPath, [join(repoRoot, 'bin/fireopt'), ...args], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await untilJournaled([out], 6);
    child.kill('SIGKILL');
    await exited;
    const journaled = journalChunks(out);
    expect(journaled).toBeGreaterThanOrEqual(6);
    expect(journaled).toBeLessThan(ROWS); // killed midway, not after the end
    expect(existsSync(out)).toBe(false); // no partial output

    const resumed = await runBinAsync(args);
    expect(resumed.code, resumed.stderr).toBe(0);
    const summary = JSON.parse(resumed.stdout) as Summary & { counts: { resumed: number } };
    expect(summary.counts).toMatchObject({ ok: ROWS, failed: 0 });
    expect(summary.counts.resumed).toBeGreaterThanOrEqual(6);
    // The replicas served the rows this run did, and only those.
    expect(summary.replicas.reduce((sum, replica) => sum + replica.rows, 0)).toBe(ROWS - summary.counts.resumed);
    await expectSameRows(out, single);
  }, 120_000);

  it('4 sharded distill processes over 4 replicas, one killed and restarted: merged equal to one process', async () => {
    mkdirSync(join(work, 'shards'));
    const shards = Array.from({ length: SHARDS }, (_, index) => join(work, 'shards', String(index)));
    const config = fleetConfig(); // every process lists every replica, as each pod of an Indexed Job would
    const running = shards.map((out, index) =>
      // 2 rows in flight each (8 over the fleet): the shards hold 5 to 13 rows, still running after their first.
      runBinAsync([...distillArgs(config, out, 2), '--shard', `${index}/${SHARDS}`]),
    );
    // Every process past its start (identity check included) and distilling: then kill a replica.
    await untilJournaled(shards, 1);
    const victim = replicas[2];
    await stop(victim, 'SIGKILL');
    const killedAfter = shards.reduce((sum, out) => sum + rowsDone(out), 0);
    replicas[2] = await startServe(victim.port);
    const results = await Promise.all(running);
    for (const result of results) expect(result.code, result.stderr).toBe(0);
    expect(killedAfter).toBeLessThan(ROWS); // killed mid-run, not after the end

    const summaries = results.map((result) => JSON.parse(result.stdout) as Summary);
    const shardRows = summaries.map((summary) => summary.counts.ok);
    expect(shardRows.reduce((a, b) => a + b)).toBe(ROWS);
    expect(Math.min(...shardRows)).toBeGreaterThan(0); // every process had work
    for (const summary of summaries) {
      expect(summary.counts.failed).toBe(0);
      expect(summary.replicas.map((replica) => replica.baseUrl)).toEqual(replicas.map((replica) => replica.url));
      expect(summary.replicas.reduce((sum, replica) => sum + replica.rows, 0)).toBe(summary.counts.ok);
    }
    // The kill reached the run: attempts at the victim failed (its requests in flight when it died, or
    // refused while it was down) and were retried elsewhere. Whether it was also taken out depends on
    // timing: a reset request in flight counts towards a streak of 3, only a refusal takes it out at once.
    const failedAtVictim = summaries.reduce((sum, summary) => sum + summary.replicas[2].failedAttempts, 0);
    expect(failedAtVictim).toBeGreaterThanOrEqual(1);
    expect(results.some((result) => result.stderr.includes(`(${victim.url})`))).toBe(true); // the retry lines

    const merged = join(work, 'merged');
    const merge = await runBinAsync(['--json', '--quiet', 'merge', ...[...shards].reverse(), '--out', merged]);
    expect(merge.code, merge.stderr).toBe(0);
    expect(JSON.parse(merge.stdout)).toMatchObject({ shards: SHARDS, counts: { input: ROWS, ok: ROWS, failed: 0 } });
    await expectSameRows(merged, single);
  }, 120_000);
});
