/**
 * The stages as the pipeline calls them: each wraps one stage's library function with the paths
 * the run directory gives it. Shared by `fireopt run`, `fireopt drift` and `fireopt demo`.
 */
import { join } from 'node:path';
import type { FireoptConfig } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import type { EvalConfig } from '../evaluate/config.js';
import type { ProgressSink } from '../progress.js';

export interface StageDeps {
  progress: ProgressSink;
  signal?: AbortSignal;
  /** API key of an `openai` target (the CLI reads it from the variable `target.api_key_env` names). */
  apiKey?: string;
}

/** Ingest `inputs` into `out`. */
export async function ingestStage(
  config: FireoptConfig,
  inputs: string[],
  out: string,
  deps: StageDeps,
  heldout?: number,
): Promise<Record<string, unknown>> {
  const { runIngest } = await import('../ingest/index.js');
  const summary = await runIngest(
    { ...config, ingest: { ...config.ingest, inputs, out, ...(heldout !== undefined && { heldout }) } },
    { progress: deps.progress, signal: deps.signal },
  );
  return {
    rows: summary.rows,
    records: summary.records,
    duplicates_removed: summary.duplicates_removed,
    rejected: summary.rejected.count,
  };
}

/**
 * Distill the dataset `dataset` into `out` with the configured target; `reuse`: earlier targets
 * whose rows are taken by row id where target and settings are unchanged (only new rows are distilled).
 */
export async function distillStage(
  config: FireoptConfig,
  dataset: string,
  out: string,
  deps: StageDeps,
  options: { splits?: Array<'train' | 'heldout'>; reuse?: string } = {},
): Promise<Record<string, unknown>> {
  const { splits, reuse } = options;
  const { distill, target } = config;
  if (!target && distill.mode !== 'traces') {
    throw new ConfigError(
      'distill needs a target: set the `target` section (or distill.mode: traces with distill.tokenizer)',
    );
  }
  const { openTarget } = await import('../targets/open.js');
  const { runDistill } = await import('../distill/index.js');
  const opened = await openTarget(target, distill, { apiKey: deps.apiKey, progress: deps.progress });
  const settings = { ...distill, dataset, out, ...(splits && { splits }) };
  const summary = await runDistill(
    { dataset, out, distill: settings, resolvedConfig: config, target, reuse },
    {
      tokenizer: opened.tokenizer,
      chatTemplate: opened.chatTemplate,
      tokenizerIdentity: opened.identity,
      openEngine: opened.openEngine,
      progress: deps.progress,
      signal: deps.signal,
    },
  );
  return {
    rows: summary.counts.rows,
    ok: summary.counts.ok,
    failed: summary.counts.failed,
    skipped: summary.counts.skipped,
    reused: summary.counts.reused,
    distilled: summary.counts.input - summary.counts.reused,
    ...(summary.reuse && { reuse: summary.reuse.reason }),
    tokens: summary.tokens,
    target: summary.target,
  };
}

/** Evaluate `model` (and `baselines`) on the held-out split of `data`; the report goes to `out`. */
export async function evalStage(
  config: FireoptConfig,
  settings: Partial<EvalConfig> & { model: string; data: string; out: string },
  deps: StageDeps,
) {
  const { runEval } = await import('../evaluate/index.js');
  const result = await runEval(
    { eval: { ...config.eval, ...settings }, resolvedConfig: config },
    {
      progress: deps.progress,
      // `eval.speedup.engine: llama-cpp` decodes each draft as export writes it.
      exportDraftGguf: async (draftDir, targetGguf, outDir) =>
        (await import('../export/index.js')).exportDraftGguf(draftDir, targetGguf, outDir),
    },
  );
  return { ...result, reportPath: join(result.out, 'report.json') };
}
