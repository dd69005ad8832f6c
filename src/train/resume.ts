/**
 * What `train --resume` may change. A resumed run continues the saved weights, optimiser moments,
 * data position and schedule, so any setting that decides those — or what the draft is (model,
 * vocabulary, init, target) or how it is chosen (search, loss, held-out measure) — must be what it
 * was: a change would train one thing and record another. Settings that only pace or bound the
 * run may change, and are recorded in the run's manifest.
 */
import { UsageError } from '../errors.js';
import type { TrainConfig } from './config.js';

/**
 * Settings that may change on resume: where the run lives, which backend computes it (the same
 * numbers up to floating-point summation order), how often it evaluates and saves, how long
 * it runs (the automatic search's budget) and when it gives up. Every other key — including keys
 * added to the schema later — is run-changing.
 */
export const PACING_KEYS: ReadonlySet<string> = new Set([
  'out',
  'backend',
  'time_budget_s',
  'eval_every',
  'checkpoint_every',
  'patience',
  'max_logit_elements',
]);

/** A setting whose value differs between the saved run and this command, as a dotted `train.` path. */
export interface SettingChange {
  key: string;
  saved: unknown;
  now: unknown;
}

/** Every differing leaf setting of two resolved `train` sections, split into run-changing and pacing. */
export function compareResumeSettings(
  saved: TrainConfig,
  now: TrainConfig,
): { refused: SettingChange[]; pacing: SettingChange[] } {
  const refused: SettingChange[] = [];
  const pacing: SettingChange[] = [];
  for (const change of differences(saved, now, 'train')) {
    const topKey = change.key.split('.')[1];
    (PACING_KEYS.has(topKey) ? pacing : refused).push(change);
  }
  return { refused, pacing };
}

/** Refuse a resume that changes run-changing settings (exit 2, naming each key); returns the pacing changes. */
export function checkResumeSettings(saved: TrainConfig, now: TrainConfig, runDir: string): SettingChange[] {
  const { refused, pacing } = compareResumeSettings(saved, now);
  if (refused.length > 0) {
    const lines = refused.map(
      (c) => `  ${c.key}: ${JSON.stringify(c.saved)} when started, ${JSON.stringify(c.now)} now`,
    );
    const pacingKeys = [...PACING_KEYS].filter((key) => key !== 'out').join(', ');
    throw new UsageError(
      `${runDir}: --resume with settings that change the run:\n${lines.join('\n')}`,
      'HINT: resume with the settings the run was started with, or start a new run in another --out ' +
        `(${pacingKeys} may change)`,
    );
  }
  return pacing;
}

function differences(saved: unknown, now: unknown, path: string): SettingChange[] {
  if (isRecord(saved) && isRecord(now)) {
    const keys = new Set([...Object.keys(saved), ...Object.keys(now)]);
    return [...keys].sort().flatMap((key) => differences(saved[key], now[key], `${path}.${key}`));
  }
  return JSON.stringify(saved) === JSON.stringify(now) ? [] : [{ key: path, saved: saved ?? null, now: now ?? null }];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
