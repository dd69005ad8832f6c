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
import type { EvalReport } from '../../src/evaluate/report-schema.js';
import { runCli } from '../helpers/cli.js';
import { haveShared, STORIES260K, TOK512 } from '../helpers/shared.js';
import { writeStoriesGguf, type StoriesGguf } from '../targets/stories-gguf.js';
import { PIPELINE_TRACES, writeAlpacaTraces, writeTaskmasterTraces } from './traces.js';

let work: string;
let gguf: StoriesGguf;
let config: string;

function setUp(): void {
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
      // The loop's mechanics with a stated cost assumption: this toy draft (2 of the target's 5 layers)
      // measures c ≈ 1 in llama.cpp and never beats suffix decoding; the measured gate has its own test below.
      'eval: { bootstrap_samples: 500, margin: 0, cost: { engine: given }, cost_ratio: 0.02 }',
      'drift: { threshold: 0.1 }',
      // the release's parent is a file at first: promotion fails, as a full disk or a bad mount would
      `promotion: { release: ${join(work, 'blocked', 'release')}, beat_model_free: false }`,
      `run: { dir: ${join(work, 'run1')} }`,
    ].join('\n') + '\n',
  );
  writeFileSync(join(work, 'blocked'), 'not a folder\n');
}

const statuses = (result: PipelineResult): Record<string, string> =>
  Object.fromEntries(result.stages.map((s) => [s.stage, s.status]));

async function run(...args: string[]): Promise<{ code: number; result: PipelineResult; stderr: string }> {
  const { code, stdout, stderr } = await runCli(['--json', '--quiet', '-c', config, 'run', ...args]);
  expect(stdout, stderr).not.toBe('');
  return { code, result: JSON.parse(stdout) as PipelineResult, stderr };
}

