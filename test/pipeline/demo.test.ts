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
    // A step budget, not a time budget: the same training on a loaded machine as on an idle one.
    const budget = ['--time-budget', '3600', '--max-steps', '150'];
    const first = await runCli(['--quiet', 'demo', '--out', out, ...budget]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/adapted draft/);
    expect(first.stdout).toMatch(/generic draft/);
    expect(first.stdout).toMatch(/prompt lookup \(model-free/);
    expect(first.stdout).toMatch(/expected speed-up/);
    // Beside it, the speed-up measured in llama.cpp against the padded copy of the target, and its prediction.
    expect(first.stdout).toMatch(/measured \(predicted\)/);
    expect(first.stdout).toMatch(/adapted draft .* \d+\.\d\d× at k = [36] \(\d+\.\d\d×\)/);
    expect(existsSync(join(out, 'measure-target.gguf'))).toBe(true);
    expect(first.stdout).toContain(join(out, 'run', '5-eval', 'data', 'report.md'));
    expect(existsSync(join(out, 'run', '5-eval', 'data', 'report.md'))).toBe(true);
    // the gate holds the adapted draft against suffix decoding too: promoted only if it is faster
    const promoted = existsSync(join(out, 'release', 'promotion.json'));
    expect(first.stdout).toMatch(
      promoted ? /outcome: promoted/ : /outcome: not-promoted \(.*serve (suffix|prompt-lookup|without a draft)/,
    );

    const again = await runCli(['--json', '--quiet', 'demo', '--out', out, ...budget]);
    expect(again.code, again.stderr).toBe(0);
    const result = JSON.parse(again.stdout) as DemoResult;
    expect(result.pipeline.stages.every((s) => s.status === 'skipped')).toBe(true);
    expect(result.pipeline.outcome).toBe('unchanged');
    expect(result.rows.map((r) => r.name)).toEqual([
      'draft:draft',
      'draft:demo-generic-draft',
      'prompt-lookup',
      'suffix',
    ]);
    // Every candidate was measured (outputs equal to plain decoding, or the run would have failed).
    for (const row of result.rows) {
      expect(row.measured, row.name).not.toBeNull();
      expect(row.measured?.speedup).toBeGreaterThan(0);
      expect(row.measured?.predicted_speedup).toBeGreaterThan(0);
    }
    // The point of the demo: the draft trained on this traffic beats the generic one on held-out data.
    const [adapted, generic] = result.rows;
    console.log(
      `demo: adapted hit rate ${adapted.hit_rate}, τ ` +
        `${adapted.acceptance_length}; generic ${generic.hit_rate}, τ ${generic.acceptance_length}`,
    );
    expect(adapted.hit_rate as number).toBeGreaterThan(generic.hit_rate as number);
    expect(adapted.acceptance_length).toBeGreaterThan(generic.acceptance_length);
    expect(adapted.speedup).toBeGreaterThan(generic.speedup);
  }, 600_000); // two demo runs of 150 training steps per candidate and a measurement (the second skips every stage)
});
