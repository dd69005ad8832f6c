/** Read back a traces dataset: its manifest (kind and version checked), Arrow schema and first rows. */
import { join } from 'node:path';
import { readManifest, type Manifest } from '../formats/manifest.js';
import {
  TRACES_KIND,
  TRACES_RERUN_HINT,
  TRACES_SCHEMA_VERSION,
  readTraceRows,
  describeTracesSchema,
  type TraceRow,
} from '../formats/traces-schema.js';
import type { IngestManifest } from './index.js';

export interface InspectReport {
  manifest: Manifest<IngestManifest>;
  schema: ReturnType<typeof describeTracesSchema>;
  rows: { train: TraceRow[]; heldout: TraceRow[] };
}

/** The manifest, the schema and the first `rowCount` rows of each split. */
export async function inspectTraces(dir: string, rowCount: number): Promise<InspectReport> {
  const manifest = readManifest<IngestManifest>(dir, TRACES_KIND, TRACES_SCHEMA_VERSION, TRACES_RERUN_HINT);
  const rows = { train: await firstRows(join(dir, manifest.files.train), rowCount), heldout: await firstRows(join(dir, manifest.files.heldout), rowCount) };
  return { manifest, schema: describeTracesSchema(), rows };
}

async function firstRows(path: string, count: number): Promise<TraceRow[]> {
  const rows: TraceRow[] = [];
  if (count === 0) return rows;
  for await (const row of readTraceRows(path)) {
    rows.push(row);
    if (rows.length >= count) break;
  }
  return rows;
}