describe.skipIf(!haveShared(STORIES260K, TOK512, ...PIPELINE_TRACES))('fireopt run: two scheduled cycles', () => {
  beforeAll(setUp);
  afterAll(() => {
    if (!process.env.KEEP) rmSync(work, { recursive: true, force: true });
    gguf.remove();
  });

  it('cycle 1: a failed promotion resumes at that stage, promotes, and an unchanged rerun does nothing', async () => {
    const failed = await runCli(['--json', '--quiet', '-c', config, 'run']);
    expect(failed.code).toBe(1);
    // with --json a failure prints its summary too, and run.json says the same
    const failedSummary = JSON.parse(failed.stdout) as PipelineResult;
    expect(failedSummary.outcome).toBe('failed');
    expect(failedSummary.exit_code).toBe(1);
    expect(failedSummary.failure?.stage).toBe('7-promote');
    expect(failedSummary.failure?.message).toMatch(/ENOTDIR|not a directory|EEXIST/);
    expect(failed.stderr).toMatch(/fireopt: (internal )?error: .*(ENOTDIR|not a directory|EEXIST)/);
    expect(JSON.parse(readFileSync(join(work, 'run1', 'run.json'), 'utf8'))).toMatchObject({
      outcome: 'failed',
      failure: { stage: '7-promote' },
    });
    const failedRecord = JSON.parse(readFileSync(join(work, 'run1', '7-promote', 'stage.json'), 'utf8')) as {
      status: string;
      error: { message: string };
    };
    expect(failedRecord.status).toBe('failed');
    expect(failedRecord.error.message).toMatch(/ENOTDIR|not a directory|EEXIST/);
    for (const stage of ['1-ingest', '2-distill', '4-train', '5-eval', '6-export']) {
      expect(JSON.parse(readFileSync(join(work, 'run1', stage, 'stage.json'), 'utf8')).status).toBe('done');
    }

    rmSync(join(work, 'blocked'));
    const resumed = await run();
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(statuses(resumed.result)).toEqual({
      '1-ingest': 'skipped',
      '2-distill': 'skipped',
      '3-drift': 'skipped',
      '4-train': 'skipped',
      '5-eval': 'skipped',
      '6-export': 'skipped',
      '7-promote': 'ran',
    });
    expect(resumed.result.outcome).toBe('promoted');
    expect(resumed.result.reason).toMatch(/nothing deployed yet/);
    const release = join(work, 'blocked', 'release');
    const promotion = JSON.parse(readFileSync(join(release, 'promotion.json'), 'utf8')) as PromotionRecord;
    expect(promotion.kind).toBe('promotion');
    expect(promotion.previous_draft_sha256).toBeNull();
    expect(promotion.acceptance.acceptance_length).toBeGreaterThan(1);
    for (const file of [
      'draft/model.safetensors',
      'draft/manifest.json',
      'export/scenario.gguf',
      'export/hf/config.json',
      'export/SERVING.md',
      'report.json',
    ]) {
      expect(existsSync(join(release, file)), file).toBe(true);
    }

    // nothing changed: its own outcome and exit code, not another `promoted`
    const unchanged = await run();
    expect(unchanged.code).toBe(5);
    expect(unchanged.result.outcome).toBe('unchanged');
    expect(unchanged.result.reason).toMatch(/nothing changed since .*promoted/);
    expect(Object.values(statuses(unchanged.result))).toEqual(new Array(7).fill('skipped'));
    expect(JSON.parse(readFileSync(join(release, 'promotion.json'), 'utf8'))).toEqual(promotion);
  });

  it(
    'with c measured in llama.cpp (a GGUF target), the gate refuses a draft ' +
      'slower than 1× or a model-free method and says what to serve',
    async () => {
      const release = join(work, 'blocked', 'release');
      const promotion = readFileSync(join(release, 'promotion.json'), 'utf8');
      const givenReport = join(work, 'report-given.json');
      writeFileSync(givenReport, readFileSync(join(work, 'run1', '5-eval', 'data', 'report.json')));
      const measured = await run(
        '--force',
        '--set',
        'eval.cost.engine=auto',
        '--set',
        'promotion.beat_model_free=true',
        '--set',
        'eval.cost.runs=2',
        '--set',
        'eval.cost.warmup_runs=1',
        '--set',
        'eval.cost.steps=8',
      );
      expect(measured.code, measured.stderr).toBe(3);
      expect(measured.result.outcome).toBe('not-promoted');
      const report = JSON.parse(
        readFileSync(join(work, 'run1', '5-eval', 'data', 'report.json'), 'utf8'),
      ) as EvalReport;
      const draft = report.candidates[0];
      expect(draft.cost_ratio_source).toBe('measured');
      expect(draft.cost_measurement?.target_model).toBe(gguf.path);
      expect(report.candidates.map((c) => c.name)).toEqual(expect.arrayContaining(['prompt-lookup', 'suffix']));
      const fastestModelFree = Math.max(
        ...report.candidates.filter((c) => c.kind !== 'draft').map((c) => c.best_speedup),
      );
      expect(draft.best_speedup).toBeLessThan(Math.max(1, fastestModelFree));
      expect(measured.result.reason).toMatch(/expected speed-up .* is below .*measured/);
      expect(measured.result.serve_instead).toBe(
        fastestModelFree >= 1
          ? report.candidates.find((c) => c.best_speedup === fastestModelFree)?.kind
          : 'no-speculation',
      );
      expect(readFileSync(join(release, 'promotion.json'), 'utf8')).toBe(promotion);

      // compare refuses speed-ups resting on different cost assumptions (c given in one, measured in the other)
      const measuredReport = join(work, 'run1', '5-eval', 'data', 'report.json');
      const mixed = await runCli(['--quiet', 'compare', givenReport, measuredReport]);
      expect(mixed.code).toBe(2);
      expect(mixed.stderr).toContain(givenReport);
      expect(mixed.stderr).toContain(measuredReport);
      expect(mixed.stderr).toMatch(/different cost assumptions: .*given.*measured in llama-cpp/);
      // and "do not promote" is exit 3, as for run and drift, not an error
      // (a draft against itself: Δ = 0, never promoted)
      const same = await runCli([
        '--quiet',
        'compare',
        measuredReport,
        measuredReport,
        '--candidate-a',
        'draft:draft',
        '--candidate-b',
        'draft:draft',
      ]);
      expect(same.code, same.stderr).toBe(3);
      expect(same.stdout).toMatch(/DO NOT PROMOTE/);
      expect(same.stderr).not.toMatch(/error/);
    },
  );

  it(
    'fireopt drift: Taskmaster-4 dialogues drift from the ' + 'AlpacaEval-trained draft; its own traffic does not',
    async () => {
      const release = join(work, 'blocked', 'release');
      const drift = (traces: string, out: string) =>
        runCli(['--json', '--quiet', '-c', config, 'drift', '--model', release, '--traces', traces, '--out', out]);
      const fresh = await drift(join(work, 'coffee.jsonl'), join(work, 'drift-coffee'));
      expect(fresh.code, fresh.stderr).toBe(3);
      const drifted = JSON.parse(fresh.stdout) as DriftResult;
      expect(drifted.outcome).toBe('retraining-due');
      expect(drifted.retrain).toBe(true);
      expect(drifted.relative_drop).toBeGreaterThan(0.1);
      expect(drifted.recorded.source).toBe(join(release, 'promotion.json'));

      const same = await drift(join(work, 'alpaca.jsonl'), join(work, 'drift-alpaca'));
      expect(same.code, same.stderr).toBe(0);
      const steady = JSON.parse(same.stdout) as DriftResult;
      expect(steady.outcome).toBe('not-due');
      expect(steady.retrain).toBe(false);
      expect(steady.relative_drop).toBeLessThanOrEqual(0.1);

      // the first night: no release yet is an outcome (exit 0), not an error
      const first = await runCli([
        '--json',
        '--quiet',
        '-c',
        config,
        'drift',
        '--model',
        join(work, 'no-release-yet'),
        '--traces',
        join(work, 'alpaca.jsonl'),
      ]);
      expect(first.code, first.stderr).toBe(0);
      expect(JSON.parse(first.stdout)).toMatchObject({
        outcome: 'nothing-deployed',
        model: join(work, 'no-release-yet'),
      });
    },
  );

  it(
    'cycle 2 in the same run directory: the release is read fresh, drift is ' +
      'measured against it, the retrained draft is promoted only when it wins; retention deletes the data',
    async () => {
      const release = join(work, 'blocked', 'release');
      const before = JSON.parse(readFileSync(join(release, 'promotion.json'), 'utf8')) as PromotionRecord;
      // the same --dir as cycle 1, as the CI examples use: the gate must still compare with what is deployed
      const cycle2 = ['--traces', join(work, 'coffee.jsonl')];
      const strict = await run(...cycle2, '--set', 'eval.margin=10');
      expect(strict.code, strict.stderr).toBe(3);
      expect(strict.result.outcome).toBe('not-promoted');
      expect(strict.result.deployed?.draft_sha256).toBe(before.draft_sha256);
      expect(strict.result.drift?.retrain).toBe(true);
      expect(strict.result.drift?.recorded.acceptance_length).toBe(before.acceptance.acceptance_length);
      const comparison = strict.result.comparison;
      expect(comparison).not.toBeNull();
      expect(comparison?.a.candidate).toBe('draft:deployed-draft');
      expect(comparison?.b.candidate).toBe('draft:draft');
      // the refusal changed nothing deployed
      expect(JSON.parse(readFileSync(join(release, 'promotion.json'), 'utf8'))).toEqual(before);

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
        expect(existsSync(join(work, 'run1', gone)), gone).toBe(false);
        expect(deleted).toContain(join(work, 'run1', gone));
      }
      for (const kept of [
        '4-train/data/draft/model.safetensors',
        '5-eval/data/report.json',
        '6-export/data/scenario.gguf',
      ]) {
        expect(existsSync(join(work, 'run1', kept)), kept).toBe(true);
      }
      expect(existsSync(join(work, 'alpaca.jsonl'))).toBe(true); // not this run's input
      const ingestRecord = JSON.parse(readFileSync(join(work, 'run1', '1-ingest', 'stage.json'), 'utf8')) as {
        deleted: string[];
      };
      expect(ingestRecord.deleted).toEqual([join(work, 'run1', '1-ingest', 'data')]);
    },
  );
});
