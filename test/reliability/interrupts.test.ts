/**
 * Ctrl-C and SIGTERM end every command the same way: one line saying what was kept and how to go
 * on, staging and the output lock removed, exit 130 (SIGINT) or 143 (SIGTERM), no stack trace.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBin } from '../helpers/cli.js';
import { demoTarget, exampleTraces, scratch, snapshot, spawnCli, waitFor } from './helpers.js';

const tmp = scratch('interrupts');
afterAll(() => tmp.cleanup());
const bigTraces = tmp.at('big.jsonl');

beforeAll(() => {
  // ~12 MB of distinct conversations: long enough to interrupt midway on a loaded machine.
  const lines0 = readFileSync(exampleTraces, 'utf8').split('\n').filter(Boolean);
  const records = lines0.map((line) => JSON.parse(line) as Record<string, unknown>);
  const lines: string[] = [];
  let bytes = 0;
  for (let copy = 0; bytes < 12e6; copy++) {
    for (const record of records) {
      const renamed = JSON.stringify({ ...record, id: `${String(record.id ?? 'c')}-${copy}` });
      const line = renamed.replace('"content":"', `"content":"v${copy} `); // distinct samples: dedup keeps them
      lines.push(line);
      bytes += line.length + 1;
    }
  }
  writeFileSync(bigTraces, lines.join('\n') + '\n');
});

const leftovers = (name: string): string[] => readdirSync(tmp.dir).filter((n) => n.startsWith(`.${name}.`));

describe.each([
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const)('ingest of files, %s midway', (signal, exitCode) => {
  it(`exits ${exitCode} with one line, removes its staging and lock, keeps the earlier dataset`, async () => {
    const name = `ds-${signal}`;
    const out = tmp.at(name);
    expect(runBin(['ingest', exampleTraces, '--out', out, '--quiet']).code).toBe(0);
    const before = snapshot(out);
    const run = spawnCli(['ingest', bigTraces, '--out', out, '--quiet']);
    expect(await waitFor(() => leftovers(name).some((n) => n.includes('.tmp-')))).toBe(true);
    run.child.kill(signal);
    expect(await run.exited).toBe(exitCode);
    const kept = 'no dataset written (an earlier dataset at the output path is untouched)';
    expect(run.stderr()).toBe(`fireopt: ingest interrupted (${signal}): ${kept}\n`);
    expect(leftovers(name)).toEqual([]);
    expect(snapshot(out)).toEqual(before);
  });
});

describe('distill, SIGTERM midway', () => {
  it('exits 143 saying a rerun resumes; the rerun continues from the journal', async () => {
    const dataset = tmp.at('distill-ds');
    const out = tmp.at('distill-targets');
    expect(runBin(['ingest', exampleTraces, '--out', dataset, '--quiet']).code).toBe(0);
    const args = ['distill', dataset, '--out', out, '--target-model', demoTarget, '--max-tokens', '16', '--limit', '5'];
    args.push('--set', 'distill.chunk_rows=1', '--quiet'); // a journal chunk per row: something to keep early
    const journal = tmp.at('.distill-targets.distill-journal');
    const run = spawnCli(args);
    const chunk = /^chunk-\d+\.json$/;
    const journaled = (): boolean => existsSync(journal) && readdirSync(journal).some((n) => chunk.test(n));
    expect(await waitFor(journaled, 60_000)).toBe(true);
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(143);
    const kept = 'finished rows are journaled: run the same command again to resume';
    expect(run.stderr()).toContain(`fireopt: distill interrupted (SIGTERM): ${kept}\n`);
    expect(run.stderr()).not.toMatch(/\n\s+at /);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(tmp.at('.distill-targets.lock'))).toBe(false);
    const rerun = runBin(args.filter((a) => a !== '--quiet'));
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stdout).toMatch(/\(\d+ from an earlier run\)/);
    expect(existsSync(journal)).toBe(false);
  });
});
