/**
 * `fireopt merge` of `fireopt ingest --shard i/n` outputs: the shards' rows are put back in the
 * order one unsharded ingest reads the files (each shard records that order), and duplicates across
 * shards are removed as one run would: a sample that several files hold is kept from the first file.
 * (Within a shard, ingest removed them already.) Rows are copied as Arrow slices, never re-encoded.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tableFromIPC, type RecordBatch } from 'apache-arrow';
import { InputError } from '../errors.js';
import { makeManifest, readManifest, writeManifest, type Manifest } from '../formats/manifest.js';
import { checkArrowFile } from '../formats/arrow-read.js';
import { TRACES_KIND, TRACES_RERUN_HINT, TRACES_SCHEMA_VERSION, type TraceSplit } from '../formats/traces-schema.js';
import type { ProgressSink } from '../progress.js';
import { StagedDir, writeFileAtomic } from '../util/atomic.js';
import { shardName, shardOf } from '../util/shard.js';
import { TracesFileWriter } from './writer.js';
import type { IngestManifest } from './index.js';

export interface TracesMergeSummary {
  out: string;
  shards: number;
  rows: { train: number; heldout: number; total: number };
  /** Duplicates removed across shards (each shard removed its own already). */
  duplicates_across_shards: number;
}

interface Shard {
  dir: string;
  manifest: Manifest<IngestManifest> & { shard: NonNullable<IngestManifest['shard']> };
}

const SPLITS: TraceSplit[] = ['train', 'heldout'];

/** Merge ingest shards into the dataset `out` (replaced atomically). */
export async function runMergeTraces(
  run: { shards: string[]; out: string },
  deps: { progress: ProgressSink },
): Promise<TracesMergeSummary> {
  const shards = readShards(run.shards);
  const { files, count } = shards[0].manifest.shard;
  const fileIndex = new Map(files.map((file, index) => [file, index]));
  const byIndex = new Map(shards.map((shard) => [shard.manifest.shard.index, shard]));
  const tables = new Map<string, RecordBatch[]>();
  const batchesOf = (shard: Shard, split: TraceSplit): RecordBatch[] => {
    const path = join(shard.dir, `${split}.arrow`);
    let batches = tables.get(path);
    if (!batches) {
      checkArrowFile(path, TRACES_RERUN_HINT);
      // A shard with no rows in a split holds an empty batch (the schema's): it has no rows to place.
      batches = tableFromIPC(readFileSync(path)).batches.filter((batch) => batch.numRows > 0);
      tables.set(path, batches);
    }
    return batches;
  };

  // Pass 1: the first file (in reading order) that holds each sample id.
  const dedup = shards[0].manifest.config.ingest.dedup;
  const firstFile = new Map<string, number>();
  if (dedup) {
    for (const shard of shards) {
      for (const split of SPLITS) {
        for (const batch of batchesOf(shard, split)) {
          const ids = batch.getChild('id');
          const sources = batch.getChild('source_file');
          for (let r = 0; r < batch.numRows; r++) {
            const id = String(ids?.get(r));
            const file = fileIndex.get(String(sources?.get(r))) ?? -1;
            if (file < 0) throw new InputError(`${shard.dir}: a row from ${sources?.get(r)}, a file no shard lists`);
            const seen = firstFile.get(id);
            if (seen === undefined || file < seen) firstFile.set(id, file);
          }
        }
      }
    }
  }

  const staged = new StagedDir(run.out);
  let writer: TracesFileWriter | undefined; // the split file being written, closed before an abort
  try {
    const rows: Record<TraceSplit, number> = { train: 0, heldout: 0 };
    let removed = 0;
    for (const split of SPLITS) {
      // Pass 2: each file's rows from the shard that read it, files in reading order. A file's rows are
      // consecutive in its shard (a shard reads its files one after another), so a cursor per shard suffices.
      const out = new TracesFileWriter(join(staged.path, `${split}.arrow`), 1); // batches as given
      writer = out;
      const cursors = new Map(shards.map((shard) => [shard.manifest.shard.index, { batch: 0, row: 0 }]));
      for (const [index, file] of files.entries()) {
        const shardIndex = shardOf(file, count);
        const shard = byIndex.get(shardIndex) as Shard;
        const batches = batchesOf(shard, split);
        const cursor = cursors.get(shardIndex) as { batch: number; row: number };
        while (cursor.batch < batches.length) {
          const batch = batches[cursor.batch];
          const sources = batch.getChild('source_file');
          const ids = batch.getChild('id');
          let start = cursor.row;
          let end = start;
          // The run of this file's rows in this batch, cut where a duplicate from an earlier file is left out.
          for (; end < batch.numRows && String(sources?.get(end)) === file; end++) {
            if (dedup && firstFile.get(String(ids?.get(end))) !== index) {
              if (end > start) out.addBatch(batch.slice(start, end));
              rows[split] += end - start;
              removed++;
              start = end + 1;
            }
          }
          if (end > start) out.addBatch(batch.slice(start, end));
          rows[split] += end - start;
          cursor.row = end;
          if (end < batch.numRows) break; // the next file's rows start here
          cursor.batch++;
          cursor.row = 0;
        }
      }
      for (const [shardIndex, cursor] of cursors) {
        const batches = batchesOf(byIndex.get(shardIndex) as Shard, split);
        if (cursor.batch < batches.length) {
          const left = batches[cursor.batch].getChild('source_file')?.get(cursor.row);
          throw new InputError(
            `${(byIndex.get(shardIndex) as Shard).dir}/${split}.arrow: rows of ${left} out of the order of its files`,
            'HINT: re-run that shard with fireopt ingest --shard',
          );
        }
      }
      out.close();
      writer = undefined;
    }
    deps.progress({ kind: 'log', level: 'info', message: `merged ${shards.length} ingest shards` });

    const sum = (value: (shard: Shard) => number): number => shards.reduce((total, s) => total + value(s), 0);
    const first = shards[0].manifest;
    const rejectedCount = sum((s) => s.manifest.rejected.count);
    const records = sum((s) => s.manifest.records);
    const byReason: Record<string, number> = {};
    for (const shard of shards)
      for (const [code, n] of Object.entries(shard.manifest.rejected.by_reason))
        byReason[code] = (byReason[code] ?? 0) + n;
    const traceInputs = shards
      .flatMap((s) => s.manifest.inputs.filter((input) => input.role === 'traces'))
      .sort((a, b) => (fileIndex.get(a.path) ?? 0) - (fileIndex.get(b.path) ?? 0));
    const batchInputs = first.inputs.filter((input) => input.role === 'batch-input');
    const inputs = [...batchInputs, ...traceInputs];
    const total = rows.train + rows.heldout;
    const { shard: _shard, kind: _k, schema_version: _v, fireopt_version: _f, created_at: _c, ...body } = first;
    writeManifest(
      staged.path,
      makeManifest(TRACES_KIND, TRACES_SCHEMA_VERSION, {
        ...body,
        rows: { ...rows, total },
        // By format before the cross-shard dedup: a duplicate's format is that of the row kept.
        rows_by_format: sumRecords(shards.map((s) => s.manifest.rows_by_format)),
        records,
        samples_before_dedup: sum((s) => s.manifest.samples_before_dedup),
        duplicates_removed: sum((s) => s.manifest.duplicates_removed) + removed,
        rejected: {
          ...first.rejected,
          count: rejectedCount,
          fraction: records ? rejectedCount / records : 0,
          by_reason: byReason,
          worst: shards
            .flatMap((s) => s.manifest.rejected.worst)
            .sort((a, b) => b.count - a.count)
            .slice(0, 10),
        },
        redactions: first.redactions && sumRecords(shards.map((s) => s.manifest.redactions ?? {})),
        inputs,
        input_bytes: inputs.reduce((bytes, input) => bytes + input.bytes, 0),
        shard: null,
        merged_from: [...byIndex.entries()].sort(([a], [b]) => a - b).map(([, s]) => s.dir),
      }),
    );
    const rejected = shards
      .map((s) => join(s.dir, 'rejected.jsonl'))
      .filter((path) => existsSync(path))
      .map((path) => readFileSync(path, 'utf8'))
      .join('');
    writeFileAtomic(join(staged.path, 'rejected.jsonl'), rejected);
    staged.commit();
    return {
      out: staged.finalPath,
      shards: shards.length,
      rows: { ...rows, total },
      duplicates_across_shards: removed,
    };
  } catch (error) {
    writer?.abandon();
    staged.abort();
    throw error;
  }
}

