/**
 * The pipeline's bookkeeping: content hashes of files and folders, and one `stage.json` per stage
 * folder recording what went in (the fingerprint: config section plus input hashes), what came out
 * (a hash of the output folder) and how it ended. A stage whose fingerprint and output are unchanged
 * is skipped, which makes an unchanged rerun a no-op and a rerun after a failure resume there.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { InputError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { sha256File } from '../util/hash.js';
import { FIREOPT_VERSION } from '../version.js';

export const STAGE_RECORD_KIND = 'pipeline-stage';
export const STAGE_RECORD_SCHEMA_VERSION = 1;

export type StageStatus = 'done' | 'failed';

/** `<stage folder>/stage.json`. */
export interface StageRecord {
  kind: typeof STAGE_RECORD_KIND;
  schema_version: number;
  fireopt_version: string;
  stage: string;
  status: StageStatus;
  /** sha256 of the stage's inputs: its config and the content hashes of what it reads. */
  fingerprint: string;
  /** What the fingerprint was made of (config and input hashes), for people reading the folder. */
  inputs: Record<string, unknown>;
  /** sha256 of the output folder (null when the stage failed or wrote nothing). */
  output_sha256: string | null;
  started_at: string;
  finished_at: string;
  seconds: number;
  /** The stage's own summary (counts, outcome). */
  summary: Record<string, unknown>;
  error?: { code: string; message: string };
  /** Paths the retention policy deleted after the run. */
  deleted?: string[];
}

/** sha256 of canonical JSON (object keys sorted), so that equal values hash equally. */
export function hashJson(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * Content hash of a file or a folder (every file below it, by relative path and sha256). Files
 * that only describe when or how fast a run went (manifest.json timestamps differ between equal
 * outputs) are hashed too: the hash identifies this output, not an equivalence class.
 */
export async function hashPath(path: string): Promise<string> {
  const stats = statSync(path);
  if (!stats.isDirectory()) return sha256File(path);
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) files.push(full);
    }
  };
  walk(path);
  files.sort();
  const hash = createHash('sha256');
  for (const file of files) hash.update(`${relative(path, file)}\0${await sha256File(file)}\n`);
  return hash.digest('hex');
}

export function stageRecordPath(stageDir: string): string {
  return join(stageDir, 'stage.json');
}

/** The stage's record, or undefined when the stage never ran (or its record is unreadable). */
export function readStageRecord(stageDir: string): StageRecord | undefined {
  const path = stageRecordPath(stageDir);
  if (!existsSync(path)) return undefined;
  let record: StageRecord;
  try {
    record = JSON.parse(readFileSync(path, 'utf8')) as StageRecord;
  } catch {
    return undefined; // a torn record means the stage did not finish: run it again
  }
  if (record.kind !== STAGE_RECORD_KIND)
    throw new InputError(`${path}: not a pipeline stage record (kind ${String(record.kind)})`);
  if (record.schema_version !== STAGE_RECORD_SCHEMA_VERSION) {
    throw new InputError(
      `${path}: stage record schema version ${record.schema_version}, this ` +
        `fireopt reads ${STAGE_RECORD_SCHEMA_VERSION}`,
      'HINT: use a new run directory (run.dir)',
    );
  }
  return record;
}

export function writeStageRecord(
  stageDir: string,
  record: Omit<StageRecord, 'kind' | 'schema_version' | 'fireopt_version'>,
): StageRecord {
  const full: StageRecord = {
    kind: STAGE_RECORD_KIND,
    schema_version: STAGE_RECORD_SCHEMA_VERSION,
    fireopt_version: FIREOPT_VERSION,
    ...record,
  };
  writeFileAtomic(stageRecordPath(stageDir), JSON.stringify(full, null, 2) + '\n');
  return full;
}
