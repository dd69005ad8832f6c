/**
 * `fireopt ingest`: production traces (five formats, plain or gzip) → a traces dataset directory
 * (`train.arrow`, `heldout.arrow`, `rejected.jsonl`, `manifest.json`), written atomically.
 *
 * One pass, streaming: records are split from the byte stream, parsed, normalised to
 * conversations, optionally redacted, expanded into one sample per assistant turn, deduplicated,
 * assigned a split by a hash of their conversation id, and written as Arrow record batches.
 */
import { existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import type { FireoptConfig, IngestConfig } from '../config/schema.js';
import { InputError, RunError, UsageError } from '../errors.js';
import { makeManifest, writeManifest } from '../formats/manifest.js';
import { TRACES_KIND, TRACES_SCHEMA_VERSION, describeTracesSchema } from '../formats/traces-schema.js';
import { silentProgress, type ProgressSink } from '../progress.js';
import { StagedDir } from '../util/atomic.js';
import { BatchInputIndex } from './batch-inputs.js';
import { SampleHashSet } from './dedup.js';
import {
  Rejection,
  detectFormat,
  parseRecord,
  promptFromText,
  type Conversation,
  type DetectedFormat,
  type RecordFormat,
} from './records.js';
import { emptyRedactionCounts, type RedactionCounts } from './redact.js';
import { describeOffenders, RejectLog, type Offender } from './rejects.js';
import { expandConversation, redactConversation } from './samples.js';
import { STDIN_NAME, openSource, resolveInputs, splitRecords, type Container, type RawRecord } from './sources.js';
import { TracesFileWriter } from './writer.js';

export { readTraceRows } from '../formats/traces-schema.js';

/** What runIngest needs besides the config: where progress goes, stdin for `-`, and cancellation. */
export interface IngestDeps {
  progress?: ProgressSink;
  stdin?: Readable;
  signal?: AbortSignal;
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
}

export type IngestManifest = Omit<IngestSummary, 'out' | 'elapsed_s' | 'mb_per_s'> & {
  config: FireoptConfig;
  split: { method: string; heldout: number; salt: string };
  files: { train: string; heldout: string; rejected: string };
  schema: ReturnType<typeof describeTracesSchema>;
};

const PROGRESS_INTERVAL_MS = 250;

/** Run ingest with a resolved config (`config.ingest.inputs` and `config.ingest.out` must be set). */
export async function runIngest(config: FireoptConfig, deps: IngestDeps = {}): Promise<IngestSummary> {
  const settings = config.ingest;
  const progress = deps.progress ?? silentProgress;
  if (settings.inputs.length === 0) throw new UsageError('ingest: no input files', 'HINT: fireopt ingest <files...> --out <dir>');
  if (!settings.out) throw new UsageError('ingest: no output directory', 'HINT: pass --out <dir> (or set ingest.out)');
  const outDir = resolve(settings.out);
  const startedMs = Date.now();

  const traceFiles = await resolveInputs(settings.inputs);
  const batchInputFiles = await resolveInputs(settings.batch_inputs);
  if (settings.format === 'auto' || settings.format === 'openai-batch') {
    // Batch input files given among the inputs are recognised by their first record and joined, not ingested.
    for (const file of [...traceFiles]) {
      if (file !== STDIN_NAME && !batchInputFiles.includes(file) && (await peekFormat(file, settings.max_line_bytes)) === 'openai-batch-input') {
        batchInputFiles.push(file);
        traceFiles.splice(traceFiles.indexOf(file), 1);
      }
    }
  }
  if (traceFiles.length === 0) throw new UsageError('ingest: only batch input files were given', 'HINT: add the batch output files too');
  if (traceFiles.filter((f) => f === STDIN_NAME).length + batchInputFiles.filter((f) => f === STDIN_NAME).length > 1) {
    throw new UsageError('ingest: `-` (stdin) can be given only once');
  }

  removeStaleStaging(outDir);
  const staged = new StagedDir(outDir);
  try {
    const inputs: IngestInput[] = [];
    const batchIndex = new BatchInputIndex();
    for (const file of batchInputFiles) {
      const stats = await batchIndex.addFile(file, deps.stdin, settings.max_line_bytes);
      inputs.push({ path: file, ...stats, gzip: false, role: 'batch-input', container: 'lines', format: 'openai-batch-input', records: 0, samples: 0, rejected: 0 });
    }

    const run = new IngestRun(settings, staged.path, batchIndex, progress, deps.signal);
    const totalBytes = traceFiles.reduce((sum, f) => sum + (f === STDIN_NAME ? 0 : statSync(f).size), 0);
    progress({ kind: 'start', task: 'ingest', unit: 'MB', total: totalBytes ? roundMb(totalBytes) : undefined });
    for (const file of traceFiles) inputs.push(await run.ingestFile(file, deps.stdin));
    await run.finish();
    progress({ kind: 'end', task: 'ingest', done: roundMb(run.bytesRead) });

    const limit = settings.max_rejected;
    const fraction = run.records ? run.rejects.count / run.records : 0;
    const worst = run.rejects.worstOffenders();
    const rejected = { count: run.rejects.count, fraction, limit, by_reason: run.rejects.countsByCode(), worst };
    if (run.records === 0) {
      throw new InputError(`ingest: no records in ${traceFiles.join(', ')}`, 'HINT: the inputs are empty or hold only blank lines');
    }
    const over = limit >= 1 ? run.rejects.count > limit : fraction > limit;
    if (over) {
      const kept = `${outDir}.rejected.jsonl`;
      renameSync(join(staged.path, 'rejected.jsonl'), kept);
      throw new RunError(
        `ingest: ${run.rejects.count} of ${run.records} records rejected (${(fraction * 100).toFixed(1)}%), above --max-rejected ${limit}; no dataset written\n` +
          describeOffenders(worst.slice(0, 5)).map((line) => `  ${line}`).join('\n'),
        `HINT: every rejected line is listed in ${kept}`,
        'E_TOO_MANY_REJECTED',
      );
    }
    if (run.train.rowCount + run.heldout.rowCount === 0) {
      throw new RunError('ingest: no samples were produced', 'HINT: see the rejected records above');
    }

    const summaryBody = {
      rows: { train: run.train.rowCount, heldout: run.heldout.rowCount, total: run.train.rowCount + run.heldout.rowCount },
      rows_by_format: run.rowsByFormat,
      records: run.records,
      samples_before_dedup: run.samplesBeforeDedup,
      duplicates_removed: run.duplicates,
      rejected,
      redactions: settings.redact ? run.redactions : null,
      inputs,
      input_bytes: inputs.reduce((sum, input) => sum + input.bytes, 0),
    };
    const manifest = makeManifest<Omit<IngestManifest, keyof typeof summaryBody> & typeof summaryBody>(TRACES_KIND, TRACES_SCHEMA_VERSION, {
      config,
      split: { method: 'sha256(salt, 0x00, conversation_id): first 4 bytes / 2^32 < heldout', heldout: settings.heldout, salt: settings.split_salt },
      files: { train: 'train.arrow', heldout: 'heldout.arrow', rejected: 'rejected.jsonl' },
      schema: describeTracesSchema(),
      ...summaryBody,
    });
    writeManifest(staged.path, manifest);
    staged.commit();
    const elapsedSec = (Date.now() - startedMs) / 1000;
    return { out: outDir, ...summaryBody, elapsed_s: elapsedSec, mb_per_s: run.bytesRead / 1e6 / Math.max(elapsedSec, 1e-3) };
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
  private readonly seen = new SampleHashSet();
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
  ) {
    this.train = new TracesFileWriter(join(dir, 'train.arrow'), settings.batch_rows);
    this.heldout = new TracesFileWriter(join(dir, 'heldout.arrow'), settings.batch_rows);
    this.rejects = new RejectLog(join(dir, 'rejected.jsonl'));
  }

  async ingestFile(file: string, stdin: Readable | undefined): Promise<IngestInput> {
    const source = openSource(file, stdin, (n) => {
      this.bytesRead += n;
    });
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
    const textPrompts = isTextFile(file);
    let firstRecord = true;
    const lookup = (customId: string) => this.batchIndex.lookup(customId);
    for await (const records of splitRecords(source.chunks, this.settings.max_line_bytes, (container) => {
      input.container = container;
    })) {
      this.signal?.throwIfAborted();
      for (const record of records) {
        input.records++;
        this.records++;
        if (firstRecord) {
          firstRecord = false;
          // A prompts-only text file: by extension, or by --format prompts with a first line that is not JSON.
          const looksJson = record.ok && /^\s*[{["]/.test(record.text);
          if (input.container === 'lines' && (textPrompts || (input.format === 'prompts' && !looksJson))) {
            input.container = 'text';
            input.format = 'prompts';
          }
        }
        try {
          const conversation = this.parse(record, input, lookup);
          await this.addConversation(conversation, input, file, record.line);
        } catch (error) {
          if (!(error instanceof Rejection)) throw error;
          input.rejected++;
          await this.rejects.add({ file, line: record.line, code: error.code, reason: error.message, excerpt: record.ok ? record.text : '' });
        }
      }
      this.reportProgress();
    }
    const stats = source.stats();
    Object.assign(input, stats);
    return input;
  }

  private parse(record: RawRecord, input: IngestInput, lookup: (id: string) => ReturnType<BatchInputIndex['lookup']>): Conversation {
    if (!record.ok) throw new Rejection(record.code, record.reason);
    if (input.container === 'text') return promptFromText(record.text);
    let value: unknown;
    try {
      value = JSON.parse(record.text);
    } catch (error) {
      throw new Rejection('malformed-json', `malformed JSON: ${(error as Error).message}`);
    }
    if (input.format === null) {
      const detected = detectFormat(value);
      if (detected === undefined) {
        throw new Rejection('unknown-shape', 'record matches no input format (expected messages, request/response, custom_id/response, conversations, prompt/completion, instruction/output or prompt)');
      }
      if (detected === 'openai-batch-input') {
        throw new InputError(`${input.path}: a Batch API input file cannot be read from here`, 'HINT: pass it with --batch-input <file>');
      }
      input.format = detected;
    }
    if (input.format === 'openai-batch-input') throw new Rejection('wrong-shape', 'batch input line among traces');
    return parseRecord(input.format, value, lookup);
  }

  private async addConversation(conversation: Conversation, input: IngestInput, file: string, line: number): Promise<void> {
    if (this.settings.redact) redactConversation(conversation, this.redactions);
    const samples = expandConversation(conversation, { file, line, salt: this.settings.split_salt, heldout: this.settings.heldout });
    const format = input.format as RecordFormat;
    for (const sample of samples) {
      this.samplesBeforeDedup++;
      if (this.settings.dedup && !this.seen.add(sample.digest)) {
        this.duplicates++;
        continue;
      }
      input.samples++;
      this.rowsByFormat[format] = (this.rowsByFormat[format] ?? 0) + 1;
      const writer = sample.row.split === 'heldout' ? this.heldout : this.train;
      if (writer.add(sample.row)) await writer.flush(); // awaited only once per batch: a promise per row costs ~10%
    }
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
    await Promise.all([this.train.close(), this.heldout.close(), this.rejects.close()]);
  }
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

/** Remove staging folders for this output left by runs that were killed (their process is gone). */
function removeStaleStaging(outDir: string): void {
  const parent = dirname(outDir);
  if (!existsSync(parent)) return;
  const prefix = `.${basename(outDir)}.tmp-`;
  for (const name of readdirSync(parent)) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && !processAlive(pid)) rmSync(join(parent, name), { recursive: true, force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
