import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createProgressRenderer, type ProgressJsonLine } from '../../src/cli/progress.js';
import { runBin, runCli } from '../helpers/cli.js';
import { repoRoot } from '../helpers/shared.js';

const example = join(repoRoot, 'datasets/example-traces.jsonl');
const tmp = mkdtempSync(join(tmpdir(), 'fireopt-progress-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('progress on the context stderr', () => {
  it('--json: progress comes as JSON lines on stderr, the summary as JSON on stdout (spawned)', () => {
    const run = runBin(['ingest', example, '--out', join(tmp, 'json'), '--json']);
    expect(run.code).toBe(0);
    const lines = run.stderr
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as ProgressJsonLine);
    expect(lines.every((line) => line.type === 'progress' && !Number.isNaN(Date.parse(line.time)))).toBe(true);
    const ingest = lines.filter((line) => line.task === 'ingest');
    expect(ingest.map((line) => line.event)).toEqual(expect.arrayContaining(['start', 'end']));
    const end = ingest.find((line) => line.event === 'end') as ProgressJsonLine;
    expect(end).toMatchObject({ unit: 'MB' });
    expect(end.elapsed_s).toBeGreaterThan(0);
    expect(typeof end.done).toBe('number');
    expect(JSON.parse(run.stdout)).toEqual(expect.any(Object));
  });

  it('without --json: plain lines on the context stderr (in-process, nothing on the real stderr)', async () => {
    const run = await runCli(['ingest', example, '--out', join(tmp, 'plain')]);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/^ingest: done, [\d.]+ MB in [\d.]+ s \(/m);
    expect(() => JSON.parse(run.stderr.split('\n')[0])).toThrow();
  });

  it('throttles advance lines, always writes start, end and warnings, and --quiet keeps only warnings', () => {
    const written: string[] = [];
    const write = (text: string): void => void written.push(text);
    const sink = createProgressRenderer({ write, json: true, plainIntervalMs: 60_000 });
    sink({ kind: 'start', task: 'train', total: 10, unit: 'steps' });
    sink({ kind: 'advance', task: 'train', done: 5, fields: { loss: 2.5 } }); // within the interval: not written
    sink({ kind: 'log', level: 'warn', message: 'held-out split is empty' });
    sink({ kind: 'end', task: 'train', done: 10 });
    const lines = written.map((text) => JSON.parse(text) as ProgressJsonLine);
    expect(lines.map((line) => [line.event, line.task ?? line.level])).toEqual([
      ['start', 'train'],
      ['log', 'warn'],
      ['end', 'train'],
    ]);
    expect(lines[0]).toMatchObject({ total: 10, unit: 'steps' });

    const quiet: string[] = [];
    const quietSink = createProgressRenderer({ write: (text) => void quiet.push(text), quiet: true });
    quietSink({ kind: 'start', task: 'train', unit: 'steps' });
    quietSink({ kind: 'log', level: 'info', message: 'info' });
    quietSink({ kind: 'log', level: 'warn', message: 'careful' });
    expect(quiet).toEqual(['warning: careful\n']);

    const every: string[] = [];
    const eager = createProgressRenderer({ write: (text) => void every.push(text), json: true, plainIntervalMs: 0 });
    eager({ kind: 'start', task: 'distill', unit: 'rows' });
    eager({ kind: 'advance', task: 'distill', done: 3, total: 9, fields: { tokens: 120 } });
    const advance = { event: 'advance', done: 3, total: 9, unit: 'rows', fields: { tokens: 120 } };
    expect(JSON.parse(every[1])).toMatchObject(advance);
  });
});
