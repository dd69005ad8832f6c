/**
 * The benchmark scripts still run: the cheap ones at their `--smoke` setting, in seconds (the others
 * are type-checked by `tsc -p tsconfig.bench.json` in `npm test`). They run on the built dist/.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nativeKernels } from '../../src/backend/native.js';
import { runScript } from '../helpers/cli.js';
import { haveShared, repoRoot, SHAREGPT, STORIES_TARGETS, STORIES260K, TOK512 } from '../helpers/shared.js';

const ALPACA = [
  'Meta-Llama-3-8B-Instruct',
  'Mistral-7B-Instruct-v0.2',
  'gpt-3.5-turbo-1106',
  'gpt-4-turbo-2024-04-09',
].map((name) => `data/alpaca_eval_outputs/${name}.json`);
const LLAMA_SPM = 'models/vocab/ggml-vocab-llama-spm.gguf';
/** What bench/fireoptimizer-table.mjs reads from ../shared/data besides the AlpacaEval outputs and GSM8K. */
const FIREOPTIMIZER_TABLE_DATA = [
  ...[0, 1, 2, 3, 4, 5, 6].map((part) => `taskmaster4_coffee/data_0${part}.json`),
  'codexglue_code_refinement_small/valid.buggy-fixed.buggy',
  'codexglue_code_refinement_small/valid.buggy-fixed.fixed',
  'sharegpt_prompts/ShareGPT_V3_filtered_500.json',
  'sharegpt_prompts/sg_90k_part1_html_cleaned_lang_first_sampled_sorted.json',
  'spec_bench/question.jsonl',
  'mt_bench/question.jsonl',
  'mt_bench/gpt-4.jsonl',
  'medusa_mtbench_answers',
  'hh_rlhf_harmless_test/test.jsonl.gz',
  'mbpp/mbpp.jsonl',
  'humaneval/HumanEval.jsonl.gz',
  'gorilla_apibench/questions_torchhub_0_shot.jsonl',
  'gorilla_apibench/response_torchhub_Gorilla_FT_0_shot.jsonl',
  'tinyshakespeare/input.txt',
];

/** Runs a bench script, expecting exit 0, and returns its standard output. */
async function bench(script: string, args: string[]): Promise<string> {
  const result = await runScript(script, args, { timeoutMs: 110_000 });
  expect(result.code, result.stderr).toBe(0);
  return result.stdout;
}

