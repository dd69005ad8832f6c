/**
 * `train --resume` with changed settings (issue 17 item 2): settings that change the run are refused
 * before any work, each differing key named (exit 2); pacing settings may change and are recorded in
 * the run's manifest; a resumed candidate reports only this session's steps and time (item 7).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainSchema } from '../../src/train/config.js';
import { compareResumeSettings } from '../../src/train/resume.js';
import { runBin, runBinAsync, runCli } from '../helpers/cli.js';
import { haveShared, STORIES260K, TOK512 } from '../helpers/shared.js';
import { makeStoriesTargets, type StoriesTargets } from '../train/stories-targets.js';

const SETTINGS = [
  '--set',
  'train.select=off',
  '--set',
  'train.model.preset=draft-nano',
  '--set',
  'train.seq_len=16',
  '--set',
  'train.batch_size=2',
  '--set',
  'train.eval_every=2',
  '--set',
  'train.checkpoint_every=2',
  '--set',
  'train.backend=cpu',
  '--set',
  'train.max_steps=4',
];

describe('compareResumeSettings', () => {
  it('splits differing keys into run-changing and pacing, nested keys by their dotted path', () => {
    const saved = trainSchema.parse({});
    const now = trainSchema.parse({
      lr: 0.01,
      eval_every: 7,
      loss: { kl: 0 },
      time_budget_s: 30,
      search: { learning_rates: [0.1] },
    });
    const { refused, pacing } = compareResumeSettings(saved, now);
    expect(refused.map((c) => c.key)).toEqual(['train.loss.kl', 'train.lr', 'train.search.learning_rates']);
    expect(pacing.map((c) => c.key)).toEqual(['train.eval_every', 'train.time_budget_s']);
    expect(compareResumeSettings(saved, trainSchema.parse({}))).toEqual({ refused: [], pacing: [] });
  });
});

describe.skipIf(!haveShared(STORIES260K, TOK512))('fireopt train --resume', () => {
  let data: StoriesTargets;
  let run: string;

  beforeAll(async () => {
    data = await makeStoriesTargets(8, 8);
    run = join(data.work, 'run');
    const trained = await runCli(['--quiet', ...SETTINGS, 'train', data.targets, '--out', run]);
    expect(trained.code, trained.stderr).toBe(0);
  });

  afterAll(() => data?.remove());

  it('refuses a changed model and learning rate, naming both keys, and leaves the run as it was', () => {
    const before = readFileSync(join(run, 'state', 'tensors.f32'));
    const result = runBin([
      ...SETTINGS,
      '--set',
      'train.lr=0.01',
      '--set',
      'train.model.preset=draft-tiny',
      'train',
      data.targets,
      '--out',
      run,
      '--resume',
    ]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain('--resume with settings that change the run');
    expect(result.stderr).toContain('train.lr: 0.003 when started, 0.01 now');
    expect(result.stderr).toContain('train.model.preset: "draft-nano" when started, "draft-tiny" now');
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(readFileSync(join(run, 'state', 'tensors.f32')).equals(before)).toBe(true);
    expect(JSON.parse(readFileSync(join(run, 'draft', 'manifest.json'), 'utf8')).config.train.model.preset).toBe(
      'draft-nano',
    );
  });

  it("accepts changed pacing settings, records them, and reports only this session's steps", async () => {
    const result = await runBinAsync([
      ...SETTINGS,
      '--set',
      'train.eval_every=4',
      '--set',
      'train.patience=9',
      'train',
      data.targets,
      '--out',
      run,
      '--resume',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('resume: train.eval_every 2 → 4');
    // The run had finished: this session trained no step (it used to claim "4 steps in 0.0 s (4000 steps/s)").
    expect(result.stderr).toMatch(/train draft: done, 0 steps in \d+\.\d s \(0 steps\/s\) \(resumed at 4; 4 in all\)/);
    const manifest = JSON.parse(readFileSync(join(run, 'manifest.json'), 'utf8'));
    expect(manifest.resumed_with_changes).toEqual([
      { key: 'train.eval_every', saved: 2, now: 4 },
      { key: 'train.patience', saved: 5, now: 9 },
    ]);
    expect(manifest.config.train.eval_every).toBe(4);
  });
});
