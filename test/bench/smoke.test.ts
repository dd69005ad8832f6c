/**
 * The benchmark scripts still run: the cheap ones at their `--smoke` setting, in seconds (the others
 * are type-checked by `tsc -p tsconfig.bench.json` in `npm test`). They run on the built dist/.
 */
import { describe, expect, it } from 'vitest';
import { nativeKernels } from '../../src/backend/native.js';
import { runScript } from '../helpers/cli.js';
import { haveShared, STORIES_TARGETS } from '../helpers/shared.js';

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
