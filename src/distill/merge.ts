/**
 * `fireopt merge`: join the shards of one distill run (`fireopt distill --shard i/n`, one per
 * worker) into one targets folder, identical in its Arrow data to an unsharded run. The shards
 * must be of one dataset, one target and one config and cover every row exactly once; each row
 * is put back at its place in the dataset, which is streamed once beside the shards.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InputError } from '../errors.js';
import { makeManifest, readManifest, writeManifest } from '../formats/manifest.js';
import {
  TARGETS_KIND,
  TARGETS_RERUN_HINT,
  TARGETS_SCHEMA_VERSION,
  readTargetRows,
  type TargetRow,
} from '../formats/targets-schema.js';
import { TRACES_RERUN_HINT, readTraceRows, type TraceSplit } from '../formats/traces-schema.js';
import type { ProgressSink } from '../progress.js';
import { StagedDir, writeFileAtomic } from '../util/atomic.js';
import { sha256File } from '../util/hash.js';
import type { DistillSummary } from './index.js';
import { writeTargetsFile } from './index.js';
import { provenanceDifferences, type TargetsProvenance } from './provenance.js';
import { shardName, shardOf, type ShardSpec } from '../util/shard.js';

/** The parts of a targets manifest that merge reads and writes. */
interface TargetsManifestBody {
  config: unknown;
  inputs: Array<{ split: TraceSplit; path: string; sha256: string }>;
  target: unknown;
  tokenizer: unknown;
  chat_template_sha256: string | null;
  counts: DistillSummary['counts'];
  tokens: DistillSummary['tokens'];
  provenance?: TargetsProvenance;
  shard?: (ShardSpec & { limit: number }) | null;
}

export interface MergeRun {
  /** The shard output folders, in any order. */
  shards: string[];
  out: string;
  /** The ingested dataset the shards were distilled from (default: the folder their manifests name). */
  dataset?: string;
}

export interface MergeSummary {
  out: string;
  shards: number;
  counts: DistillSummary['counts'];
  tokens: DistillSummary['tokens'];
}

interface Shard {
  dir: string;
  manifest: TargetsManifestBody & { shard: ShardSpec & { limit: number }; provenance: TargetsProvenance };
}

/** Merge the shards into `out` (replaced atomically); resolves to the summary once it is in place. */
export async function runMerge(run: MergeRun, deps: { progress: ProgressSink }): Promise<MergeSummary> {
  const shards = readShards(run.shards);
  const first = shards[0];
  const { count, limit } = first.manifest.shard;
  const datasetDir = run.dataset ?? dirname(first.manifest.inputs[0].path);
  for (const input of first.manifest.inputs) {
    const path = join(datasetDir, `${input.split}.arrow`);
    if (!existsSync(path)) {
      throw new InputError(`${path}: not found (the dataset the shards were distilled from)`, datasetHint(first));
    }
    if ((await sha256File(path)) !== input.sha256) {
      throw new InputError(
        `${path}: changed since the shards were distilled from it (sha256 differs)`,
        datasetHint(first),
      );
    }
  }
  const byIndex = [...shards].sort((a, b) => a.manifest.shard.index - b.manifest.shard.index);

  const staged = new StagedDir(run.out);
  try {
    const rowsPerSplit: Record<TraceSplit, number> = { train: 0, heldout: 0 };
    const inputsPerShard = new Array<number>(count).fill(0);
    const total = sum(shards, (s) => s.manifest.counts.input);
    deps.progress({ kind: 'start', task: 'merge', total, unit: 'rows' });
    let done = 0;
    for (const { split } of first.manifest.inputs) {
      const streams = byIndex.map((shard) => new PeekableRows(join(shard.dir, `${split}.arrow`)));
      const ordered: TargetRow[] = [];
      let ordinal = 0;
      for await (const row of readTraceRows(join(datasetDir, `${split}.arrow`))) {
        const index = shardOf(row.id, count);
        inputsPerShard[index]++;
        const stream = streams[index];
        while ((await stream.peek())?.id === row.id) ordered.push((await stream.take()) as TargetRow);
        done++;
        if (done % 1024 === 0) deps.progress({ kind: 'advance', task: 'merge', done, total });
        ordinal++;
        if (limit && ordinal >= limit) break;
      }
      for (const [index, stream] of streams.entries()) {
        const left = await stream.peek();
        if (left) {
          throw new InputError(
            `${stream.path}: row ${left.id} is not in the dataset's ${split} split where shard ` +
              `${shardName({ index, count })} should have it (a shard of other data, or a damaged one)`,
            'HINT: re-run that shard: fireopt distill <dataset> --shard i/n --out <dir>',
          );
        }
      }
      rowsPerSplit[split] = ordered.length;
      await writeTargetsFile(join(staged.path, `${split}.arrow`), ordered);
    }
    deps.progress({ kind: 'end', task: 'merge', done });
    for (const shard of byIndex) {
      const { index } = shard.manifest.shard;
      if (inputsPerShard[index] !== shard.manifest.counts.input) {
        throw new InputError(
          `${shard.dir}: shard ${shardName(shard.manifest.shard)} accounts for ${shard.manifest.counts.input} ` +
            `rows, but the dataset has ${inputsPerShard[index]} in it`,
          'HINT: re-run that shard',
        );
      }
    }

    const counts: DistillSummary['counts'] = {
      input: sum(shards, (s) => s.manifest.counts.input),
      ok: sum(shards, (s) => s.manifest.counts.ok),
      failed: sum(shards, (s) => s.manifest.counts.failed),
      skipped: sum(shards, (s) => s.manifest.counts.skipped),
      resumed: sum(shards, (s) => s.manifest.counts.resumed),
      reused: sum(shards, (s) => s.manifest.counts.reused ?? 0),
      truncated: sum(shards, (s) => s.manifest.counts.truncated),
      rows: rowsPerSplit,
    };
    const tokens: DistillSummary['tokens'] = {
      prompt: sum(shards, (s) => s.manifest.tokens.prompt),
      completion: sum(shards, (s) => s.manifest.tokens.completion),
      truncated: sum(shards, (s) => s.manifest.tokens.truncated),
    };
    const { config, inputs, target, tokenizer, chat_template_sha256, provenance } = first.manifest;
    writeManifest(
      staged.path,
      makeManifest(TARGETS_KIND, TARGETS_SCHEMA_VERSION, {
        config,
        inputs,
        target,
        tokenizer,
        chat_template_sha256,
        counts,
        tokens,
        provenance,
        shard: null,
        merged_from: byIndex.map((shard) => ({ shard: shardName(shard.manifest.shard), path: shard.dir })),
      }),
    );
    const failures = byIndex.flatMap((shard) => {
      const path = join(shard.dir, 'failed.jsonl');
      return existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : [];
    });
    if (failures.length) writeFileAtomic(join(staged.path, 'failed.jsonl'), failures.join('\n') + '\n');
    staged.commit();
    return { out: staged.finalPath, shards: shards.length, counts, tokens };
  } catch (error) {
    staged.abort();
    throw error;
  }
}

