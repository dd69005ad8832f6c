/**
 * `fireopt demo`: the whole loop offline on files the repository ships — the demo target
 * (`datasets/demo-target.gguf`, a small Llama model fireopt trained on the READMEs of its installed
 * npm packages; `scripts/demo-target.mjs` reproduces it), a generic draft for comparison
 * (`datasets/demo-generic-draft/`) and sample traffic (`datasets/demo-traces.jsonl`).
 *
 * The speed-up is also measured, by real speculative decoding in llama.cpp against plain decoding
 * (`eval.speedup`). Not against the demo target itself: at 0.9M parameters a target step costs about what
 * a draft step costs (per-call overhead), so no draft could pay. The measurement runs on the demo target
 * padded with compute that cannot change its outputs (speculation/padded-target.ts): the same function
 * (at F32: the demo target is F16, so next-token probabilities differ by up to 1e-3; greedy outputs were
 * equal on the held-out prompts checked), the cost of a 14M-parameter model, written beside the run as
 * `measure-target.gguf`.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configSchema, type FireoptConfig } from '../config/schema.js';
import { InputError } from '../errors.js';
import { readReport } from '../evaluate/compare.js';
import { readLlamaGguf, writeLlamaGguf } from '../formats/gguf-llama.js';
import { padTarget, type TargetPadding } from '../speculation/padded-target.js';
import { runPipeline, type PipelineResult } from './index.js';
import type { StageDeps } from './stages.js';

/** The repository (package) root: dist/pipeline/demo.js or src/pipeline/demo.ts, two levels up. */
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface DemoOptions {
  /** Work folder: run/ (the stages) and release/ (the promoted draft). */
  out: string;
  /** Training time budget, seconds. */
  timeBudgetS: number;
  /** Training steps per candidate at most (default 5000). */
  maxSteps?: number;
  /** Overrides applied to the demo config (already parsed `--set` pairs are applied by the caller). */
  overrides?: (config: Record<string, unknown>) => void;
}

export interface DemoRow {
  label: string;
  name: string;
  hit_rate: number | null;
  acceptance_length: number;
  best_k: number;
  speedup: number;
  /** Measured in llama.cpp against the padded target, at the measured k that went fastest (null: not measured). */
  measured: { k: number; speedup: number; predicted_speedup: number } | null;
}

export interface DemoResult {
  pipeline: PipelineResult;
  rows: DemoRow[];
  report: string;
  report_md: string;
  export: string;
  release: string;
}

/**
 * The padding of the measurement's target: residual stream 128 → 384, feed-forward 352 → 1,536, 2 extra
 * blocks (14M parameters, 57 MB). A draft step then costs about a tenth of a target step, the c the
 * demo states, and the measurement stays well under a minute on 2 cores.
 */
const MEASURE_PADDING: TargetPadding = { dim: 384, hiddenDim: 1536, extraLayers: 2 };

/** Where the demo writes the padded target its speed-up is measured against. */
export function measureTargetPath(out: string): string {
  return join(resolve(out), 'measure-target.gguf');
}

/** Write the demo target padded for the measurement (deterministic: a rerun writes the same bytes). */
export function writeMeasureTarget(out: string): string {
  const { weights, vocabulary } = readLlamaGguf(join(packageRoot, 'datasets', 'demo-target.gguf'));
  const path = measureTargetPath(out);
  writeLlamaGguf(path, padTarget(weights, MEASURE_PADDING), vocabulary, { name: 'fireopt-demo-target-padded' });
  return path;
}

