/**
 * Drift: how the deployed draft does on fresh traffic against what was recorded when it was
 * promoted. The recorded numbers come from the release's `promotion.json`; a draft that was never
 * promoted by fireopt falls back to the held-out numbers its training recorded in its manifest.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InputError } from '../errors.js';
import { readDraftCheckpoint } from '../formats/draft-checkpoint.js';
import type { CandidateReport, EvalReport } from '../evaluate/report-schema.js';
import type { DriftConfig } from './config.js';

/** A draft's acceptance on some data: what is recorded at promotion and measured for drift. */
export interface Acceptance {
  /** τ at `best_k`: target tokens per target forward pass. */
  acceptance_length: number;
  best_k: number;
  /** Teacher-forced greedy top-1 agreement (null when unknown). */
  hit_rate: number | null;
  /** Expected speed-up at `best_k` (null when unknown). */
  speedup: number | null;
  /** Where the numbers were measured. */
  source: string;
}

export interface DriftMeasurement {
  metric: DriftConfig['metric'];
  threshold: number;
  recorded: Acceptance;
  fresh: Acceptance;
  /** (recorded − fresh) / recorded for the metric; negative when fresh traffic is easier. */
  relative_drop: number;
  /** Retraining is due: the drop exceeds the threshold. */
  retrain: boolean;
  reason: string;
}

/** A candidate's acceptance at k (its own best k when k is not given). */
export function acceptanceOf(candidate: CandidateReport, source: string, k = candidate.best_k): Acceptance {
  const atK = candidate.by_k[k - 1];
  return { acceptance_length: atK.tau, best_k: k, hit_rate: candidate.greedy_hit_rate, speedup: atK.speedup, source };
}

/**
 * The acceptance recorded for a deployed draft: `promotion.json` in the release folder (or beside
 * the draft folder), else the held-out result in the draft checkpoint's manifest.
 */
export function recordedAcceptance(draftDir: string, promotionFile?: string): Acceptance {
  for (const candidate of [
    promotionFile,
    join(draftDir, 'promotion.json'),
    join(dirname(draftDir), 'promotion.json'),
  ]) {
    if (!candidate || !existsSync(candidate)) continue;
    const promotion = JSON.parse(readFileSync(candidate, 'utf8')) as { kind?: string; acceptance?: Acceptance };
    if (promotion.kind !== 'promotion' || !promotion.acceptance)
      throw new InputError(`${candidate}: not a fireopt promotion record`);
    return { ...promotion.acceptance, source: candidate };
  }
  const checkpoint = readDraftCheckpoint(draftDir);
  const heldout = checkpoint.training.heldout as
    | { acceptanceLength?: number; hitRate?: number; expectedSpeedup?: number }
    | undefined;
  const draftTokens =
    (checkpoint.manifest.config as { train?: { search?: { draft_tokens?: number } } } | undefined)?.train?.search
      ?.draft_tokens ?? 4;
  if (typeof heldout?.acceptanceLength !== 'number') {
    throw new InputError(
      `${draftDir}: no recorded acceptance (no promotion.json, and the draft's manifest has no held-out result)`,
      'HINT: promote drafts with `fireopt run`, which records it',
    );
  }
  return {
    acceptance_length: heldout.acceptanceLength,
    best_k: draftTokens,
    hit_rate: heldout.hitRate ?? null,
    speedup: heldout.expectedSpeedup ?? null,
    source: `${join(draftDir, 'manifest.json')} (training held-out split)`,
  };
}

/** Compare the deployed draft's numbers on fresh data (its candidate in `report`) with the recorded ones. */
export function measureDrift(
  report: EvalReport,
  reportPath: string,
  recorded: Acceptance,
  config: DriftConfig,
): DriftMeasurement {
  const candidate = report.candidates[0];
  const fresh = acceptanceOf(candidate, reportPath, Math.min(recorded.best_k, report.k_max));
  const value = (a: Acceptance): number | null =>
    config.metric === 'hit_rate'
      ? a.hit_rate
      : config.metric === 'acceptance_length'
        ? a.acceptance_length
        : a.acceptance_length - 1;
  const before = value(recorded);
  const now = value(fresh);
  if (before === null || now === null)
    throw new InputError(
      `drift: the ${config.metric} of the deployed draft is not known (recorded ${before}, fresh ${now})`,
      'HINT: set drift.metric: accepted_tokens',
    );
  const relativeDrop = before > 0 ? (before - now) / before : 0;
  const retrain = relativeDrop > config.threshold;
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  const reason =
    `${config.metric} ${before.toFixed(3)} when promoted → ${now.toFixed(3)} ` +
    `on fresh traffic (${relativeDrop >= 0 ? 'down' : 'up'} ` +
    `${pct(Math.abs(relativeDrop))}; threshold ${pct(config.threshold)})`;
  return {
    metric: config.metric,
    threshold: config.threshold,
    recorded,
    fresh,
    relative_drop: relativeDrop,
    retrain,
    reason,
  };
}