/** Read every shard's manifest and check they are the shards of one run, each exactly once. */
function readShards(dirs: string[]): Shard[] {
  if (dirs.length === 0) throw new InputError('merge: no shard folders given');
  const shards = dirs.map((dir): Shard => {
    const manifest = readManifest<TargetsManifestBody>(dir, TARGETS_KIND, TARGETS_SCHEMA_VERSION, TARGETS_RERUN_HINT);
    if (!manifest.shard) {
      throw new InputError(`${dir}: not a shard (written without --shard): it holds every row already`);
    }
    if (!manifest.provenance) {
      throw new InputError(`${dir}: written by an older fireopt (no provenance in its manifest)`, 'HINT: re-run it');
    }
    return { dir, manifest: manifest as Shard['manifest'] };
  });
  const [first, ...rest] = shards;
  const count = first.manifest.shard.count;
  for (const shard of rest) {
    const mismatch = (what: string): InputError =>
      new InputError(`${shard.dir} and ${first.dir} are not shards of one run: ${what}`);
    if (shard.manifest.shard.count !== count) {
      throw mismatch(`split into ${shard.manifest.shard.count} and ${count} shards`);
    }
    if (shard.manifest.shard.limit !== first.manifest.shard.limit) {
      throw mismatch(`distill.limit ${shard.manifest.shard.limit} and ${first.manifest.shard.limit}`);
    }
    const inputs = (s: Shard): string => s.manifest.inputs.map((i) => `${i.split}:${i.sha256}`).join(',');
    if (inputs(shard) !== inputs(first)) throw mismatch('distilled from different datasets (or splits)');
    const differences = provenanceDifferences(first.manifest.provenance, shard.manifest.provenance);
    if (differences.length) throw mismatch(`different target or settings: ${differences.join('; ')}`);
  }
  const byIndex = new Map<number, string[]>();
  for (const shard of shards)
    byIndex.set(shard.manifest.shard.index, [...(byIndex.get(shard.manifest.shard.index) ?? []), shard.dir]);
  const duplicated = [...byIndex.entries()].filter(([, found]) => found.length > 1);
  if (duplicated.length) {
    const [index, found] = duplicated[0];
    throw new InputError(`shard ${shardName({ index, count })} given more than once: ${found.join(', ')}`);
  }
  const missing = Array.from({ length: count }, (_, index) => index).filter((index) => !byIndex.has(index));
  if (missing.length) {
    const names = missing.slice(0, 10).map((index) => shardName({ index, count }));
    throw new InputError(
      `missing shard${missing.length > 1 ? 's' : ''} ${names.join(', ')}${missing.length > 10 ? ', …' : ''} ` +
        `(${shards.length} of ${count} given): every row must be merged exactly once`,
      'HINT: run the missing shards (fireopt distill --shard i/n) or give their folders',
    );
  }
  return shards;
}

function datasetHint(shard: Shard): string {
  return (
    `HINT: give the dataset the shards were distilled from with --dataset ` +
    `(${shard.dir}/manifest.json names ${dirname(shard.manifest.inputs[0].path)}); ${TRACES_RERUN_HINT}`
  );
}

function sum<T>(items: T[], value: (item: T) => number): number {
  return items.reduce((total, item) => total + value(item), 0);
}

/** A targets file's rows, one at a time, with a look at the next one. */
class PeekableRows {
  private readonly rows: AsyncGenerator<TargetRow>;
  private next: IteratorResult<TargetRow> | undefined;

  constructor(readonly path: string) {
    this.rows = readTargetRows(path);
  }

  async peek(): Promise<TargetRow | undefined> {
    this.next ??= await this.rows.next();
    return this.next.done ? undefined : this.next.value;
  }

  async take(): Promise<TargetRow | undefined> {
    const row = await this.peek();
    this.next = undefined;
    return row;
  }
}
