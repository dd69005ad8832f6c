/**
 * `--out` safety, as a user meets it: a command may replace only an earlier output of its own kind;
 * the current folder, a folder above it or an input, and anything the command did not write are
 * refused with exit 2 before any work, and the user's files stay byte for byte as they were.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBin } from '../helpers/cli.js';
import { demoTarget, exampleTraces, scratch, snapshot, spawnCli, waitFor } from './helpers.js';

const tmp = scratch('outputs');
afterAll(() => tmp.cleanup());
const dataset = tmp.at('ds');

beforeAll(() => {
  const made = runBin(['ingest', exampleTraces, '--out', dataset, '--quiet']);
  expect(made.code, made.stderr).toBe(0);
});

/** A folder holding the user's own files (or a command's other output), created fresh for each test. */
function userFolder(name: string, files: Record<string, string>): string {
  const dir = tmp.at(name);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
  return dir;
}

describe('--out refuses what the command did not write (exit 2, nothing touched)', () => {
  it('ingest --out . in a folder holding notes.txt', () => {
    const dir = userFolder('cwd-notes', { 'notes.txt': 'my notes\n' });
    const before = snapshot(dir);
    const run = runBin(['ingest', exampleTraces, '--out', '.'], { cwd: dir });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('ingest --out .');
    expect(run.stderr).toContain('is the current directory');
    expect(run.stderr).not.toContain('--force'); // never allowed, so not offered
    expect(snapshot(dir)).toEqual(before);
    expect(runBin(['ingest', exampleTraces, '--out', '.', '--force'], { cwd: dir }).code).toBe(2);
    expect(snapshot(dir)).toEqual(before);
  });

  it('ingest --out .. (a folder above the current one)', () => {
    const dir = userFolder('parent-notes', { 'notes.txt': 'x', 'sub/keep.txt': 'y' });
    const before = snapshot(dir);
    const run = runBin(['ingest', exampleTraces, '--out', '..', '--force'], { cwd: join(dir, 'sub') });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('is a folder above the current directory');
    expect(snapshot(dir)).toEqual(before);
  });

  it('--out afile.txt: a file is not turned into a folder, unless --force', () => {
    const dir = userFolder('afile', { 'afile.txt': 'precious\n' });
    const run = runBin(['ingest', exampleTraces, '--out', 'afile.txt'], { cwd: dir });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('afile.txt: refusing to write there: it is a file, and ingest writes a folder there');
    expect(run.stderr).toContain('pass --force to replace it');
    expect(readFileSync(join(dir, 'afile.txt'), 'utf8')).toBe('precious\n');
    const forced = runBin(['ingest', exampleTraces, '--out', 'afile.txt', '--force', '--quiet'], { cwd: dir });
    expect(forced.code, forced.stderr).toBe(0);
    expect(existsSync(join(dir, 'afile.txt', 'manifest.json'))).toBe(true);
  });

  it('a non-empty folder without an ingest manifest is refused; an earlier dataset is replaced', () => {
    const dir = userFolder('project', { 'README.md': '# mine\n', 'src/a.py': 'print(1)\n' });
    const before = snapshot(dir);
    const run = runBin(['ingest', exampleTraces, '--out', dir]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('is a non-empty folder and is not a traces dataset');
    expect(snapshot(dir)).toEqual(before);
    const again = runBin(['ingest', exampleTraces, '--out', dataset, '--quiet']);
    expect(again.code, again.stderr).toBe(0);
  });

  it('distill ds --out ds: the input dataset is never replaced, even with --force', () => {
    const before = snapshot(dataset);
    for (const extra of [[], ['--force']]) {
      const run = runBin(['distill', dataset, '--out', dataset, '--target-model', demoTarget, ...extra]);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('is an input of this distill');
    }
    expect(snapshot(dataset)).toEqual(before);
    expect(existsSync(join(tmp.dir, '.ds.distill-journal'))).toBe(false);
  });

  it('eval --out <a train run folder> keeps draft/, state/ and metrics.jsonl', () => {
    const run = userFolder('train-run', {
      'draft/manifest.json': JSON.stringify({ kind: 'draft' }),
      'state/state.json': '{}',
      'metrics.jsonl': '{"step":1}\n',
    });
    const before = snapshot(run);
    const other = runBin(['eval', '--model', 'prompt-lookup', '--data', dataset, '--out', run]);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('is not an eval report folder');
    const holding = runBin(['eval', '--model', join(run, 'draft'), '--data', dataset, '--out', run, '--force']);
    expect(holding.code).toBe(2);
    expect(holding.stderr).toContain('an input of this eval');
    expect(snapshot(run)).toEqual(before);
  });

  it('convert --out onto a file that is not a GGUF; a GGUF it wrote is replaced', () => {
    const dir = userFolder('convert', { 'notes.gguf': 'not a model\n' });
    const refused = runBin(['convert', demoTarget, '--to', 'gguf', '--out', join(dir, 'notes.gguf')]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('exists and is not a GGUF file');
    expect(readFileSync(join(dir, 'notes.gguf'), 'utf8')).toBe('not a model\n');
    for (let i = 0; i < 2; i++) {
      const made = runBin(['convert', demoTarget, '--to', 'gguf', '--out', join(dir, 'draft.gguf')]);
      expect(made.code, made.stderr).toBe(0);
    }
  });

  it('fireopt run: a run directory and a release folder it did not make are refused before any stage', () => {
    const dir = userFolder('run-notes', { 'notes.txt': 'n' });
    const release = userFolder('release-notes', { 'deploy.sh': 'echo' });
    const before = [snapshot(dir), snapshot(release)];
    const runDir = runBin(['run', '--dir', dir, '--traces', exampleTraces]);
    expect(runDir.code).toBe(2);
    expect(runDir.stderr).toContain(`run --dir ${dir}: refusing to write there: it is a non-empty folder`);
    expect(runDir.stderr).toContain('is not a fireopt run directory');
    const releaseRun = runBin(['run', '--dir', tmp.at('fresh-run'), '--release', release, '--traces', exampleTraces]);
    expect(releaseRun.code).toBe(2);
    expect(releaseRun.stderr).toContain('is not a release folder');
    expect([snapshot(dir), snapshot(release)]).toEqual(before);
    expect(existsSync(tmp.at('fresh-run'))).toBe(false);
  });
});

describe('two commands writing the same output at once', () => {
  it('the second fails (exit 2) naming the first; the lock goes with it; a stale lock is taken over', async () => {
    const out = tmp.at('locked-ds');
    const lock = tmp.at('.locked-ds.lock');
    const first = spawnCli(['ingest', '-', '--out', out, '--quiet']); // waits on stdin, holding the lock
    expect(await waitFor(() => existsSync(lock))).toBe(true);
    const second = runBin(['ingest', exampleTraces, '--out', out]);
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(`${out}: fireopt ingest (pid ${first.child.pid}`);
    expect(second.stderr).toContain('is writing this output right now');
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(143);
    expect(existsSync(lock)).toBe(false);

    // A lock left by a process that is gone (kill -9) does not block the next run.
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    const stale = { pid: gone, command: 'ingest', token: 'dead', started_at: '2026-01-01T00:00:00Z' };
    writeFileSync(lock, JSON.stringify(stale));
    const third = runBin(['ingest', exampleTraces, '--out', out, '--quiet']);
    expect(third.code, third.stderr).toBe(0);
    expect(existsSync(lock)).toBe(false);
  });
});