describe('bench scripts at their smallest setting', () => {
  it.skipIf(!nativeKernels().kernels)(
    'bench/native-gemm.mjs --smoke prints a GFLOP/s row for each transpose case',
    async () => {
      const result = await runScript('bench/native-gemm.mjs', ['--smoke'], { timeoutMs: 60_000 });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/^\| 1 \| 64 × 48 × 32 \| \d+ \| \d+ \| \d+ \| n\/a \|$/m);
    },
  );

  it.skipIf(
    !haveShared('models/vocab/ggml-vocab-llama-spm.gguf', 'data/alpaca_eval_outputs/Meta-Llama-3-8B-Instruct.json'),
  )('bench/eval-throughput.mjs --smoke scores 2 real rows and prints its JSON line', async () => {
    const result = await runScript('bench/eval-throughput.mjs', ['--smoke'], { timeoutMs: 110_000 });
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout.trim().split('\n').pop() ?? '') as Record<string, number | string>;
    expect(summary).toMatchObject({ preset: 'draft-nano', vocab: 32000, rows: 2 });
    expect(summary.completion_tokens as number).toBeGreaterThan(10);
    expect(summary.heldout_tokens_per_min as number).toBeGreaterThan(0);
  });

  it('bench/profile-step.mjs --smoke prints the step time and its kernels by name', async () => {
    const out = await bench('bench/profile-step.mjs', ['--smoke']);
    expect(out).toMatch(/^native off: vocab 512, batch 1 × 32: step \d+ ms, \d+ kernels$/m);
    expect(out).toMatch(/^\| BatchMatMul \| \d+ \| [\d.]+ \|$/m);
  });

  it('bench/model-train.mjs --smoke trains one step and prints its throughput row', async () => {
    const out = await bench('bench/model-train.mjs', ['--smoke']);
    const row = JSON.parse(out.split('\n').find((line) => line.startsWith('{')) ?? '') as Record<string, number>;
    expect(row).toMatchObject({ preset: 'draft-nano', vocabSize: 512, T: 32, leak: 0 });
    expect(row.loss).toBeGreaterThan(Math.log(512) - 1); // random weights: about ln(V)
    expect(out).toMatch(/^\| wasm ×1 \| draft-nano \| 512 \| 8 × 32 \| \d+ \| \d+ \|/m);
  });

  it('bench/ingest-threads.mjs splits one ingest of the demo traces into CPU seconds per thread', async () => {
    const out = await bench('bench/ingest-threads.mjs', ['datasets/demo-traces.jsonl', '0']);
    expect(out).toMatch(/^wall [\d.]+ s, CPU [\d.]+ s, parse workers 0$/m);
    expect(out).toMatch(/^main: [\d.]+$/m);
  });

  it.skipIf(!haveShared(...ALPACA, 'data/taskmaster4_coffee/data_00.json'))(
    'bench/ingest.mjs --smoke ingests a 1 MB trace file every way and leaves nothing in bench/data',
    async () => {
      const out = await bench('bench/ingest.mjs', ['--smoke']);
      for (const step of ['cat', 'json-parse', 'ingest-1t', 'ingest-1w', 'ingest-2w', 'ingest'])
        expect(out).toMatch(new RegExp(`^\\| 1 MB \\| ${step} \\| [\\d.]+ `, 'm'));
      expect(out).toMatch(/\| (\d+) rows, 0 duplicates, 0 rejected/);
      expect(existsSync(join(repoRoot, 'bench/data/traces-1mb.jsonl'))).toBe(false);
    },
  );

  it.skipIf(!haveShared(STORIES260K, TOK512, LLAMA_SPM))(
    'bench/decode.mjs --smoke decodes stories260K in tfjs and llama.cpp with the same greedy tokens',
    async () => {
      const out = await bench('bench/decode.mjs', ['--smoke']);
      expect(out).toMatch(/^\| stories260K \| \d+ \| \d+ \| [\d.]+ \| yes \|$/m);
    },
  );

  it.skipIf(!haveShared(STORIES260K, TOK512, SHAREGPT))(
    'bench/distill.mjs --smoke distills through every engine with the same tokens as the raw loops',
    async () => {
      const out = await bench('bench/distill.mjs', ['--smoke']);
      const rows = out.split('\n').filter((line) => /^\| (llama-cpp|tfjs)/.test(line));
      expect(rows).toHaveLength(4);
      for (const row of rows) expect(row).toMatch(/\| yes \| [^|]+ \|$/);
      expect(out).toMatch(/^\| 2 \| \d+ \| [\d.]+ \|$/m); // the openai engine at concurrency 2
    },
  );

  it.skipIf(
    !haveShared(
      ...ALPACA,
      ...['train', 'test', 'example_model_solutions'].map((name) => `data/gsm8k/${name}.jsonl`),
      'data/tinyshakespeare/input.txt',
      'models/vocab/ggml-vocab-gpt-2.gguf',
      LLAMA_SPM,
    ),
  )('bench/tokenize.mjs --smoke tokenizes real text, every side equal to llama.cpp', async () => {
    const out = await bench('bench/tokenize.mjs', ['--smoke']);
    const documents = Number(/^(\d+) documents/m.exec(out)?.[1]);
    expect(documents).toBeGreaterThan(10);
    const rows = out.split('\n').filter((line) => /^\| (gpt-2|llama-spm) \|/.test(line));
    expect(rows).toHaveLength(3); // llama.cpp on both vocabularies, @huggingface/tokenizers on GPT-2's
    for (const row of rows) expect(row).toContain(`| ${documents} of ${documents} |`);
  });

  it.skipIf(
    !haveShared(
      ...ALPACA,
      ...FIREOPTIMIZER_TABLE_DATA.map((path) => `data/${path}`),
      ...['train', 'example_model_solutions'].map((name) => `data/gsm8k/${name}.jsonl`),
    ),
  )(
    'bench/fireoptimizer-table.mjs --smoke trains the generic and adapted drafts and prints every AlpacaEval row',
    async () => {
      const work = mkdtempSync(join(tmpdir(), 'fireopt-fotable-smoke-'));
      try {
        // The AlpacaEval workload only (its own split, two adapted drafts): the other two differ in their data
        // preparation alone, and every workload doubles the CLI starts of this test.
        const result = await runScript('bench/fireoptimizer-table.mjs', ['--smoke', work], {
          env: { WORKLOADS: 'alpaca' },
          timeoutMs: 230_000,
        });
        expect(result.code, result.stderr).toBe(0);
        const number = String.raw`\d+\.\d+`;
        const rows = result.stdout.split('\n').filter((line) => /^\| (alpaca|coffee|codexglue) \|/.test(line));
        expect(rows.map((row) => row.split(' | ').slice(0, 2).join(' | '))).toEqual(
          [
            'generic draft',
            'adapted draft (llama3)',
            'adapted on GPT-4-turbo outputs',
            'prompt-lookup',
            'suffix',
            'hybrid',
          ].map((row) => `| alpaca | ${row}`),
        );
        for (const row of rows)
          expect(row).toMatch(
            new RegExp(String.raw`^\| \w+ \| [^|]+ \| ${number} \| ${number} \| ${number}x \| \d: ${number}x \|`),
          );
        // The drafts' rows carry their size, tokens seen and train time; an adapted draft saw the generic
        // one's tokens too.
        const summary = JSON.parse(result.stdout.slice(result.stdout.indexOf('\n{') + 1)) as {
          table: Array<{ row: string; tokens_seen: number | null; parameters: number | null }>;
          scaling: Array<{ draft: string; points: Array<{ tokens_seen: number; hit_rate: number }> }>;
          goals: Record<string, Record<string, boolean | number>>;
          distilled: Record<string, { rows: { train: number; heldout: number } }>;
        };
        const generic = summary.table.find((r) => r.row === 'generic draft');
        const adapted = summary.table.find((r) => r.row === 'adapted draft (llama3)');
        expect(generic?.tokens_seen).toBeGreaterThan(0);
        expect(adapted?.tokens_seen).toBe(2 * (generic?.tokens_seen ?? 0)); // the same steps and batch in --smoke
        expect(adapted?.parameters).toBe(generic?.parameters);
        expect(summary.scaling.map((s) => s.draft)).toEqual(['llama3-adapted', 'gpt4-adapted']);
        for (const { points } of summary.scaling) expect(points.length).toBeGreaterThanOrEqual(2);
        expect(Object.keys(summary.goals)).toEqual(['alpaca']);
        // The test set keeps the workload's train rows as its train split (the suffix tree's and hybrid's).
        expect(summary.distilled['llama3-test'].rows.heldout).toBeGreaterThan(0);
        expect(summary.distilled['llama3-test'].rows.train).toBeGreaterThan(0);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    },
    240_000,
  );

  it.skipIf(!haveShared(...STORIES_TARGETS))(
    'bench/distill-fleet.mjs --smoke distills 6 prompts through 1 and 2 fireopt serve replicas',
    async () => {
      const result = await runScript('bench/distill-fleet.mjs', ['--smoke'], { timeoutMs: 150_000 });
      expect(result.code, result.stderr).toBe(0);
      const summary = JSON.parse(result.stdout.trim().split('\n').pop() ?? '') as {
        prompts: number;
        figures: Array<{ replicas: number; tokens_per_sec: number; rows_per_replica: number[] }>;
      };
      expect(summary.figures.map((figure) => figure.replicas)).toEqual([1, 2]);
      for (const figure of summary.figures) {
        expect(figure.tokens_per_sec).toBeGreaterThan(0);
        expect(figure.rows_per_replica).toHaveLength(figure.replicas);
        expect(figure.rows_per_replica.reduce((a, b) => a + b, 0)).toBe(summary.prompts);
      }
      expect(result.stdout).toMatch(/^\| 2 \| 4 \| \d+ \| \d+\.\d\d \| \d+ \/ \d+ \|$/m);
    },
    160_000,
  );
});
