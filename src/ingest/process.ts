/**
 * The per-record work of ingest, runnable on the main thread or in a parse worker: decode, parse,
 * normalise, redact, expand into samples, hash, and encode the samples into column buffers. What
 * needs the whole run's state (dedup, batch boundaries, the output files) stays with the caller,
 * which consumes one `ProcessedBlock` per block of records, in input order.
 */
import { InputError } from '../errors.js';
import { isUtf8 } from 'node:buffer';
import type { EncodedTraceRows } from '../formats/traces-schema.js';
import { ROW_CAPACITY, TracesBatchBuilder, packEncoded } from './columns.js';
import {
  Rejection,
  detectFormat,
  parseRecord,
  promptFromText,
  type BatchLookup,
  type Conversation,
  type DetectedFormat,
} from './records.js';
import { emptyRedactionCounts, type RedactionCounts } from './redact.js';
import type { RejectedRecord } from './rejects.js';
import { DIGEST_BYTES, SampleEncoder, redactConversation, type SampleSink } from './samples.js';
import { FAILED_RECORD, HEAD_RECORD, decodeRange, type LineRecords, type RawRecord } from './blocks.js';

/** How one file's records are read: fixed per file once its format is known. */
export interface FileSettings {
  file: string;
  /** null until detected from the file's first JSON record (main thread only). */
  format: DetectedFormat | null;
  /** A prompts-only text file: each line is a prompt, verbatim. */
  text: boolean;
  redact: boolean;
  salt: string;
  heldout: number;
}

/** The outcome of a block of records, in input order. */
export interface ProcessedBlock {
  records: number;
  rejects: RejectedRecord[];
  redactions: RedactionCounts;
  /** Per sample in input order: the first 8 bytes of its digest (the dedup key), and its split (1 = heldout). */
  sampleKeys: Uint8Array;
  sampleHeldout: Uint8Array;
  samples: number;
  train: EncodedTraceRows;
  heldout: EncodedTraceRows;
  /** For a packed block: the one ArrayBuffer that holds its arrays (see `RecordProcessor.take`). */
  memory?: ArrayBuffer;
}

export const DEDUP_KEY_BYTES = 8;

// Re-exported for the parse pool, which speaks the block protocol to the workers.
export { FAILED_RECORD, HEAD_RECORD };

export class RecordProcessor implements SampleSink {
  readonly train = new TracesBatchBuilder();
  readonly heldout = new TracesBatchBuilder();
  private readonly encoder = new SampleEncoder();
  private rejects: RejectedRecord[] = [];
  private redactions = emptyRedactionCounts();
  private sampleKeys = new Uint8Array(ROW_CAPACITY * DEDUP_KEY_BYTES);
  private sampleHeldout = new Uint8Array(ROW_CAPACITY);
  private samples = 0;
  /** Samples whose digests are known (their dedup keys and ids written): see `view`. */
  private hashed = 0;
  private records = 0;

  constructor(
    public settings: FileSettings,
    private readonly lookup: BatchLookup,
    private readonly inputPath: string = settings.file,
  ) {}

  /** Process one record; a Rejection becomes a rejects entry. */
  add(record: RawRecord): void {
    this.records++;
    try {
      const conversation = this.parse(record);
      if (this.settings.redact) redactConversation(conversation, this.redactions);
      this.encoder.encode(
        conversation,
        { file: this.settings.file, line: record.line, salt: this.settings.salt, heldout: this.settings.heldout },
        this,
      );
    } catch (error) {
      if (!(error instanceof Rejection)) throw error;
      this.rejects.push({
        file: this.settings.file,
        line: record.line,
        code: error.code,
        reason: error.message,
        excerpt: record.ok ? record.text : '',
      });
    }
  }

