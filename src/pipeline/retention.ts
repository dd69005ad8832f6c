/**
 * Data retention: after a successful run, delete the customer's raw traces and the intermediate data
 * made from them (the ingested dataset, the distillation targets and distill journal, the training
 * resume state). What serves the deployment stays: drafts, reports, exports and the stage records.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ProgressSink } from '../progress.js';
import type { RetentionConfig } from './config.js';
import { readStageRecord, writeStageRecord } from './records.js';

/** Delete what the retention policy names; returns the paths deleted. */
export function applyRetention(
  runDir: string,
  traceFiles: string[],
  policy: RetentionConfig,
  progress: ProgressSink,
): { deleted: string[] } {
  const deleted: string[] = [];
  const remove = (path: string, stage?: string): void => {
    if (!existsSync(path)) return;
    rmSync(path, { recursive: true, force: true });
    deleted.push(path);
    if (stage) {
      const record = readStageRecord(join(runDir, stage));
      if (record) writeStageRecord(join(runDir, stage), { ...record, deleted: [...(record.deleted ?? []), path] });
    }
  };
  if (policy.delete_traces) for (const file of traceFiles) remove(file);
  if (policy.delete_intermediate) {
    remove(join(runDir, '1-ingest', 'data'), '1-ingest');
    remove(join(runDir, '2-distill', 'data'), '2-distill');
    // distill's resumable journal sits beside its output as `.data.distill-journal`
    for (const entry of existsSync(join(runDir, '2-distill')) ? readdirSync(join(runDir, '2-distill')) : []) {
      if (entry.startsWith('.data')) remove(join(runDir, '2-distill', entry), '2-distill');
    }
    for (const state of trainStates(join(runDir, '4-train', 'data'))) remove(state, '4-train');
  }
  progress({ kind: 'log', level: 'info', message: `retention: deleted ${deleted.length} path(s)` });
  return { deleted };
}

/** The training resume states (`state/` of the run and of every candidate): weights and optimiser moments. */
function trainStates(trainRun: string): string[] {
  const states = [join(trainRun, 'state')];
  const candidates = join(trainRun, 'candidates');
  if (existsSync(candidates)) for (const name of readdirSync(candidates)) states.push(join(candidates, name, 'state'));
  return states;
}
