/**
 * `fireopt train` on real distillation targets of the stories260K target: a short run learns (loss
 * down, held-out greedy hit rate far above the untrained draft's), a run killed with SIGKILL and
 * resumed writes exactly the metrics of an uninterrupted run, a reduced vocabulary's map round-trips
 * through the checkpoint, and automatic selection ranks its candidates.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDraftCheckpoint } from '../../src/formats/draft-checkpoint.js';
import { readTargetRows } from '../../src/formats/targets-schema.js';
import { runCli } from '../helpers/cli.js';
import { haveShared, repoRoot, STORIES_TARGETS, stories260K, tok512 } from '../helpers/shared.js';
import { makeStoriesTargets, type StoriesTargets } from './stories-targets.js';

let data: StoriesTargets;

interface Metric {
  type: 'train' | 'eval';
  step: number;
  loss?: number;
  ce?: number;
  kl?: number;
  grad_norm?: number;
  hit_rate?: number;
  eval_ce?: number;
}

function metrics(run: string): Metric[] {
  return readFileSync(join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Metric);
}

/** The numbers that must not depend on wall-clock time. */
function curve(run: string): Array<Record<string, unknown>> {
  return metrics(run).map((m) => ({
    type: m.type,
    step: m.step,
    loss: m.loss,
    ce: m.ce,
    kl: m.kl,
    grad_norm: m.grad_norm,
    hit_rate: m.hit_rate,
    eval_ce: m.eval_ce,
  }));
}

const SMALL_DRAFT = [
  '--set',
  'train.select=off',
  '--set',
  'train.backend=wasm',
  '--set',
  'train.model={preset: draft-nano, dim: 32, n_layers: 2, n_heads: 2, n_kv_heads: 1}',
  '--set',
  'train.seq_len=64',
  '--set',
  'train.batch_size=16',
  '--set',
  'train.warmup_steps=10',
];

beforeAll(async () => {
  data = await makeStoriesTargets(160, 64);
}, 60_000);

afterAll(() => data?.remove());

