/**
 * Damaged and mistaken inputs get a clear error naming the file and what is wrong (exit 2): a
 * truncated Arrow file in every stage that reads one, a binary file given to ingest (its control
 * bytes escaped, never sent to the terminal), a dataset folder that does not exist.
 */
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBin } from '../helpers/cli.js';
import { demoTarget, exampleTraces, scratch } from './helpers.js';

const tmp = scratch('inputs');
afterAll(() => tmp.cleanup());
const dataset = tmp.at('ds');
const targets = tmp.at('targets');

/** A copy of `dir` whose heldout.arrow lost its last bytes (a copy or a write cut short). */
function truncatedCopy(dir: string, name: string): string {
  const copy = tmp.at(name);
  cpSync(dir, copy, { recursive: true });
  const heldout = join(copy, 'heldout.arrow');
  const bytes = readFileSync(heldout);
  writeFileSync(heldout, bytes.subarray(0, Math.floor(bytes.length / 2)));
  return copy;
}

beforeAll(() => {
  expect(runBin(['ingest', exampleTraces, '--out', dataset, '--quiet']).code).toBe(0);
  const made = runBin(['distill', dataset, '--out', targets, '--mode', 'traces', '--tokenizer', demoTarget, '--quiet']);
  expect(made.code, made.stderr).toBe(0);
});

describe('a truncated heldout.arrow', () => {
  const footer = /heldout\.arrow: damaged Arrow file: the file ends after \d+ bytes without the Arrow footer/;

  it('eval: exit 2 naming the file, no report', () => {
    const data = truncatedCopy(targets, 'targets-cut-eval');
    const run = runBin(['eval', '--model', 'prompt-lookup', '--data', data, '--out', tmp.at('report')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(footer);
    expect(run.stderr).toContain(join(data, 'heldout.arrow'));
    expect(run.stderr).not.toContain('internal error');
    expect(existsSync(tmp.at('report'))).toBe(false);
  });

  it('train: exit 2 naming the file before the run folder is made', () => {
    const data = truncatedCopy(targets, 'targets-cut-train');
    const run = runBin(['train', data, '--out', tmp.at('run'), '--max-steps', '1']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(footer);
    expect(existsSync(tmp.at('run'))).toBe(false);
  });

  it('distill: exit 2 naming the file, and no journal for a run that never started', () => {
    const input = truncatedCopy(dataset, 'ds-cut');
    const run = runBin(['distill', input, '--out', tmp.at('never'), '--mode', 'traces', '--tokenizer', demoTarget]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(footer);
    expect(readdirSync(tmp.dir).filter((n) => n.startsWith('.never'))).toEqual([]);
  });
});

describe('mistaken inputs', () => {
  it('ingest of a file full of control bytes escapes them in the summary', () => {
    const binary = tmp.at('binary.jsonl');
    writeFileSync(binary, Array.from({ length: 20 }, (_, i) => `\u001b[2J\u0007{"x": ${i}\u0000`).join('\n') + '\n');
    const run = runBin(['ingest', binary, '--out', tmp.at('binary-ds')]);
    expect(run.code).toBe(1); // every line rejected: the run failed
    expect(run.stderr).toContain('malformed-json');
    expect(run.stderr).toContain('\\u001b');
    expect(run.stderr).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
  });

  it('a dataset folder that does not exist is called that, not "no manifest.json"', () => {
    const missing = tmp.at('no-such-dataset');
    const run = runBin(['distill', missing, '--out', tmp.at('t'), '--mode', 'traces', '--tokenizer', demoTarget]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`${missing}: no such folder (expected a fireopt traces)`);
  });
});
