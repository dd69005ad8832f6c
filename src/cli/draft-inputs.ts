/**
 * What a draft checkpoint remembers about its training inputs (`training.targets` and
 * `training.target_model` in its manifest, absolute paths), so that `eval` and `export` can
 * default to them as users of HF's `_name_or_path` expect: train on it, then evaluate it with no
 * more flags.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  DRAFT_KIND,
  DRAFT_RERUN_HINT,
  DRAFT_SCHEMA_VERSION,
  type DraftManifestBody,
} from '../formats/draft-checkpoint.js';
import { readManifest } from '../formats/manifest.js';

export interface RecordedDraftInputs {
  /** The targets directory the draft was trained on, as recorded (it may no longer exist). */
  targets?: string;
  /** The target model file or folder the draft was trained for, as recorded (it may no longer exist). */
  targetModel?: string;
  /** The manifest the paths come from, for messages. */
  manifestPath: string;
}

/** The training inputs a draft directory records, or undefined when `model` is not a draft directory. */
export function recordedDraftInputs(model: string): RecordedDraftInputs | undefined {
  const manifestPath = join(model, 'manifest.json');
  if (!existsSync(manifestPath)) return undefined; // prompt-lookup, suffix, or a path the stage will reject
  const manifest = readManifest<DraftManifestBody>(model, DRAFT_KIND, DRAFT_SCHEMA_VERSION, DRAFT_RERUN_HINT);
  const text = (value: unknown): string | undefined => (typeof value === 'string' && value ? value : undefined);
  return { targets: text(manifest.training.targets), targetModel: text(manifest.training.target_model), manifestPath };
}
