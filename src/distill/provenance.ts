/**
 * What decides the content of a targets folder's rows besides the input rows themselves: the
 * target (its model file's sha256, or the served model's name), the settings it runs with, its
 * tokenizer, the chat template and the distill settings that change outputs. Two targets folders
 * with the same provenance hold the same rows for the same input row (greedy), so distill may
 * reuse an earlier folder's rows (`--reuse`) and `fireopt merge` may join shards.
 */
import { createHash } from 'node:crypto';
import type { TargetConfig } from '../targets/config.js';
import type { TargetIdentity } from '../targets/engine.js';
import type { TokenizerIdentity } from '../tokenizer/identity.js';
import type { DistillConfig } from './config.js';

/** The `provenance` field of a targets manifest. */
export interface TargetsProvenance {
  target: Record<string, unknown>;
  /** The `target` section's settings that change outputs (null in traces mode). */
  target_settings: Record<string, unknown> | null;
  tokenizer: TokenizerIdentity;
  chat_template_sha256: string | null;
  /** The distill settings that change a row's outputs. */
  distill: Record<string, unknown>;
  /**
   * How `score` and `traces` rows become token ids, raised when that changes (2: a completion ends at its
   * first end-of-generation token), so earlier rows are not reused; absent for `regenerate`.
   */
  rendering?: number;
}

/** The current `rendering` of score and traces rows. */
const RENDERING = 2;

// Settings that pace the run, name paths or choose which rows run: they never change a row's outputs.
const DISTILL_NEUTRAL_KEYS = ['dataset', 'out', 'concurrency', 'chunk_rows', 'max_failures', 'limit', 'splits'];
// Where and how fast the target is reached; the model itself is compared by its identity.
const TARGET_NEUTRAL_KEYS = [
  'model',
  'tokenizer',
  'base_url',
  'base_urls',
  'api_key_env',
  'concurrency',
  'requests_per_second',
  'timeout_ms',
  'max_retries',
  'retry_min_delay_ms',
  'retry_max_delay_ms',
  'threads',
];

function without(section: object, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(section).filter(([key]) => !keys.includes(key)));
}

/** The provenance of a distill run. */
export function targetsProvenance(parts: {
  identity: TargetIdentity | { engine: 'none'; tokenizer: string };
  target: TargetConfig | undefined;
  tokenizer: TokenizerIdentity;
  chatTemplate: string | undefined;
  distill: DistillConfig;
}): TargetsProvenance {
  // A local model is its file's content (a renamed or moved file is the same model); a served one its name.
  // Without a target (traces mode) the tokenizer is compared by its token table below, not its path.
  const target: Record<string, unknown> =
    parts.identity.engine === 'none'
      ? { engine: 'none' }
      : parts.identity.modelSha256 !== undefined
        ? without(parts.identity, ['model', 'baseUrl'])
        : without(parts.identity, ['baseUrl']);
  return {
    target,
    target_settings:
      parts.distill.mode === 'traces' || !parts.target ? null : without(parts.target, TARGET_NEUTRAL_KEYS),
    tokenizer: parts.tokenizer,
    chat_template_sha256:
      parts.chatTemplate === undefined ? null : createHash('sha256').update(parts.chatTemplate).digest('hex'),
    distill: without(parts.distill, DISTILL_NEUTRAL_KEYS),
    ...(parts.distill.mode === 'regenerate' ? {} : { rendering: RENDERING }),
  };
}

/**
 * How `b` differs from `a`, one `path: a → b` line per setting (at most 5), or [] when equal;
 * for messages such as "re-distilling every row: distill.max_tokens: 48 → 64".
 */
export function provenanceDifferences(a: TargetsProvenance, b: TargetsProvenance): string[] {
  const lines: string[] = [];
  const walk = (path: string, x: unknown, y: unknown): void => {
    const bothObjects = isRecord(x) && isRecord(y);
    if (bothObjects) {
      for (const key of new Set([...Object.keys(x), ...Object.keys(y)])) walk(`${path}.${key}`, x[key], y[key]);
    } else if (JSON.stringify(x) !== JSON.stringify(y)) {
      lines.push(`${path.slice(1)}: ${JSON.stringify(x) ?? 'unset'} → ${JSON.stringify(y) ?? 'unset'}`);
    }
  };
  walk('', a, b);
  return lines.slice(0, 5);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