describe.skipIf(!haveShared(...STORIES_TARGETS))('fireopt train on stories260K targets', () => {
  it('lowers the loss and lifts the held-out greedy hit rate far above the untrained draft', async () => {
    const out = join(data.work, 'learn');
    const result = await runCli([
      '--json',
      '--quiet',
      ...SMALL_DRAFT,
      '--set',
      'train.lr=0.005',
      '--set',
      'train.max_steps=120',
      '--set',
      'train.eval_every=40',
      '--set',
      `train.tokenizer=${tok512()}`,
      'train',
      data.targets,
      '--out',
      out,
      '--target-model',
      stories260K(),
    ]);
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout) as {
      draft: string;
      winner: {
        steps: number;
        untrained: { hitRate: number };
        best: { hitRate: number; expectedSpeedup: number; step: number };
      };
    };
    const { untrained, best } = summary.winner;
    expect(summary.winner.steps).toBe(120);
    expect(untrained.hitRate).toBeLessThan(0.1);
    expect(best.hitRate).toBeGreaterThan(0.4);
    expect(best.hitRate).toBeGreaterThan(untrained.hitRate + 0.3);

    const train = metrics(out).filter((m) => m.type === 'train');
    const mean = (xs: Metric[]) => xs.reduce((s, m) => s + (m.ce as number), 0) / xs.length;
    expect(mean(train.slice(-10))).toBeLessThan(0.5 * mean(train.slice(0, 10)));
    const evals = metrics(out).filter((m) => m.type === 'eval');
    expect(evals.map((m) => m.step)).toEqual([0, 40, 80, 120]);
    expect(evals[3].eval_ce as number).toBeLessThan(evals[0].eval_ce as number);

    // The best checkpoint is a complete draft that knows its target and tokenizer.
    const checkpoint = readDraftCheckpoint(summary.draft);
    expect(checkpoint.weights.config).toMatchObject({ dim: 32, nLayers: 2, vocabSize: 512 });
    expect(checkpoint.vocabulary?.tokens.length).toBe(512);
    expect(checkpoint.training).toMatchObject({ step: best.step, init: 'target' });
    expect(readFileSync(join(out, 'curves.svg'), 'utf8')).toMatch(/^<svg[\s\S]*polyline[\s\S]*<\/svg>/);
  }, 60_000);

  it('continues after kill -9 with exactly the metrics of an uninterrupted run', async () => {
    const settings = [
      ...SMALL_DRAFT,
      '--set',
      'train.max_steps=40',
      '--set',
      'train.eval_every=15',
      '--set',
      'train.checkpoint_every=5',
      '--set',
      'train.shuffle_rows=32',
    ];
    const whole = join(data.work, 'whole');
    const uninterrupted = await runCli(['--quiet', ...settings, 'train', data.targets, '--out', whole]);
    expect(uninterrupted.code, uninterrupted.stderr).toBe(0);

    const killed = join(data.work, 'killed');
    const child = spawn(
      process.execPath,
      [join(repoRoot, 'bin/fireopt'), '--quiet', ...settings, 'train', data.targets, '--out', killed],
      { stdio: 'ignore' },
    );
    const statePath = join(killed, 'state', 'state.json');
    const savedStep = (): number => {
      try {
        return (JSON.parse(readFileSync(statePath, 'utf8')) as { counters: { step: number } }).counters.step;
      } catch {
        return 0; // not written yet (or being replaced)
      }
    };
    const deadline = Date.now() + 60_000;
    while (savedStep() < 20 && Date.now() < deadline && child.exitCode === null)
      await new Promise((r) => setTimeout(r, 10));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const at = savedStep();
    expect(at).toBeGreaterThanOrEqual(20);
    expect(at).toBeLessThan(40); // killed midway

    const again = await runCli(['--quiet', ...settings, 'train', data.targets, '--out', killed]);
    expect(again.code).toBe(2); // refuses to overwrite an unfinished run
    expect(again.stderr).toMatch(/--resume/);
    const resumed = await runCli(['--quiet', ...settings, 'train', data.targets, '--out', killed, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(curve(killed)).toEqual(curve(whole));
    expect(curve(whole).filter((m) => m.type === 'train')).toHaveLength(40);
  }, 90_000);

  it('trains a reduced vocabulary whose draft→target map round-trips through the checkpoint', async () => {
    const out = join(data.work, 'reduced');
    const result = await runCli([
      '--json',
      '--quiet',
      ...SMALL_DRAFT,
      '--set',
      'train.draft_vocab_size=200',
      '--set',
      'train.lr=0.005',
      '--set',
      'train.max_steps=60',
      '--set',
      'train.eval_every=60',
      'train',
      data.targets,
      '--out',
      out,
      '--target-model',
      stories260K(),
    ]);
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout) as {
      draft: string;
      vocab: { target: number; draft: number; reduced: boolean; coverage: number };
      winner: { untrained: { hitRate: number }; best: { hitRate: number } };
    };
    expect(summary.vocab).toMatchObject({ target: 512, draft: 200, reduced: true });
    expect(summary.vocab.coverage).toBeGreaterThan(0.9);
    expect(summary.winner.best.hitRate).toBeGreaterThan(summary.winner.untrained.hitRate + 0.2);

    // The expected map, counted independently: the 200 most frequent ids of the training targets.
    const counts = new Map<number, number>();
    for await (const row of readTargetRows(join(data.targets, 'train.arrow'))) {
      for (const id of [
        ...row.prompt_token_ids,
        ...row.completion_token_ids,
        ...(row.top_ids ?? []).filter((i) => i >= 0),
      ])
        counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    const expected = [...Array(512).keys()]
      .sort((a, b) => (counts.get(b) ?? 0) - (counts.get(a) ?? 0) || a - b)
      .slice(0, 200);
    const checkpoint = readDraftCheckpoint(summary.draft);
    expect(Array.from(checkpoint.draftVocabulary?.draftToTarget ?? [])).toEqual(expected);
    expect(checkpoint.draftVocabulary?.targetVocabSize).toBe(512);
    expect(checkpoint.weights.config.vocabSize).toBe(200);
    expect(checkpoint.training.unk_draft_id).toBe(expected.indexOf(0) >= 0 ? expected.indexOf(0) : 199);
  }, 60_000);

  it('selects automatically within a time budget and writes a leaderboard ranked by expected speed-up', async () => {
    const out = join(data.work, 'auto');
    const result = await runCli([
      '--json',
      '--quiet',
      '--set',
      'train.backend=wasm',
      '--set',
      'train.seq_len=64',
      '--set',
      'train.batch_size=16',
      '--set',
      'train.warmup_steps=5',
      '--set',
      'train.search.models=[{preset: draft-nano, dim: 32, n_layers: 1, ' +
        'n_heads: 2, n_kv_heads: 1}, {preset: draft-nano, dim: 32, n_layers: 2, n_heads: 2, n_kv_heads: 1}]',
      '--set',
      'train.search.learning_rates=[0.005]',
      '--set',
      'train.eval_every=20',
      'train',
      data.targets,
      '--out',
      out,
      '--time-budget',
      '8',
      '--target-model',
      stories260K(),
    ]);
    // Exit 3 when no draft is worth serving (test/train/init.test.ts checks the verdict);
    // the draft is written either way.
    expect([0, 3], result.stderr).toContain(result.code);
    const summary = JSON.parse(result.stdout) as {
      outcome: string;
      leaderboard: Array<{
        name: string;
        best: { expectedSpeedup: number; hitRate: number };
        untrained: { hitRate: number };
      }>;
    };
    expect(summary.leaderboard).toHaveLength(2);
    expect(summary.leaderboard[0].best.expectedSpeedup).toBeGreaterThanOrEqual(
      summary.leaderboard[1].best.expectedSpeedup,
    );
    for (const row of summary.leaderboard) expect(row.best.hitRate).toBeGreaterThan(row.untrained.hitRate);
    expect(result.code).toBe(summary.outcome === 'draft-wins' ? 0 : 3);
    const board = JSON.parse(readFileSync(join(out, 'leaderboard.json'), 'utf8')) as {
      candidates: Array<{ name: string }>;
    };
    expect(board.candidates.map((r) => r.name)).toEqual(summary.leaderboard.map((r) => r.name));
    expect(readDraftCheckpoint(join(out, 'draft')).training.candidate).toBe(summary.leaderboard[0].name);
    expect(existsSync(join(out, 'leaderboard.md'))).toBe(true);
  }, 60_000);
});
