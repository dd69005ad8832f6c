/**
 * fireopt synth on the real stories260K target (GGUF converted by fireopt itself): the target
 * writes new prompts in the style of real ShareGPT seed prompts (story-like ones: it is a tiny
 * story model); they are deduplicated, ingested into a valid traces dataset, and distilled by
 * both local engines with identical greedy results.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTargetRows } from '../../src/formats/targets-schema.js';
import { readTraceRows, type TraceRow } from '../../src/formats/traces-schema.js';
import { NearDuplicateIndex, normaliseText } from '../../src/synth/dedup.js';
import { synthSchema } from '../../src/synth/config.js';
import { runSynth } from '../../src/synth/index.js';
import { LlamaCppEngine } from '../../src/targets/llama-cpp/engine.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { runCli } from '../helpers/cli.js';
import { haveShared, sharedPath, SHAREGPT, STORIES_TARGETS } from '../helpers/shared.js';
import { writeStoriesGguf, type StoriesGguf } from '../targets/stories-gguf.js';

interface ShareGpt {
  conversations: Array<{ from: string; value: string }>;
}

let work: string;
let gguf: StoriesGguf;
let seedsFile: string;
let seeds: string[];
const N = 40;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'fireopt-synth-'));
  gguf = writeStoriesGguf();
  // Real user prompts, cut to a sentence-sized opening.
  const sharegpt = JSON.parse(readFileSync(sharedPath(SHAREGPT), 'utf8')) as ShareGpt[];
  seeds = sharegpt.slice(0, 12).map((c) => c.conversations[0].value.split(/\s+/).slice(0, 12).join(' '));
  seedsFile = join(work, 'seeds.txt');
  writeFileSync(seedsFile, seeds.join('\n') + '\n');
});

afterAll(() => {
  gguf?.remove();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function readDataset(dir: string): Promise<TraceRow[]> {
  const rows: TraceRow[] = [];
  for (const split of ['train', 'heldout'])
    for await (const row of readTraceRows(join(dir, `${split}.arrow`))) rows.push(row);
  return rows;
}

const haveInputs = haveShared(...STORIES_TARGETS);

describe.skipIf(!haveInputs)('near-duplicate index', () => {
  it('finds exact (normalised) and near duplicates of real prompts and keeps distinct ones', () => {
    const index = new NearDuplicateIndex(0.7);
    seeds.forEach((seed) => index.add(seed));
    const seed = seeds[0];
    expect(normaliseText(`  ${seed.toUpperCase()}!! `)).toBe(normaliseText(seed));
    expect(index.check(`${seed.toUpperCase()} ?`)).toEqual({ kind: 'exact', of: 0 });
    const near = index.check(`${seeds[6]} please`); // "my boss is making us do a family tree for the employees"
    expect(near).toMatchObject({ kind: 'near', of: 6 });
    expect(near.kind === 'near' && near.similarity).toBeLessThan(1);
    const sharegpt = JSON.parse(readFileSync(sharedPath(SHAREGPT), 'utf8')) as ShareGpt[];
    for (const other of sharegpt.slice(100, 120))
      expect(index.check(other.conversations[0].value.split(/\s+/).slice(0, 12).join(' '))).toEqual({ kind: 'new' });
  });
});

describe.skipIf(!haveInputs)('fireopt synth (llama-cpp stories260K target)', () => {
  const dataset = () => join(work, 'synthetic');

  it('writes N new, mutually distinct prompts as a valid ingest dataset', async () => {
    const result = await runCli([
      '--json',
      '--quiet',
      'synth',
      '--seed-prompts',
      seedsFile,
      '--n',
      String(N),
      '--out',
      dataset(),
      '--target-model',
      gguf.path,
      '--max-tokens',
      '48',
      '--heldout',
      '0.25',
      '--set',
      'target.kv_cache_type=f32',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout) as {
      written: number;
      seeds: number;
      completions: number;
      rows: { train: number; heldout: number };
      rejected: Record<string, number>;
    };
    expect(summary).toMatchObject({
      written: N,
      seeds: seeds.length,
      rows: { train: expect.any(Number), heldout: expect.any(Number) },
    });
    expect(summary.rows.train + summary.rows.heldout).toBe(N);
    expect(summary.completions).toBe(N + Object.values(summary.rejected).reduce((a, b) => a + b, 0));

    const manifest = JSON.parse(readFileSync(join(dataset(), 'manifest.json'), 'utf8')) as {
      kind: string;
      schema_version: number;
    };
    expect(manifest).toMatchObject({ kind: 'traces', schema_version: 1 });
    const rows = await readDataset(dataset());
    expect(rows).toHaveLength(N);
    const index = new NearDuplicateIndex(0.7);
    seeds.forEach((seed) => index.add(seed));
    for (const row of rows) {
      expect(row.completion).toBeNull();
      expect(row.messages).toHaveLength(1);
      const prompt = row.messages[0];
      expect(prompt.role).toBe('user');
      const text = prompt.content!;
      expect(text.length).toBeGreaterThanOrEqual(12);
      expect(text).not.toContain('\n');
      // New: not a (near) copy of a seed or of another synthetic prompt.
      expect(index.check(text)).toEqual({ kind: 'new' });
      index.add(text);
      expect(JSON.parse(row.metadata)).toMatchObject({
        format: 'prompts',
        source_metadata: { synth: { engine: 'llama-cpp', model: 'stories260K.gguf' } },
      });
    }
    // Story-like text the target wrote: mostly letters.
    const all = rows.map((r) => r.messages[0].content).join(' ');
    expect(all.replace(/[^a-z]/gi, '').length / all.length).toBeGreaterThan(0.7);
    expect(existsSync(join(work, 'synthetic.synth.jsonl'))).toBe(true);
  });

  it(
    'is read by distill: ' + 'both local engines give identical greedy completions over the synthetic prompts',
    async () => {
      const viaLlamaCpp = join(work, 'targets-llama-cpp');
      const viaTfjs = join(work, 'targets-tfjs');
      const common = ['--quiet', '--json', 'distill', dataset(), '--max-tokens', '24', '--top-logprobs', '2'];
      const first = await runCli([
        ...common,
        '--out',
        viaLlamaCpp,
        '--target-model',
        gguf.path,
        '--set',
        'target.kv_cache_type=f32',
      ]);
      expect(first.code, first.stderr).toBe(0);
      const second = await runCli([
        ...common,
        '--out',
        viaTfjs,
        '--set',
        'target.engine=tfjs',
        '--set',
        `target.model=${gguf.path}`,
        '--set',
        'target.backend=wasm',
      ]);
      expect(second.code, second.stderr).toBe(0);
      expect(JSON.parse(second.stdout)).toMatchObject({
        counts: { input: N, ok: N, failed: 0 },
        target: { engine: 'tfjs' },
      });
      for (const split of ['train', 'heldout']) {
        const expected = [];
        for await (const row of readTargetRows(join(viaLlamaCpp, `${split}.arrow`))) expected.push(row);
        let i = 0;
        for await (const row of readTargetRows(join(viaTfjs, `${split}.arrow`))) {
          expect(Array.from(row.prompt_token_ids)).toEqual(Array.from(expected[i].prompt_token_ids));
          expect(Array.from(row.completion_token_ids)).toEqual(Array.from(expected[i].completion_token_ids));
          expect(Array.from(row.top_ids!)).toEqual(Array.from(expected[i].top_ids!));
          i++;
        }
        expect(i).toBe(expected.length);
      }
    },
  );

  it('rejects repeats: greedy samples of one request are duplicates, and the output stays distinct', async () => {
    const engine = await LlamaCppEngine.open({
      model: gguf.path,
      contextSize: 512,
      threads: 1,
      sequences: 1,
      batchSize: 512,
    });
    try {
      const synth = synthSchema.parse({
        seed_prompts: seedsFile,
        n: 6,
        out: join(work, 'unused'),
        temperature: 0,
        samples_per_request: 3,
        max_tokens: 48,
        concurrency: 2,
      });
      const summary = await runSynth(
        { synth, promptsOut: join(work, 'greedy.jsonl') },
        { engine, tokenizer: await loadTokenizer(gguf.path), progress: () => {} },
      );
      expect(summary.rejected['exact-duplicate']).toBeGreaterThanOrEqual(summary.requests * 2);
      expect(new Set(summary.prompts.map((p) => normaliseText(p.text))).size).toBe(summary.prompts.length);
      const lines = readFileSync(join(work, 'greedy.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { prompt: string });
      expect(lines.map((l) => l.prompt)).toEqual(summary.prompts.map((p) => p.text));
      // Deterministic: the same settings give the same prompts.
      const again = await runSynth(
        { synth, promptsOut: join(work, 'greedy-again.jsonl') },
        { engine, tokenizer: await loadTokenizer(gguf.path), progress: () => {} },
      );
      expect(again.prompts).toEqual(summary.prompts);
    } finally {
      await engine.close();
    }
  });

  it('reports bad options as usage errors', async () => {
    const result = await runCli([
      'synth',
      '--seed-prompts',
      seedsFile,
      '--n',
      '0',
      '--out',
      join(work, 'bad'),
      '--target-model',
      gguf.path,
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/n: /);
  });
});