/** The demo's config, as a YAML-shaped object (absolute paths into the package). */
export function demoConfigInput(out: string, timeBudgetS: number, maxSteps = 5000): Record<string, unknown> {
  const data = (file: string): string => join(packageRoot, 'datasets', file);
  for (const file of ['demo-target.gguf', 'demo-traces.jsonl', 'demo-generic-draft/manifest.json']) {
    if (!existsSync(data(file)))
      throw new InputError(
        `${data(file)}: missing demo file`,
        'HINT: run `node scripts/demo-target.mjs` (target, generic draft) and `node scripts/demo-traces.mjs` (traces)',
      );
  }
  const target = data('demo-target.gguf');
  return {
    name: 'fireopt-demo',
    ingest: { inputs: [data('demo-traces.jsonl')], heldout: 0.2 },
    target: { engine: 'llama-cpp', model: target, threads: 1, context_size: 512 },
    distill: { mode: 'regenerate', max_tokens: 48, top_logprobs: 4, concurrency: 1 },
    train: {
      target_model: target,
      time_budget_s: timeBudgetS,
      search: { models: [{ preset: 'draft-nano' }, { preset: 'draft-nano', n_layers: 1 }], learning_rates: [0.003] },
      seq_len: 128,
      batch_size: 16,
      warmup_steps: 20,
      eval_every: 50,
      checkpoint_every: 50,
      patience: 0,
      max_steps: maxSteps,
    },
    // A stated c: the demo target is as small as its drafts, so timing it in llama.cpp would measure
    // per-call overhead, not the model (a real target is hundreds of times larger than its draft).
    eval: {
      baselines: [data('demo-generic-draft'), 'prompt-lookup'],
      cost: { engine: 'given', target_model: measureTargetPath(out) },
      cost_ratio: 0.1,
      // Small: 4 held-out prompts × 32 tokens, 1 untimed and 3 timed rounds.
      speedup: { engine: 'llama-cpp', k: [3, 6], prompts: 4, max_tokens: 32, runs: 3, warmup_runs: 1 },
    },
    run: { dir: join(out, 'run') },
    promotion: { release: join(out, 'release') },
  };
}

/** Run the demo loop and gather the table rows. */
export async function runDemo(options: DemoOptions, deps: StageDeps): Promise<DemoResult> {
  const out = resolve(options.out);
  const input = demoConfigInput(out, options.timeBudgetS, options.maxSteps);
  options.overrides?.(input);
  const config: FireoptConfig = configSchema.parse(input);
  writeMeasureTarget(out);
  const pipeline = await runPipeline(config, deps);
  const reportPath = pipeline.report ?? join(out, 'run', '5-eval', 'data', 'report.json');
  const report = readReport(reportPath);
  const labels = [
    'adapted draft (trained just now on this traffic)',
    'generic draft (same target, generic text)',
    'prompt lookup (model-free, no draft model)',
    'suffix decoding (model-free, no draft model)',
  ];
  const rows = report.candidates.map((c, i): DemoRow => {
    const measured = report.measured?.candidates.find((m) => m.name === c.name);
    const fastest = measured?.by_k.reduce((a, b) => (b.speedup.median > a.speedup.median ? b : a));
    return {
      label: labels[i] ?? c.name,
      name: c.name,
      hit_rate: c.greedy_hit_rate,
      acceptance_length: c.by_k[c.best_k - 1].tau,
      best_k: c.best_k,
      speedup: c.best_speedup,
      measured: fastest
        ? { k: fastest.k, speedup: fastest.speedup.median, predicted_speedup: fastest.predicted_speedup }
        : null,
    };
  });
  return {
    pipeline,
    rows,
    report: reportPath,
    report_md: join(dirname(reportPath), 'report.md'),
    export: pipeline.export ?? join(out, 'run', '6-export', 'data'),
    release: join(out, 'release'),
  };
}

/** The table a newcomer reads at the end of the demo. */
export function demoTable(result: DemoResult): string {
  const header = ['speculator', 'hit rate', 'acceptance length', 'expected speed-up', 'measured (predicted)'];
  const body = result.rows.map((r) => [
    r.label,
    r.hit_rate === null ? '–' : `${(100 * r.hit_rate).toFixed(1)}%`,
    `${r.acceptance_length.toFixed(2)} tokens (k = ${r.best_k})`,
    `${r.speedup.toFixed(2)}×`,
    r.measured
      ? `${r.measured.speedup.toFixed(2)}× at k = ${r.measured.k} (${r.measured.predicted_speedup.toFixed(2)}×)`
      : '–',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...body.map(line),
    '',
    "hit rate: how often the draft guesses the target's next token; acceptance length: target tokens produced",
    'per target forward pass when drafting k tokens; expected speed-up: acceptance length / (1 + k × draft cost).',
    'measured: real speculative decoding in llama.cpp against plain decoding (median of 3 rounds), on a copy of the',
    "target padded to a 14M-parameter model's cost with its outputs unchanged; checking k tokens costs there more",
    'than one step. predicted: the cost model with the costs paid in the same rounds.',
    `outcome: ${result.pipeline.outcome} (${result.pipeline.reason})`,
    `report:   ${result.report_md} (and report.json, plots)`,
    `exported: ${result.export}`,
    `release:  ${result.release}`,
  ].join('\n');
}
