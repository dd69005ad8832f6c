/**
 * `fireopt drift --model <deployed draft> --traces <fresh traces>`: ingest the fresh traces (all of
 * them held out), distill them with the configured target, evaluate the deployed draft on them and
 * compare with the acceptance recorded when it was promoted. Work folders go under `out`.
 */
import { join, resolve } from 'node:path';
import type { FireoptConfig } from '../config/schema.js';
import { UsageError } from '../errors.js';
import { measureDrift, recordedAcceptance, type DriftMeasurement } from './drift.js';
import { distillStage, evalStage, ingestStage, type StageDeps } from './stages.js';

/** `retraining-due` (exit 3), `not-due` (0), or `nothing-deployed` (0: the release does not exist yet). */
export type DriftOutcome = 'retraining-due' | 'not-due' | 'nothing-deployed';

export interface DriftResult extends DriftMeasurement {
  outcome: Exclude<DriftOutcome, 'nothing-deployed'>;
  model: string;
  report: string;
  rows: number;
}

/** `fireopt drift` before the first promotion: the release folder does not exist yet. */
export interface NothingDeployed {
  outcome: 'nothing-deployed';
  model: string;
  retrain: true;
  reason: string;
}

/**
 * Measure drift; `model` is a draft checkpoint folder or a release folder holding `draft/`. A release
 * that does not exist yet (the first night) is `nothing-deployed`, not an error; any other path that
 * is not a draft is.
 */
export async function runDrift(
  config: FireoptConfig,
  request: { model: string; traces: string[]; out: string },
  deps: StageDeps,
): Promise<DriftResult | NothingDeployed> {
  if (request.traces.length === 0) throw new UsageError('drift: no fresh traces (--traces <files...>)');
  const { existsSync } = await import('node:fs');
  if (!existsSync(request.model)) {
    return {
      outcome: 'nothing-deployed',
      model: request.model,
      retrain: true,
      reason: `nothing deployed yet: ${request.model} does not exist`,
    };
  }
  const model = existsSync(join(request.model, 'draft', 'manifest.json'))
    ? join(request.model, 'draft')
    : request.model;
  const promotionFile = existsSync(join(request.model, 'promotion.json'))
    ? join(request.model, 'promotion.json')
    : undefined;
  const recorded = recordedAcceptance(model, promotionFile);
  const out = resolve(request.out);
  const dataset = join(out, 'dataset');
  const targets = join(out, 'targets');
  // Every fresh conversation is data to measure on: hold them all out.
  await ingestStage(config, request.traces, dataset, deps, 1);
  // A drift folder reused night after night distills only the conversations it has not seen.
  await distillStage(config, dataset, targets, deps, {
    splits: ['heldout'],
    reuse: existsSync(targets) ? targets : undefined,
  });
  const { report, reportPath } = await evalStage(
    config,
    { model, data: targets, out: join(out, 'report'), baselines: [], split: 'heldout' },
    deps,
  );
  const measurement = measureDrift(report, reportPath, recorded, config.drift);
  return {
    ...measurement,
    outcome: measurement.retrain ? 'retraining-due' : 'not-due',
    model,
    report: reportPath,
    rows: report.data.rows,
  };
}
