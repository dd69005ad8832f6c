/**
 * `fireopt ingest`: production traces (five formats, plain or gzip) → a traces dataset directory
 * (`train.arrow`, `heldout.arrow`, `rejected.jsonl`, `manifest.json`), written atomically.
 *
 * One pass, streaming: records are split from the byte stream, parsed, normalised to
 * conversations, optionally redacted, expanded into one sample per assistant turn, deduplicated,
 * assigned a split by a hash of their conversation id, and written as Arrow record batches.
 */
import { renameSync, statSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { extname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import type { FireoptConfig, IngestConfig } from '../config/schema.js';
import { InputError, RunError, UsageError } from '../errors.js';
import { makeManifest, writeManifest } from '../formats/manifest.js';
import { TRACES_KIND, TRACES_SCHEMA_VERSION, describeTracesSchema } from '../formats/traces-schema.js';
import { silentProgress, type ProgressSink } from '../progress.js';
import { StagedDir } from '../util/atomic.js';
import { shardOf, type ShardSpec } from '../util/shard.js';
import { BatchInputIndex } from './batch-inputs.js';
import { SampleHashSet } from './dedup.js';
import { ParsePool, packBlock, parseWorkersAvailable } from './parse-pool.js';
import { DEDUP_KEY_BYTES, RecordProcessor, type ProcessedBlock } from './process.js';
import { detectFormat, type DetectedFormat, type RecordFormat } from './records.js';
import { REDACTION_KINDS, emptyRedactionCounts, type RedactionCounts } from './redact.js';
import { describeOffenders, RejectLog, type Offender } from './rejects.js';
import {
  ChunkPool,
  FAILED_RECORD,
  STDIN_NAME,
  openSource,
  recordAt,
  resolveInputs,
  splitRecordBlocks,
  splitRecords,
  type Container,
} from './sources.js';
import { TracesFileWriter } from './writer.js';

export { readTraceRows } from '../formats/traces-schema.js';

/** What runIngest needs besides the config: where progress goes, stdin for `-`, and cancellation. */
export interface IngestDeps {
  progress?: ProgressSink;
  stdin?: Readable;
  signal?: AbortSignal;
  /**
   * Parse worker threads (0: parse on the main thread); default: `defaultWorkers`. The output is the same either way.
   */
  workers?: number;
  /** Ingest only the trace files whose path hashes to this shard; `fireopt merge` joins the shards. */
  shard?: ShardSpec;
}

const PARALLEL_MIN_BYTES = 16e6;
const MAX_DEFAULT_WORKERS = 2;
/** Workers are started when at least this much of a CPU is idle besides this process's own load. */
const MIN_IDLE_CPUS = 0.5;

/** What the default number of parse workers depends on. */
export interface MachineLoad {
  inputBytes: number;
  cpus: number;
  /** CPUs idle right now, besides this process's own use (see idleCpusSince). */
  idleCpus: number;
}

/**
 * Parse workers, with the main thread parsing too whenever every worker has blocks waiting, use
 * the CPUs the main thread's own work (reading, hashing the input, dedup, writing) leaves idle:
 * on two CPUs one worker cuts ingest's wall time by ~40% (1 GB: 6.3 → 3.7 s, bench/RESULTS.md)
 * for ~6% more CPU time in all (a second JIT-compiled copy of the parse code, packing blocks for
 * the main thread); a second worker there only adds CPU time. On a machine whose other work
 * already fills the CPUs (measured: load 2–5 on 2 CPUs), extra CPU time is not recovered and one
 * thread finishes first, so workers are started only while at least half a CPU is idle. Small
 * inputs (< 16 MB) stay on one thread: starting a worker takes ~50 ms.
 */
export function workersFor(machine: MachineLoad): number {
  if (machine.inputBytes < PARALLEL_MIN_BYTES || machine.cpus < 2) return 0;
  return machine.idleCpus >= MIN_IDLE_CPUS ? Math.min(MAX_DEFAULT_WORKERS, machine.cpus - 1) : 0;
}

/** CPU time counters now: all CPUs' busy and total milliseconds, this process's CPU milliseconds, the clock. */
interface CpuSnapshot {
  busyMs: number;
  ownMs: number;
  atMs: number;
}

function cpuSnapshot(): CpuSnapshot {
  let busyMs = 0;
  for (const { times } of cpus()) busyMs += times.user + times.nice + times.sys + times.irq;
  const { user, system } = process.cpuUsage();
  return { busyMs, ownMs: (user + system) / 1000, atMs: performance.now() };
}

/**
 * CPUs left idle by other processes since `since` (at least `minWindowMs` ago: the kernel's counters
 * tick every 10 ms), from the per-CPU time counters (os.cpus()) less this process's own CPU time.
 * A direct reading, unlike the 1-minute load average, which still counts work that has just ended
 * (such as the previous step of a script); taken over ingest's own start-up, it costs no waiting
 * when the start-up is long enough.
 */
export async function idleCpusSince(since: CpuSnapshot, minWindowMs = 60): Promise<number> {
  const waitMs = minWindowMs - (performance.now() - since.atMs);
  if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
  const now = cpuSnapshot();
  const elapsedMs = now.atMs - since.atMs;
  const othersBusy = Math.max(0, now.busyMs - since.busyMs - (now.ownMs - since.ownMs));
  return Math.max(0, availableParallelism() - othersBusy / elapsedMs);
}

/** CPUs idle over the next `windowMs` (idleCpusSince from now). */
export async function idleCpusNow(windowMs = 100): Promise<number> {
  return idleCpusSince(cpuSnapshot(), windowMs);
}

/** `workersFor` this machine now (0 where workers cannot start: under vitest, which runs the TypeScript sources). */
async function defaultWorkers(inputBytes: number, since: CpuSnapshot): Promise<number> {
  if (!parseWorkersAvailable() || inputBytes < PARALLEL_MIN_BYTES) return 0;
  return workersFor({ inputBytes, cpus: availableParallelism(), idleCpus: await idleCpusSince(since) });
}

/** Per input file, as recorded in the manifest. */
export interface IngestInput {
  path: string;
  bytes: number;
  sha256: string;
  gzip: boolean;
  role: 'traces' | 'batch-input';
  container: Container | 'text' | null;
  format: DetectedFormat | null;
  records: number;
  samples: number;
  rejected: number;
}

export interface IngestSummary {
  out: string;
  rows: { train: number; heldout: number; total: number };
  rows_by_format: Partial<Record<RecordFormat, number>>;
  records: number;
  samples_before_dedup: number;
  duplicates_removed: number;
  rejected: { count: number; fraction: number; limit: number; by_reason: Record<string, number>; worst: Offender[] };
  redactions: RedactionCounts | null;
  inputs: IngestInput[];
  input_bytes: number;
  elapsed_s: number;
  mb_per_s: number;
  /** Parse worker threads used (0: all on the main thread). */
  parse_workers: number;
}

export type IngestManifest = Omit<IngestSummary, 'out' | 'elapsed_s' | 'mb_per_s' | 'parse_workers'> & {
  config: FireoptConfig;
  split: { method: string; heldout: number; salt: string };
  files: { train: string; heldout: string; rejected: string };
  schema: ReturnType<typeof describeTracesSchema>;
  /** `ingest --shard`: this shard, and every trace file of the unsharded run in its reading order. */
  shard: (ShardSpec & { files: string[] }) | null;
};

const PROGRESS_INTERVAL_MS = 250;

/** Run ingest with a resolved config (`config.ingest.inputs` and `config.ingest.out` must be set). */
export async function runIngest(config: FireoptConfig, deps: IngestDeps = {}): Promise<IngestSummary> {
  const settings = config.ingest;
  const progress = deps.progress ?? silentProgress;
  if (settings.inputs.length === 0)
    throw new UsageError('ingest: no input files', 'HINT: fireopt ingest <files...> --out <dir>');
  if (!settings.out) throw new UsageError('ingest: no output directory', 'HINT: pass --out <dir> (or set ingest.out)');
  const outDir = resolve(settings.out);
  const startedMs = Date.now();
  const cpuAtStart = cpuSnapshot(); // for the default number of parse workers

  const traceFiles = await resolveInputs(settings.inputs);
  const batchInputFiles = await resolveInputs(settings.batch_inputs);
  if (settings.format === 'auto' || settings.format === 'openai-batch') {
    // Batch input files given among the inputs are recognised by their first record and joined, not ingested.
    for (const file of [...traceFiles]) {
      if (
        file !== STDIN_NAME &&
        !batchInputFiles.includes(file) &&
        (await peekFormat(file, settings.max_line_bytes)) === 'openai-batch-input'
      ) {
        batchInputFiles.push(file);
        traceFiles.splice(traceFiles.indexOf(file), 1);
      }
    }
  }
  if (traceFiles.length === 0)
    throw new UsageError('ingest: only batch input files were given', 'HINT: add the batch output files too');
  // A shard takes whole files (by the hash of each path): the files of every shard, in order, are
  // recorded so that merge can put them back in the order one unsharded run reads them.
  const allTraceFiles = [...traceFiles];
  if (deps.shard) {
    if (traceFiles.includes(STDIN_NAME)) throw new UsageError('ingest: --shard takes files, not stdin (`-`)');
    const { index, count } = deps.shard;
    traceFiles.splice(0, traceFiles.length, ...traceFiles.filter((file) => shardOf(file, count) === index));
  }
  const emptyShard = deps.shard !== undefined && traceFiles.length === 0;
  if (traceFiles.filter((f) => f === STDIN_NAME).length + batchInputFiles.filter((f) => f === STDIN_NAME).length > 1) {
    throw new UsageError('ingest: `-` (stdin) can be given only once');
  }

  const staged = new StagedDir(outDir);
  try {
    const inputs: IngestInput[] = [];
    const batchIndex = new BatchInputIndex();
    for (const file of batchInputFiles) {
      const stats = await batchIndex.addFile(file, deps.stdin, settings.max_line_bytes);
      inputs.push({
        path: file,
        ...stats,
        gzip: false,
        role: 'batch-input',
        container: 'lines',
        format: 'openai-batch-input',
        records: 0,
        samples: 0,
        rejected: 0,
      });
    }

    const totalBytes = traceFiles.reduce((sum, f) => sum + (f === STDIN_NAME ? 0 : statSync(f).size), 0);
    const workers = deps.workers ?? (await defaultWorkers(totalBytes, cpuAtStart));
    const chunks = new ChunkPool();
    const pool = workers > 0 ? new ParsePool(workers, chunks) : undefined;
    let run: IngestRun | undefined;
    try {
      run = new IngestRun(settings, staged.path, batchIndex, progress, deps.signal, chunks, pool, totalBytes);
      progress({ kind: 'start', task: 'ingest', unit: 'MB', total: totalBytes ? roundMb(totalBytes) : undefined });
      for (const file of traceFiles) inputs.push(await run.ingestFile(file, deps.stdin));
      await run.finish();
    } catch (error) {
      run?.abandon();
      throw error;
    } finally {
      await pool?.close();
    }
    progress({ kind: 'end', task: 'ingest', done: roundMb(run.bytesRead) });

    const limit = settings.max_rejected;
    const fraction = run.records ? run.rejects.count / run.records : 0;
    const worst = run.rejects.worstOffenders();
    const rejected = { count: run.rejects.count, fraction, limit, by_reason: run.rejects.countsByCode(), worst };
    if (run.records === 0 && !emptyShard) {
      throw new InputError(
        `ingest: no records in ${traceFiles.join(', ')}`,
        'HINT: the inputs are empty or hold only blank lines',
      );
    }
    const over = limit >= 1 ? run.rejects.count > limit : fraction > limit;
    if (over) {
      const kept = `${outDir}.rejected.jsonl`;
      renameSync(join(staged.path, 'rejected.jsonl'), kept);
      throw new RunError(
        `ingest: ${run.rejects.count} of ${run.records} records rejected (${(fraction * 100).toFixed(1)}%), ` +
          `above --max-rejected ${limit}; no dataset written\n` +
          describeOffenders(worst.slice(0, 5))
            .map((line) => `  ${line}`)
            .join('\n'),
        `HINT: every rejected line is listed in ${kept}`,
        'E_TOO_MANY_REJECTED',
      );
    }
    if (run.train.rowCount + run.heldout.rowCount === 0 && !emptyShard) {
      throw new RunError('ingest: no samples were produced', 'HINT: see the rejected records above');
    }

    const summaryBody = {
      rows: {
        train: run.train.rowCount,
        heldout: run.heldout.rowCount,
        total: run.train.rowCount + run.heldout.rowCount,
      },
      rows_by_format: run.rowsByFormat,
      records: run.records,
      samples_before_dedup: run.samplesBeforeDedup,
      duplicates_removed: run.duplicates,
      rejected,
      redactions: settings.redact ? run.redactions : null,
      inputs,
      input_bytes: inputs.reduce((sum, input) => sum + input.bytes, 0),
    };
    const manifest = makeManifest<Omit<IngestManifest, keyof typeof summaryBody> & typeof summaryBody>(
      TRACES_KIND,
      TRACES_SCHEMA_VERSION,
      {
        config,
        split: {
          method: 'sha256(salt, 0x00, conversation_id): first 4 bytes / 2^32 < heldout',
          heldout: settings.heldout,
          salt: settings.split_salt,
        },
        files: { train: 'train.arrow', heldout: 'heldout.arrow', rejected: 'rejected.jsonl' },
        schema: describeTracesSchema(),
        shard: deps.shard ? { ...deps.shard, files: allTraceFiles } : null,
        ...summaryBody,
      },
    );
    writeManifest(staged.path, manifest);
    staged.commit();
    const elapsedSec = (Date.now() - startedMs) / 1000;
    return {
      out: outDir,
      ...summaryBody,
      elapsed_s: elapsedSec,
      mb_per_s: run.bytesRead / 1e6 / Math.max(elapsedSec, 1e-3),
      parse_workers: workers,
    };
  } catch (error) {
    staged.abort();
    throw error;
  }
}

/** The state of one ingest pass over all trace files. */
class IngestRun {
  readonly train: TracesFileWriter;
  readonly heldout: TracesFileWriter;
  readonly rejects: RejectLog;
  readonly redactions = emptyRedactionCounts();
  readonly rowsByFormat: Partial<Record<RecordFormat, number>> = {};
  private readonly seen: SampleHashSet;
  records = 0;
  samplesBeforeDedup = 0;
  duplicates = 0;
  bytesRead = 0;
  private lastProgressMs = 0;

  constructor(
    private readonly settings: IngestConfig,
    dir: string,
    private readonly batchIndex: BatchInputIndex,
    private readonly progress: ProgressSink,
    private readonly signal: AbortSignal | undefined,
    private readonly chunks: ChunkPool,
    private readonly pool: ParsePool | undefined,
    inputBytes: number,
  ) {
    this.train = new TracesFileWriter(join(dir, 'train.arrow'), settings.batch_rows);
    this.heldout = new TracesFileWriter(join(dir, 'heldout.arrow'), settings.batch_rows);
    this.rejects = new RejectLog(join(dir, 'rejected.jsonl'));
    // About one sample per KiB of traces (chat logs; prompt lists have more, long conversations fewer).
    this.seen = new SampleHashSet(inputBytes / 1024);
  }

  /**
   * Records are processed in blocks (one per read chunk), in order: on this thread until the file's
   * format is known (it is detected from the first JSON record), then, for JSON Lines in a format
   * that needs no main-thread state, by the parse pool, and by this thread too while every worker
   * has blocks waiting (reading, hashing the file, dedup and writing leave it part of a CPU).
   * Either way the blocks are consumed in input order, so the output does not depend on where
   * they were processed.
   */
  async ingestFile(file: string, stdin: Readable | undefined): Promise<IngestInput> {
    const source = openSource(
      file,
      stdin,
      (n) => {
        this.bytesRead += n;
      },
      this.chunks,
    );
    const input: IngestInput = {
      path: file,
      bytes: 0,
      sha256: '',
      gzip: false,
      role: 'traces',
      container: null,
      format: this.settings.format === 'auto' ? null : this.settings.format,
      records: 0,
      samples: 0,
      rejected: 0,
    };
    const settings = this.settings;
    const lookup = (customId: string) => this.batchIndex.lookup(customId);
    const processor = new RecordProcessor(
      {
        file,
        format: input.format,
        text: false,
        redact: settings.redact,
        salt: settings.split_salt,
        heldout: settings.heldout,
      },
      lookup,
    );
    const textPrompts = isTextFile(file);
    let firstRecord = true;
    // Blocks in input order; at most `maxInFlight` wait, which bounds memory (backpressure on reading).
    const queue: QueuedBlock[] = [];
    const maxInFlight = this.pool ? 3 * this.pool.size + 1 : 0;
    const consumeOldest = async (): Promise<void> => {
      const next = queue.shift();
      if (!next) return;
      const block = await next.block;
      await this.consume(block, input);
      next.release(block);
    };
    // Processors for blocks of a pooled file that this thread parses itself while every worker is
    // busy; each holds its block (as views) until it is consumed, so none is copied.
    const idle: RecordProcessor[] = [];
    try {
      for await (const entries of splitRecordBlocks(source.chunks, settings.max_line_bytes, (container) => {
        input.container = container;
      })) {
        this.signal?.throwIfAborted();
        const count = Array.isArray(entries) ? entries.length : entries.count;
        let next = 0;
        let failure = 0; // index into a line block's failures
        // The first record is always read here: it decides a text file's layout and, in auto mode, the format.
        if (firstRecord) {
          const record = Array.isArray(entries) ? entries[0] : recordAt(entries, 0, 0);
          if (!Array.isArray(entries) && entries.starts[0] === FAILED_RECORD) failure++;
          next = 1;
          firstRecord = false;
          // A prompts-only text file: by extension, or by --format prompts with a first line that is not JSON.
          const looksJson = record.ok && /^\s*[{["]/.test(record.text);
          if (input.container === 'lines' && (textPrompts || (processor.settings.format === 'prompts' && !looksJson))) {
            input.container = 'text';
            processor.settings.format = 'prompts';
            processor.settings.text = true;
          }
          processor.add(record);
        }
        const pooled = this.pool && !Array.isArray(entries) && pooledFormat(processor.settings.format);
        if (!pooled && next < count) {
          if (Array.isArray(entries)) for (; next < count; next++) processor.add(entries[next]);
          else processor.addLines(entries, next, count, failure);
          next = count;
        }
        input.format = processor.settings.format;
        if (next > 0) {
          // Rows encoded here are views onto the processor's memory: consume them at once (after the blocks before
          // them).
          while (queue.length) await consumeOldest();
          await this.consume(processor.view(), input);
          processor.reset();
        }
        if (next < count && this.pool && !Array.isArray(entries)) {
          if (this.pool.busy()) {
            const local = idle.pop() ?? new RecordProcessor({ ...processor.settings }, lookup);
            local.addLines(entries, next, count, failure);
            const release = (): void => {
              local.reset();
              idle.push(local);
            };
            queue.push({ block: Promise.resolve(local.view()), release });
          } else {
            const pool = this.pool;
            const block = pool.submit(packBlock(processor.settings, entries, next, source.chunksOwned(), this.chunks));
            block.catch(() => {}); // observed when consumed; this keeps an abandoned queue from being unhandled
            queue.push({ block, release: (consumed) => pool.giveBack(consumed) });
          }
        }
        input.records += count;
        this.records += count;
        while (queue.length > maxInFlight) await consumeOldest();
        this.reportProgress();
      }
      while (queue.length) await consumeOldest();
    } finally {
      input.format = processor.settings.format;
    }
    Object.assign(input, source.stats());
    return input;
  }

  /** Take a processed block: log its rejects, drop duplicate samples, append the rest to their split's file. */
  private async consume(block: ProcessedBlock, input: IngestInput): Promise<void> {
    for (const reject of block.rejects) {
      input.rejected++;
      await this.rejects.add(reject);
    }
    for (const kind of REDACTION_KINDS) this.redactions[kind] += block.redactions[kind];
    if (block.samples === 0) return;
    const format = input.format as RecordFormat;
    // Rows of one split are appended in runs of consecutive kept rows, each run copied in one go.
    const next = [0, 0]; // next row index in block.train, block.heldout
    const runStart = [0, 0];
    const appendRun = (heldout: number): void => {
      const rows = heldout ? block.heldout : block.train;
      (heldout ? this.heldout : this.train).addRows(rows, runStart[heldout], next[heldout]);
    };
    let kept = 0;
    for (let i = 0; i < block.samples; i++) {
      const heldout = block.sampleHeldout[i];
      const row = next[heldout]++;
      this.samplesBeforeDedup++;
      if (this.settings.dedup && !this.seen.add(block.sampleKeys, i * DEDUP_KEY_BYTES)) {
        this.duplicates++;
        next[heldout] = row;
        appendRun(heldout);
        next[heldout] = row + 1;
        runStart[heldout] = row + 1;
        continue;
      }
      kept++;
    }
    appendRun(0);
    appendRun(1);
    input.samples += kept;
    this.rowsByFormat[format] = (this.rowsByFormat[format] ?? 0) + kept;
  }

  private reportProgress(): void {
    const now = Date.now();
    if (now - this.lastProgressMs < PROGRESS_INTERVAL_MS) return;
    this.lastProgressMs = now;
    this.progress({
      kind: 'advance',
      task: 'ingest',
      done: roundMb(this.bytesRead),
      fields: { rows: this.train.rowCount + this.heldout.rowCount, rejected: this.rejects.count },
    });
  }

  async finish(): Promise<void> {
    this.train.close();
    this.heldout.close();
    await this.rejects.close();
  }

  /** Close the output files of a failed run (its staging directory is removed). */
  abandon(): void {
    this.train.abandon();
    this.heldout.abandon();
  }
}

/** A block waiting to be consumed, and what to do with its memory afterwards. */
interface QueuedBlock {
  block: Promise<ProcessedBlock>;
  release(block: ProcessedBlock): void;
}

/** Formats the parse workers read: any known one but Batch API output, which needs the batch input index. */
function pooledFormat(format: DetectedFormat | null): boolean {
  return format !== null && format !== 'openai-batch' && format !== 'openai-batch-input';
}

function roundMb(bytes: number): number {
  return Math.round(bytes / 1e5) / 10;
}

function isTextFile(file: string): boolean {
  const name = file.endsWith('.gz') ? file.slice(0, -3) : file;
  return extname(name).toLowerCase() === '.txt';
}

/** The format of a file's first JSON record (reads only the start of the file). */
async function peekFormat(file: string, maxLineBytes: number): Promise<DetectedFormat | undefined> {
  const source = openSource(file, undefined, () => {});
  for await (const records of splitRecords(source.chunks, maxLineBytes, () => {})) {
    for (const record of records) {
      if (!record.ok) continue;
      try {
        return detectFormat(JSON.parse(record.text));
      } catch {
        return undefined; // not JSON: the main pass reports it
      }
    }
  }
  return undefined;
}
