/**
 * Read back any fireopt output folder by its manifest's kind: a traces dataset (ingest), a targets
 * directory (distill) or a draft checkpoint (train): the manifest (kind and version checked), the
 * schema, the counts and the first rows (a draft's "rows" are its tensors).
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  DRAFT_KIND,
  DRAFT_RERUN_HINT,
  DRAFT_SCHEMA_VERSION,
  type DraftManifestBody,
} from '../formats/draft-checkpoint.js';
import { readManifest, type Manifest } from '../formats/manifest.js';
import { readSafetensorsHeader } from '../formats/safetensors.js';
import {
  TARGETS_KIND,
  TARGETS_RERUN_HINT,
  TARGETS_SCHEMA_VERSION,
  readTargetRows,
  targetsColumns,
  type TargetRow,
} from '../formats/targets-schema.js';
import {
  TRACES_KIND,
  TRACES_RERUN_HINT,
  TRACES_SCHEMA_VERSION,
  readTraceRows,
  describeTracesSchema,
  type TraceRow,
} from '../formats/traces-schema.js';
import type { IngestManifest } from './index.js';

/** One column of an Arrow schema, for people. */
export interface SchemaField {
  name: string;
  type: string;
  nullable: boolean;
  doc: string;
}

export interface InspectReport {
  manifest: Manifest<IngestManifest>;
  schema: ReturnType<typeof describeTracesSchema>;
  rows: { train: TraceRow[]; heldout: TraceRow[] };
}

/** A targets row as shown: token arrays as their length and first ids, not thousands of numbers. */
export type ShownTargetRow = Record<string, string | number | { length: number; first: number[] } | null>;

export interface TargetsInspectReport {
  kind: typeof TARGETS_KIND;
  manifest: Manifest<Record<string, unknown>> & { counts?: Record<string, unknown>; tokens?: Record<string, number> };
  schema: SchemaField[];
  rows: { train: ShownTargetRow[]; heldout: ShownTargetRow[] };
}

export interface DraftInspectReport {
  kind: typeof DRAFT_KIND;
  manifest: Manifest<DraftManifestBody>;
  parameters: number;
  tensors: Array<{ name: string; dtype: string; shape: number[] }>;
  files: Array<{ name: string; bytes: number }>;
}

/** What `fireopt inspect` prints: a traces dataset keeps its original shape (kind `traces`). */
export type OutputInspectReport =
  | ({ kind: typeof TRACES_KIND } & InspectReport)
  | TargetsInspectReport
  | DraftInspectReport;

/** The manifest, the schema and the first `rowCount` rows of each split. */
export async function inspectTraces(dir: string, rowCount: number): Promise<InspectReport> {
  const manifest = readManifest<IngestManifest>(dir, TRACES_KIND, TRACES_SCHEMA_VERSION, TRACES_RERUN_HINT);
  const rows = {
    train: await firstRows(readTraceRows(join(dir, manifest.files.train)), rowCount),
    heldout: await firstRows(readTraceRows(join(dir, manifest.files.heldout)), rowCount),
  };
  return { manifest, schema: describeTracesSchema(), rows };
}

/** Inspect any fireopt output folder, by its manifest's kind (no manifest: reported as a missing traces dataset). */
export async function inspectOutput(dir: string, rowCount: number): Promise<OutputInspectReport> {
  const kind = manifestKind(dir);
  if (kind === TARGETS_KIND) return inspectTargets(dir, rowCount);
  if (kind === DRAFT_KIND) return inspectDraft(dir);
  return { kind: TRACES_KIND, ...(await inspectTraces(dir, rowCount)) };
}

function manifestKind(dir: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { kind?: string }).kind;
  } catch {
    return undefined; // inspectTraces reports the missing or unreadable manifest
  }
}

async function inspectTargets(dir: string, rowCount: number): Promise<TargetsInspectReport> {
  const manifest = readManifest<Record<string, unknown>>(dir, TARGETS_KIND, TARGETS_SCHEMA_VERSION, TARGETS_RERUN_HINT);
  const split = async (name: string): Promise<ShownTargetRow[]> => {
    const path = join(dir, `${name}.arrow`);
    return existsSync(path) ? (await firstRows(readTargetRows(path), rowCount)).map(showTargetRow) : [];
  };
  const schema = Object.entries(targetsColumns).map(([name, spec]) => ({
    name,
    type: String(spec.type),
    nullable: spec.nullable,
    doc: spec.doc,
  }));
  return {
    kind: TARGETS_KIND,
    manifest,
    schema,
    rows: { train: await split('train'), heldout: await split('heldout') },
  };
}

const SHOWN_IDS = 16;

function showTargetRow(row: TargetRow): ShownTargetRow {
  const shown: ShownTargetRow = {};
  for (const [name, value] of Object.entries(row) as Array<[string, unknown]>) {
    if (ArrayBuffer.isView(value)) {
      const values = value as unknown as ArrayLike<number>;
      const first = Array.from({ length: Math.min(SHOWN_IDS, values.length) }, (_, i) => values[i]);
      shown[name] = { length: values.length, first };
    } else shown[name] = value as string | number | null;
  }
  return shown;
}

function inspectDraft(dir: string): DraftInspectReport {
  const manifest = readManifest<DraftManifestBody>(dir, DRAFT_KIND, DRAFT_SCHEMA_VERSION, DRAFT_RERUN_HINT);
  const weights = join(dir, 'model.safetensors');
  const header = existsSync(weights) ? readSafetensorsHeader(weights).tensors : [];
  const tensors = header.map(({ name, dtype, shape }) => ({ name, dtype, shape }));
  const parameters = tensors.reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
  const files = readdirSync(dir)
    .sort()
    .map((name) => ({ name, bytes: statSync(join(dir, name)).size }));
  return { kind: DRAFT_KIND, manifest, parameters, tensors, files };
}

async function firstRows<Row>(rows: AsyncGenerator<Row>, count: number): Promise<Row[]> {
  const first: Row[] = [];
  if (count === 0) return first;
  for await (const row of rows) {
    first.push(row);
    if (first.length >= count) break;
  }
  return first;
}
