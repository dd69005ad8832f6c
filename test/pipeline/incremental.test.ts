/**
 * `fireopt run` over two nights on the real stories260K target in llama.cpp (greedy): the second
 * night's traces add rows, and the distill stage takes the first night's rows by row id and asks
 * the target only for the new ones; its targets are byte for byte those of a full distill.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineResult } from '../../src/pipeline/index.js';
import { runCli } from '../helpers/cli.js';
import { haveShared, STORIES260K } from '../helpers/shared.js';
import { writeStoriesGguf, type StoriesGguf } from '../targets/stories-gguf.js';
import { PIPELINE_TRACES, writeAlpacaTraces } from './traces.js';

describe.skipIf(!haveShared(STORIES260K, ...PIPELINE_TRACES))('fireopt run: incremental distill', () => {
  let work: string;
  let gguf: StoriesGguf;
  let config: string;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'fireopt-incremental-'));
    gguf = writeStoriesGguf();
    mkdirSync(join(work, 'traces'));
    config = join(work, 'pipeline.yaml');
    writeFileSync(
      config,
      [
        `ingest: { inputs: ['${join(work, 'traces')}/*.jsonl'], heldout: 0.3 }`,
        // f32 KV cache: exact log-probabilities, whatever ran before in the context
        `target: { engine: llama-cpp, model: ${gguf.path}, threads: 1, kv_cache_type: f32 }`,
        'distill: { mode: regenerate, chat_template: none, max_tokens: 12, top_logprobs: 2 }',
        `train: { target_model: ${gguf.path}, backend: wasm, select: off, ` +
          `model: { preset: draft-nano }, max_steps: 2, seq_len: 32, batch_size: ` +
          `4, warmup_steps: 1, eval_every: 2, patience: 0 }`,
        'eval: { cost: { engine: given }, bootstrap_samples: 100 }',
        `run: { dir: ${join(work, 'run')} }`,
      ].join('\n') + '\n',
    );
  });

  afterAll(() => {
    if (!process.env.KEEP) rmSync(work, { recursive: true, force: true });
    gguf?.remove();
  });

  async function night(): Promise<{ result: PipelineResult; distill: Record<string, unknown> }> {
    const { code, stdout, stderr } = await runCli(['--json', '--quiet', '-c', config, 'run']);
    expect([0, 3], stderr).toContain(code);
    const result = JSON.parse(stdout) as PipelineResult;
    const stage = result.stages.find((s) => s.stage === '2-distill');
    expect(stage?.status).toBe('ran');
    return { result, distill: stage?.summary ?? {} };
  }

  it('distills only the new rows on the second night and writes what a full distill writes', async () => {
    writeAlpacaTraces(join(work, 'traces', 'day1.jsonl'), 10, 120);
    const first = await night();
    expect(first.distill).toMatchObject({ reused: 0, distilled: 10 });

    // Night 2: yesterday's traces plus 5 new ones (rows 10-14 of the same source).
    writeAlpacaTraces(join(work, 'traces', 'all.jsonl'), 15, 120);
    const lines = readFileSync(join(work, 'traces', 'all.jsonl'), 'utf8')
      .trim()
      .split('\n');
    writeFileSync(join(work, 'traces', 'day2.jsonl'), lines.slice(10).join('\n') + '\n');
    rmSync(join(work, 'traces', 'all.jsonl'));
    const second = await night();
    expect(second.distill).toMatchObject({ reused: 10, distilled: 5, ok: 15 });
    const runJson = JSON.parse(readFileSync(join(work, 'run', 'run.json'), 'utf8')) as PipelineResult;
    expect(runJson.stages.find((s) => s.stage === '2-distill')?.summary).toMatchObject({ reused: 10, distilled: 5 });

    const full = join(work, 'full');
    const distilled = await runCli([
      '--quiet',
      '-c',
      config,
      'distill',
      join(work, 'run', '1-ingest', 'data'),
      '--out',
      full,
    ]);
    expect(distilled.code, distilled.stderr).toBe(0);
    for (const split of ['train.arrow', 'heldout.arrow']) {
      expect(readFileSync(join(work, 'run', '2-distill', 'data', split))).toEqual(readFileSync(join(full, split)));
    }
  }, 180_000);
});
