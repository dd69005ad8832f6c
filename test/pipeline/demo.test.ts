/**
 * `fireopt demo` with a reduced training budget: the whole loop runs offline on the shipped demo
 * target and traces, ends with the newcomer's table, and a second run skips every stage.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DemoResult } from '../../src/pipeline/demo.js';
import { runCli } from '../helpers/cli.js';

const work = mkdtempSync(join(tmpdir(), 'fireopt-demo-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('fireopt demo', () => {
  it('runs the loop on the bundled target and traffic and prints the comparison table', async () => {
    const out = join(work, 'demo');
    const first = await runCli(['--quiet', 'demo', '--out', out, '--time-budget', '8']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/adapted draft/);
    expect(first.stdout).toMatch(/generic draft/);
    expect(first.stdout).toMatch(/prompt lookup \(model-free/);
    expect(first.stdout).toMatch(/expected speed-up/);
    expect(first.stdout).toContain(join(out, 'run', '5-eval', 'data', 'report.md'));
    expect(existsSync(join(out, 'run', '5-eval', 'data', 'report.md'))).toBe(true);
    // the gate holds the adapted draft against suffix decoding too: promoted only if it is faster
    const promoted = existsSync(join(out, 'release', 'promotion.json'));
    expect(first.stdout).toMatch(promoted ? /outcome: promoted/ : /outcome: not-promoted \(.*serve (suffix|prompt-lookup|without a draft)/);

    const again = await runCli(['--json', '--quiet', 'demo', '--out', out, '--time-budget', '8']);
    expect(again.code, again.stderr).toBe(0);
    const result = JSON.parse(again.stdout) as DemoResult;
    expect(result.pipeline.stages.every((s) => s.status === 'skipped')).toBe(true);
    expect(result.pipeline.outcome).toBe('unchanged');
    expect(result.rows.map((r) => r.name)).toEqual(['draft:draft', 'draft:demo-generic-draft', 'prompt-lookup', 'suffix']);
    for (const row of result.rows) {
      expect(row.acceptance_length).toBeGreaterThanOrEqual(1);
      expect(row.speedup).toBeGreaterThan(0);
    }
  });
});