  /**
   * Process records `[from, to)` of a line block (see `LineBlock`; `failure` indexes the first
   * failed record among them), decoding each and rejecting invalid UTF-8.
   */
  addLines(block: LineRecords, from: number, to: number, failure: number): void {
    const { chunk, starts, ends, lines } = block;
    // One UTF-8 check over the records' span instead of one per record: lines are separated by
    // ASCII bytes, which never occur inside a multi-byte sequence, so if the span is valid every
    // record in it is. Only a span with invalid bytes is checked record by record.
    let spanStart = -1;
    let spanEnd = 0;
    for (let i = from; i < to; i++) {
      if (starts[i] < 0) continue;
      if (spanStart < 0) spanStart = starts[i];
      spanEnd = ends[i];
    }
    const spanValid = spanStart >= 0 && isUtf8(chunk.subarray(spanStart, spanEnd));
    for (let i = from; i < to; i++) {
      const start = starts[i];
      if (start >= 0) this.add(decodeRange(chunk, start, ends[i], lines[i], spanValid));
      else if (start === HEAD_RECORD) this.add(decodeRange(block.head as Buffer, 0, ends[i], lines[i], false));
      else this.add(block.failures[failure++]);
    }
  }

  /**
   * Everything processed since the last `reset`, as views onto this processor's memory: valid
   * until the next `add`, `reset` or `take`. The samples are hashed here, all at once.
   */
  view(): ProcessedBlock {
    if (this.hashed < this.samples) {
      const digests = this.encoder.finish(this);
      for (let i = 0; this.hashed < this.samples; i++, this.hashed++) {
        for (let k = 0; k < DEDUP_KEY_BYTES; k++)
          this.sampleKeys[this.hashed * DEDUP_KEY_BYTES + k] = digests[i * DIGEST_BYTES + k];
      }
    }
    return {
      records: this.records,
      rejects: this.rejects,
      redactions: this.redactions,
      sampleKeys: this.sampleKeys.subarray(0, this.samples * DEDUP_KEY_BYTES),
      sampleHeldout: this.sampleHeldout.subarray(0, this.samples),
      samples: this.samples,
      train: this.train.view(),
      heldout: this.heldout.view(),
    };
  }

  /** Start the next block, keeping the memory. */
  reset(): void {
    this.train.clear();
    this.heldout.clear();
    this.records = 0;
    this.rejects = [];
    this.redactions = emptyRedactionCounts();
    this.samples = 0;
    this.hashed = 0;
  }

  /**
   * Everything processed since the last `reset`, copied into one ArrayBuffer (`block.memory`,
   * taken from `spares` when one is large enough) to hand to another thread; then reset.
   */
  take(spares: ArrayBuffer[]): ProcessedBlock {
    const block = this.view();
    const packed = packEncoded([block.train, block.heldout], [block.sampleKeys, block.sampleHeldout], spares);
    this.reset();
    return {
      ...block,
      train: packed.rows[0],
      heldout: packed.rows[1],
      sampleKeys: packed.bytes[0],
      sampleHeldout: packed.bytes[1],
      memory: packed.memory,
    };
  }

  /** SampleSink: record the sample's split (its dedup key is known once the block is hashed, in `view`). */
  sample(split: 'train' | 'heldout'): void {
    if (this.samples === this.sampleHeldout.length) {
      const keys = new Uint8Array(this.sampleKeys.length * 2);
      keys.set(this.sampleKeys);
      this.sampleKeys = keys;
      const heldout = new Uint8Array(this.sampleHeldout.length * 2);
      heldout.set(this.sampleHeldout);
      this.sampleHeldout = heldout;
    }
    this.sampleHeldout[this.samples++] = split === 'heldout' ? 1 : 0;
  }

  private parse(record: RawRecord): Conversation {
    if (!record.ok) throw new Rejection(record.code, record.reason);
    const settings = this.settings;
    if (settings.text) return promptFromText(record.text);
    let value: unknown;
    try {
      value = JSON.parse(record.text);
    } catch (error) {
      throw new Rejection('malformed-json', `malformed JSON: ${(error as Error).message}`);
    }
    if (settings.format === null) {
      const detected = detectFormat(value);
      if (detected === undefined) {
        throw new Rejection(
          'unknown-shape',
          'record matches no input format (expected messages, request/response, custom_id/response, conversations, ' +
            'prompt/completion, instruction/output or prompt)',
        );
      }
      if (detected === 'openai-batch-input') {
        throw new InputError(
          `${this.inputPath}: a Batch API input file cannot be read from here`,
          'HINT: pass it with --batch-input <file>',
        );
      }
      settings.format = detected;
    }
    if (settings.format === 'openai-batch-input') throw new Rejection('wrong-shape', 'batch input line among traces');
    return parseRecord(settings.format, value, this.lookup);
  }
}
