/**
 * The training path reads tensors only asynchronously, which is what lets `fireopt train` run on the
 * webgpu backend (under Node it cannot read a GPU tensor synchronously). Checked for real, without a
 * GPU: on the cpu backend every synchronous read — Tensor.dataSync / arraySync / bufferSync and the
 * engine's readSync beneath them — is made to throw for the duration of real `fireopt train` runs
 * (gradient accumulation, on-device clipping, held-out evaluations, resume states, the best
 * checkpoint, then a --resume that loads the state), and restored afterwards.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDraftCheckpoint } from '../../src/formats/draft-checkpoint.js';
import { initBackend } from '../../src/backend/index.js';
import { LlamaModel, presetConfig, randomWeights } from '../../src/model/index.js';
import { runCli } from '../helpers/cli.js';
import { forbidSyncReads } from '../helpers/sync-reads.js';
import { haveShared, STORIES_TARGETS, stories260K, tok512 } from '../helpers/shared.js';
import { makeStoriesTargets, type StoriesTargets } from './stories-targets.js';

let data: StoriesTargets;

beforeAll(async () => {
  data = await makeStoriesTargets(48, 32);
}, 60_000);

afterAll(() => data?.remove());

interface Metric {
  type: 'train' | 'eval';
  step: number;
  loss?: number;
  grad_norm?: number;
  hit_rate?: number;
}

describe.skipIf(!haveShared(...STORIES_TARGETS))('fireopt train without synchronous reads', () => {
  it('trains, clips, evaluates, saves, checkpoints and resumes while every synchronous read throws', async () => {
    const out = join(data.work, 'async-only');
    const settings = [
      '--quiet',
      '--set',
      'train.select=off',
      '--set',
      'train.backend=cpu',
      '--set',
      'train.model={preset: draft-nano, dim: 16, n_layers: 1, n_heads: 2, n_kv_heads: 1}',
      '--set',
      'train.seq_len=32',
      '--set',
      'train.batch_size=4',
      '--set',
      'train.grad_accum=2',
      '--set',
      'train.warmup_steps=2',
      // A small clip so the on-device clipping takes its scaling branch.
      '--set',
      'train.grad_clip=0.05',
      '--set',
      'train.lr=0.01',
      '--set',
      'train.max_steps=6',
      '--set',
      'train.eval_every=3',
      '--set',
      'train.eval_rows=8',
      '--set',
      'train.checkpoint_every=2',
      '--set',
      `train.tokenizer=${tok512()}`,
    ];
    await initBackend('cpu'); // what train.backend=cpu selects, started before the guard
    const guard = forbidSyncReads('training');
    let first: Awaited<ReturnType<typeof runCli>>;
    let resumed: Awaited<ReturnType<typeof runCli>>;
    let toWeightsThrew = false;
    try {
      // The guard is effective: a synchronous read of a cpu tensor fails, the old toWeights too.
      const probe = tf.scalar(1);
      expect(() => probe.dataSync()).toThrow(/synchronous read/);
      expect(() => probe.arraySync()).toThrow(/synchronous read/);
      probe.dispose();
      const model = LlamaModel.fromWeights(
        randomWeights(presetConfig('draft-nano', 32, 8, { dim: 16, nLayers: 1, nHeads: 2, nKvHeads: 1 }), { seed: 1 }),
      );
      try {
        model.toWeights();
      } catch {
        toWeightsThrew = true;
      }
      expect((await model.toWeightsAsync()).tokenEmbedding.shape).toEqual([32, 16]);
      model.dispose();
      guard.attempts.length = 0;

      first = await runCli([...settings, 'train', data.targets, '--out', out, '--target-model', stories260K()]);
      // Continuing a finished run loads its state into a model (reads only asynchronously too).
      resumed = await runCli([
        ...settings,
        'train',
        data.targets,
        '--out',
        out,
        '--target-model',
        stories260K(),
        '--resume',
      ]);
    } finally {
      guard.restore();
    }
    expect(toWeightsThrew).toBe(true);
    expect(first.code, first.stderr).toBe(0);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(guard.attempts).toEqual([]);

    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Metric);
    const train = metrics.filter((m) => m.type === 'train');
    expect(train.map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const m of train) {
      expect(Number.isFinite(m.loss)).toBe(true);
      expect(m.grad_norm as number).toBeGreaterThan(0.05); // clipped (the norm logged is before clipping)
    }
    expect(metrics.filter((m) => m.type === 'eval').map((m) => m.step)).toEqual([0, 3, 6]);
    const checkpoint = readDraftCheckpoint(join(out, 'draft'));
    expect(checkpoint.weights.config).toMatchObject({ dim: 16, nLayers: 1, vocabSize: 512 });
    const state = JSON.parse(readFileSync(join(out, 'state', 'state.json'), 'utf8')) as {
      counters: { step: number; stopReason?: string };
    };
    expect(state.counters).toMatchObject({ step: 6, stopReason: 'max_steps reached' });
  }, 60_000);
});
