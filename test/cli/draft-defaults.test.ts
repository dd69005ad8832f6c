/**
 * `eval` and `export` default to what the draft records (spawned CLI): the targets it was trained
 * on (held-out split) and the target model it was trained for.
 */
import { cpSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBin, runCli } from '../helpers/cli.js';
import { haveShared, STORIES260K, stories260K, TOK512, tok512 } from '../helpers/shared.js';
import { makeStoriesTargets, type StoriesTargets } from '../train/stories-targets.js';

const SHAREGPT = 'data/sharegpt_prompts/ShareGPT_V3_filtered_500.json';
const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

describe.skipIf(!haveShared(STORIES260K, TOK512, SHAREGPT))('defaults from the draft manifest', () => {
  let data: StoriesTargets;
  let draft: string;

  beforeAll(async () => {
    data = await makeStoriesTargets(24, 16);
    const out = join(data.work, 'run');
    const trained = await runCli([
      '--json',
      '--quiet',
      '--set',
      'train.select=off',
      '--set',
      'train.backend=wasm',
      '--set',
      'train.model={preset: draft-nano, dim: 32, n_layers: 1, n_heads: 2, n_kv_heads: 1}',
      '--set',
      'train.seq_len=32',
      '--set',
      'train.batch_size=4',
      '--set',
      'train.max_steps=2',
      '--set',
      'train.eval_every=2',
      '--set',
      `train.tokenizer=${tok512()}`,
      'train',
      data.targets,
      '--out',
      out,
      '--target-model',
      stories260K(),
    ]);
    expect(trained.code, trained.stderr).toBe(0);
    draft = (JSON.parse(trained.stdout) as { draft: string }).draft;
  }, 120_000);

  afterAll(() => data?.remove());

  it('eval without --data evaluates the held-out split of the recorded targets, and says so', () => {
    const implicitOut = join(data.work, 'eval-implicit');
    const implicit = runBin(['eval', '--model', draft, '--cost-ratio', '0.1', '--out', implicitOut]);
    expect(implicit.code, implicit.stderr).toBe(0);
    expect(implicit.stderr).toContain(`no --data given: evaluating on the heldout split of ${data.targets}`);
    const explicit = runBin([
      '--quiet',
      'eval',
      '--model',
      draft,
      '--data',
      data.targets,
      '--cost-ratio',
      '0.1',
      '--out',
      join(data.work, 'eval-explicit'),
    ]);
    expect(explicit.code, explicit.stderr).toBe(0);
    const report = (dir: string) => readJson<{ data: object }>(join(data.work, dir, 'report.json'));
    expect(report('eval-implicit').data).toEqual(report('eval-explicit').data);
    expect(report('eval-implicit').data).toMatchObject({ split: 'heldout' });
  });

  it('eval without --data fails with exit 2 naming the recorded folder when the targets are gone', () => {
    const moved = `${data.targets}-moved`;
    renameSync(data.targets, moved);
    try {
      const run = runBin(['eval', '--model', draft, '--out', join(data.work, 'eval-gone')]);
      expect(run.code).toBe(2);
      const recordedIn = join(draft, 'manifest.json');
      expect(run.stderr).toContain(`the targets ${draft} was trained on (${data.targets}, recorded in ${recordedIn})`);
      expect(run.stderr).toMatch(/pass --data <targets dir>/);
      expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
      expect(existsSync(join(data.work, 'eval-gone'))).toBe(false);
    } finally {
      renameSync(moved, data.targets);
    }
  });

  it('export without --target uses the recorded target while it exists, and says when it does not', () => {
    const run = runBin(['export', '--model', draft, '--format', 'gguf', '--out', join(data.work, 'export')]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(`export: no --target given: using ${stories260K()}`);
    const manifest = readJson<{ target: unknown }>(join(data.work, 'export', 'manifest.json'));
    expect(manifest.target).not.toBeNull();

    // A copy of the draft whose recorded target has gone: exported without target checks, with a warning.
    const orphan = join(data.work, 'orphan-draft');
    cpSync(draft, orphan, { recursive: true });
    const manifestPath = join(orphan, 'manifest.json');
    const body = JSON.parse(readFileSync(manifestPath, 'utf8')) as { training: Record<string, unknown> };
    body.training.target_model = join(data.work, 'deleted-target.bin');
    writeFileSync(manifestPath, JSON.stringify(body));
    const orphanOut = join(data.work, 'export-orphan');
    const without = runBin(['export', '--model', orphan, '--format', 'gguf', '--out', orphanOut]);
    expect(without.code, without.stderr).toBe(0);
    expect(without.stderr).toContain('deleted-target.bin) is no longer there: exporting without target checks');
    const orphanManifest = readJson<{ target: unknown }>(join(orphanOut, 'manifest.json'));
    expect(orphanManifest.target).toBeNull();
  });
});
