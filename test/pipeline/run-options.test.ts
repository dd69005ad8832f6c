/**
 * `fireopt run --limit --max-tokens` (distill's quick-trial flags) on the real stories260K target in
 * llama.cpp, distill's closing line with its failed count, and `fireopt inspect` on the targets
 * directory and the draft that run wrote.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DraftInspectReport, TargetsInspectReport } from '../../src/ingest/inspect.js';
import type { PipelineResult } from '../../src/pipeline/index.js';
import { runBin, runCli } from '../helpers/cli.js';
import { haveShared } from '../helpers/shared.js';
import { writeStoriesGguf, type StoriesGguf } from '../targets/stories-gguf.js';
import { writeAlpacaTraces } from './traces.js';

describe.skipIf(
  !haveShared('models/stories260K/stories260K.bin', 'data/alpaca_eval_outputs/Meta-Llama-3-8B-Instruct.json'),
)('fireopt run --limit --max-tokens, inspect', () => {
  let work: string;
  let gguf: StoriesGguf;
  let run: { code: number; stdout: string; stderr: string };

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'fireopt-run-options-'));
    gguf = writeStoriesGguf();
    writeAlpacaTraces(join(work, 'alpaca.jsonl'), 30, 200);
    writeFileSync(
      join(work, 'pipeline.yaml'),
      [
        `ingest: { inputs: [${join(work, 'alpaca.jsonl')}], heldout: 0.3 }`,
        `target: { engine: llama-cpp, model: ${gguf.path}, threads: 1 }`,
        'distill: { mode: regenerate, chat_template: none }',
        `train: { target_model: ${gguf.path}, backend: wasm, select: off, ` +
          `model: { preset: draft-nano }, max_steps: 4, seq_len: 32, batch_size: ` +
          `4, warmup_steps: 1, eval_every: 4, patience: 0 }`,
        'eval: { cost: { engine: given }, bootstrap_samples: 100 }',
        `run: { dir: ${join(work, 'run')} }`,
      ].join('\n') + '\n',
    );
    // spawned: distill's closing line is a progress line on the process's stderr
    run = runBin(['--json', '-c', join(work, 'pipeline.yaml'), 'run', '--limit', '3', '--max-tokens', '12']);
  }, 120_000);

  afterAll(() => {
    if (!process.env.KEEP) rmSync(work, { recursive: true, force: true });
    gguf?.remove();
  });

  it('distills at most --limit rows per split, each at most --max-tokens long, and says how many failed', () => {
    expect([0, 3], run.stderr).toContain(run.code);
    const result = JSON.parse(run.stdout) as PipelineResult;
    expect(result.outcome).toMatch(/^(promoted|not-promoted)$/);
    const manifest = JSON.parse(readFileSync(join(work, 'run', '2-distill', 'data', 'manifest.json'), 'utf8')) as {
      counts: { rows: { train: number; heldout: number } };
    };
    expect(manifest.counts.rows).toEqual({ train: 3, heldout: 3 });
    // with --json, progress is JSON lines on stderr: distill's end line carries its counts
    const distillEnd = run.stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => line.event === 'end' && line.task === 'distill');
    expect(distillEnd, run.stderr).toMatchObject({ done: 6, ok: 6, failed: 0, skipped: 0 });
  });

  it('inspect reads the targets directory: schema, counts and first rows', async () => {
    const targets = join(work, 'run', '2-distill', 'data');
    const json = await runCli(['--json', 'inspect', targets, '--rows', '2']);
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout) as TargetsInspectReport;
    expect(report.kind).toBe('targets');
    expect(report.schema.map((f) => f.name)).toContain('completion_token_ids');
    expect(report.rows.train).toHaveLength(2);
    for (const row of [...report.rows.train, ...report.rows.heldout]) {
      const completion = row.completion_token_ids as { length: number; first: number[] };
      expect(completion.length).toBeGreaterThan(0);
      expect(completion.length).toBeLessThanOrEqual(12);
      expect(JSON.parse(row.sampling as string)).toMatchObject({ max_tokens: 12 });
    }
    const text = await runCli(['inspect', targets, '--rows', '1']);
    expect(text.stdout).toMatch(/targets v\d+, made by fireopt/);
    expect(text.stdout).toMatch(/counts: \{"input":6,"ok":6,"failed":0/);
    expect(text.stdout).toMatch(/first 1 train rows:/);
  });

  it('inspect reads a draft: model, parameters, tensors and files', async () => {
    const draft = join(work, 'run', '4-train', 'data', 'draft');
    const json = await runCli(['--json', 'inspect', draft]);
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout) as DraftInspectReport;
    expect(report.kind).toBe('draft');
    expect(report.manifest.model.dim).toBe(64);
    expect(report.parameters).toBe(report.tensors.reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0));
    expect(report.parameters).toBeGreaterThan(0);
    expect(report.files.map((f) => f.name)).toEqual(expect.arrayContaining(['manifest.json', 'model.safetensors']));
    const text = await runCli(['inspect', draft]);
    expect(text.stdout).toMatch(/draft v\d+, made by fireopt .*\nmodel: \d+ parameters; dim 64/);
  });
});
