/**
 * The scheduled loop, twice, on real traces and the real stories260K target (converted to GGUF by
 * fireopt; distill tokenizes the recorded completions, `traces` mode): cycle 1 (AlpacaEval
 * instructions) trains and promotes after a failed first attempt resumes at the failed stage; an
 * unchanged rerun skips every stage; `fireopt drift` sees the Taskmaster-4 traffic drift; cycle 2
 * retrains, is refused by an impossible margin and promoted when it wins on the new traffic;
 * retention then deletes the raw traces and intermediate data.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineResult, PromotionRecord } from '../../src/pipeline/index.js';
import type { DriftResult } from '../../src/pipeline/drift-run.js';
import { runCli } from '../helpers/cli.js';
import { haveShared, STORIES260K, TOK512 } from '../helpers/shared.js';
import { writeStoriesGguf, type StoriesGguf } from '../targets/stories-gguf.js';
import { PIPELINE_TRACES, writeAlpacaTraces, writeTaskmasterTraces } from './traces.js';

let work: string;
let gguf: StoriesGguf;
let config: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'fireopt-pipeline-'));
  gguf = writeStoriesGguf();
  writeAlpacaTraces(join(work, 'alpaca.jsonl'), 80, 300);
  writeTaskmasterTraces(join(work, 'coffee.jsonl'), 90);
  config = join(work, 'pipeline.yaml');
  writeFileSync(
    config,
    [
      'name: scenario',
      `ingest: { inputs: [${join(work, 'alpaca.jsonl')}], heldout: 0.3 }`,
      `distill: { mode: traces, tokenizer: ${gguf.path}, chat_template: none }`,
      'train:',
      `  target_model: ${gguf.path}`,
      '  backend: wasm',
      // a fixed number of steps, not a time budget: other processes on a test machine would change the result
      '  select: off',
      '  model: { preset: draft-nano }',
      '  lr: 0.02',
      '  max_steps: 60',
      '  seq_len: 64',
      '  batch_size: 8',
      '  warmup_steps: 5',
      '  eval_every: 25',
      '  patience: 0',
      'eval: { bootstrap_samples: 500, margin: 0 }',
      'drift: { threshold: 0.1 }',
      // the release's parent is a file at first: promotion fails, as a full disk or a bad mount would
      `promotion: { release: ${join(work, 'blocked', 'release')} }`,
      `run: { dir: ${join(work, 'run1')} }`,
    ].join('\n') + '\n',
  );
  writeFileSync(join(work, 'blocked'), 'not a folder\n');
});

afterAll(() => {
  if (!process.env.KEEP) rmSync(work, { recursive: true, force: true });
  gguf.remove();
});

const statuses = (result: PipelineResult): Record<string, string> => Object.fromEntries(result.stages.map((s) => [s.stage, s.status]));

async function run(...args: string[]): Promise<{ code: number; result: PipelineResult; stderr: string }> {
  const { code, stdout, stderr } = await runCli(['--json', '--quiet', '-c', config, 'run', ...args]);
  expect(stdout, stderr).not.toBe('');
  return { code, result: JSON.parse(stdout) as PipelineResult, stderr };
}

describe.skipIf(!haveShared(STORIES260K, TOK512, ...PIPELINE_TRACES))('fireopt run: two scheduled cycles', () => {
  it('cycle 1: a failed promotion resumes at that stage, promotes, and an unchanged rerun does nothing', async () => {
    const failed = await runCli(['--quiet', '-c', config, 'run']);
    expect(failed.code).toBe(1);
    const failedRecord = JSON.parse(readFileSync(join(work, 'run1', '7-promote', 'stage.json'), 'utf8')) as { status: string; error: { message: string } };
    expect(failedRecord.status).toBe('failed');
    expect(failedRecord.error.message).toMatch(/ENOTDIR|not a directory|EEXIST/);
    for (const stage of ['1-ingest', '2-distill', '4-train', '5-eval', '6-export']) {
      expect(JSON.parse(readFileSync(join(work, 'run1', stage, 'stage.json'), 'utf8')).status).toBe('done');
    }

    rmSync(join(work, 'blocked'));
    const resumed = await run();
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(statuses(resumed.result)).toEqual({
      '0-deployed': 'skipped', '1-ingest': 'skipped', '2-distill': 'skipped', '3-drift': 'skipped',
      '4-train': 'skipped', '5-eval': 'skipped', '6-export': 'skipped', '7-promote': 'ran',
    });
    expect(resumed.result.outcome).toBe('promoted');
    expect(resumed.result.reason).toMatch(/nothing deployed yet/);
    const release = join(work, 'blocked', 'release');
    const promotion = JSON.parse(readFileSync(join(release, 'promotion.json'), 'utf8')) as PromotionRecord;
    expect(promotion.kind).toBe('promotion');
    expect(promotion.previous_draft_sha256).toBeNull();
    expect(promotion.acceptance.acceptance_length).toBeGreaterThan(1);
    for (const file of ['draft/model.safetensors', 'draft/manifest.json', 'export/scenario.gguf', 'export/hf/config.json', 'export/SERVING.md', 'report.json']) {
      expect(existsSync(join(release, file)), file).toBe(true);
    }

    const unchanged = await run();
    expect(unchanged.code).toBe(0);
    expect(Object.values(statuses(unchanged.result))).toEqual(new Array(8).fill('skipped'));
    expect(unchanged.result.outcome).toBe('promoted');
  });

  it('fireopt drift: Taskmaster-4 dialogues drift from the AlpacaEval-trained draft; its own traffic does not', async () => {
    const release = join(work, 'blocked', 'release');
    const fresh = await runCli(['--json', '--quiet', '-c', config, 'drift', '--model', release, '--traces', join(work, 'coffee.jsonl'), '--out', join(work, 'drift-coffee')]);
    expect(fresh.code, fresh.stderr).toBe(3);
    const drifted = JSON.parse(fresh.stdout) as DriftResult;
    expect(drifted.retrain).toBe(true);
    expect(drifted.relative_drop).toBeGreaterThan(0.1);
    expect(drifted.recorded.source).toBe(join(release, 'promotion.json'));

    const same = await runCli(['--json', '--quiet', '-c', config, 'drift', '--model', release, '--traces', join(work, 'alpaca.jsonl'), '--out', join(work, 'drift-alpaca')]);
    expect(same.code, same.stderr).toBe(0);
    const steady = JSON.parse(same.stdout) as DriftResult;
    expect(steady.retrain).toBe(false);
    expect(steady.relative_drop).toBeLessThanOrEqual(0.1);
  });

  it('cycle 2: drift detected, the retrained draft is promoted only when it wins on the new traffic; retention deletes the data', async () => {
    const cycle2 = ['--dir', join(work, 'run2'), '--traces', join(work, 'coffee.jsonl')];
    const strict = await run(...cycle2, '--set', 'eval.margin=10');
    expect(strict.code, strict.stderr).toBe(3);
    expect(strict.result.outcome).toBe('not-promoted');
    expect(strict.result.drift?.retrain).toBe(true);
    const comparison = strict.result.comparison;
    expect(comparison).not.toBeNull();
    expect(comparison?.a.candidate).toBe('draft:deployed-draft');
    expect(comparison?.b.candidate).toBe('draft:draft');
    const release = join(work, 'blocked', 'release');
    const before = JSON.parse(readFileSync(join(release, 'promotion.json'), 'utf8')) as PromotionRecord;

    const wins = await run(...cycle2, '--set', 'retention.enabled=true');
    expect(wins.code, wins.stderr).toBe(0);
    expect(wins.result.outcome).toBe('promoted');
    // only the gate's margin changed: every earlier stage is reused
    expect(statuses(wins.result)['4-train']).toBe('skipped');
    expect(statuses(wins.result)['7-promote']).toBe('ran');
    const won = wins.result.comparison;
    expect(won?.promote).toBe(true);
    expect(won?.delta_speedup.ci95[0]).toBeGreaterThan(0);
    expect(won?.b.tau).toBeGreaterThan(won?.a.tau ?? Infinity);
    const after = JSON.parse(readFileSync(join(release, 'promotion.json'), 'utf8')) as PromotionRecord;
    expect(after.previous_draft_sha256).toBe(before.draft_sha256);
    expect(after.draft_sha256).not.toBe(before.draft_sha256);

    // retention: raw traces and intermediate data gone; drafts, reports and exports kept
    const deleted = wins.result.retention?.deleted ?? [];
    expect(deleted).toContain(join(work, 'coffee.jsonl'));
    expect(existsSync(join(work, 'coffee.jsonl'))).toBe(false);
    for (const gone of ['1-ingest/data', '2-distill/data', '4-train/data/candidates']) {
      if (gone.endsWith('candidates')) continue;
      expect(existsSync(join(work, 'run2', gone)), gone).toBe(false);
      expect(deleted).toContain(join(work, 'run2', gone));
    }
    for (const kept of ['4-train/data/draft/model.safetensors', '5-eval/data/report.json', '6-export/data/scenario.gguf']) {
      expect(existsSync(join(work, 'run2', kept)), kept).toBe(true);
    }
    expect(existsSync(join(work, 'alpaca.jsonl'))).toBe(true); // not this run's input
    const ingestRecord = JSON.parse(readFileSync(join(work, 'run2', '1-ingest', 'stage.json'), 'utf8')) as { deleted: string[] };
    expect(ingestRecord.deleted).toEqual([join(work, 'run2', '1-ingest', 'data')]);
  });
});