function sumRecords<T extends object>(records: T[]): T {
  const total: Record<string, number> = {};
  for (const record of records)
    for (const [key, n] of Object.entries(record)) if (typeof n === 'number') total[key] = (total[key] ?? 0) + n;
  return total as T;
}

/** Read the shards' manifests and check they are the shards of one ingest run, each exactly once. */
function readShards(dirs: string[]): Shard[] {
  const shards = dirs.map((dir): Shard => {
    const manifest = readManifest<IngestManifest>(dir, TRACES_KIND, TRACES_SCHEMA_VERSION, TRACES_RERUN_HINT);
    if (!manifest.shard) throw new InputError(`${dir}: not a shard (ingested without --shard)`);
    return { dir, manifest: manifest as Shard['manifest'] };
  });
  const [first, ...rest] = shards;
  const { count, files } = first.manifest.shard;
  const settings = (s: Shard): string => {
    const { inputs: _i, out: _o, ...ingest } = s.manifest.config.ingest;
    return JSON.stringify(ingest);
  };
  for (const shard of rest) {
    const mismatch = (what: string): InputError =>
      new InputError(`${shard.dir} and ${first.dir} are not shards of one ingest run: ${what}`);
    if (shard.manifest.shard.count !== count) throw mismatch(`split into ${shard.manifest.shard.count} and ${count}`);
    if (JSON.stringify(shard.manifest.shard.files) !== JSON.stringify(files)) throw mismatch('different trace files');
    if (settings(shard) !== settings(first)) throw mismatch('different ingest settings');
  }
  const seen = new Map<number, string>();
  for (const shard of shards) {
    const earlier = seen.get(shard.manifest.shard.index);
    if (earlier) {
      throw new InputError(
        `shard ${shardName({ index: shard.manifest.shard.index, count })} given ` +
          `more than once: ${earlier}, ${shard.dir}`,
      );
    }
    seen.set(shard.manifest.shard.index, shard.dir);
  }
  const missing = Array.from({ length: count }, (_, index) => index).filter((index) => !seen.has(index));
  if (missing.length) {
    const names = missing.slice(0, 10).map((index) => shardName({ index, count }));
    throw new InputError(
      `missing shard${missing.length > 1 ? 's' : ''} ${names.join(', ')} (${shards.length} of ${count} given): ` +
        'every file must be merged exactly once',
      'HINT: run the missing shards (fireopt ingest --shard i/n) or give their folders',
    );
  }
  return shards;
}
