/**
 * The `traces` dataset that `fireopt ingest` writes and distill reads: one row per sample (an
 * assistant turn, or a prompt awaiting a completion). The schema is declared once, below, as a
 * value; the Arrow schema and the TypeScript row type are both derived from it.
 *
 * `messages` is a List<Struct> (role, content, name, tool_calls, tool_call_id), so the context is
 * structured data that pyarrow, polars and arrow-js read as a list of records; tool calls and tool
 * schemas are arbitrary JSON, so they are stored as JSON text.
 */
import { open } from 'node:fs/promises';
import {
  Field,
  Int32,
  List,
  RecordBatch,
  RecordBatchReader,
  Schema,
  Struct,
  TimestampMillisecond,
  Utf8,
  DataType,
  makeBuilder,
  makeData,
  type Data,
  type Vector,
} from 'apache-arrow';
import { InputError } from '../errors.js';

export const TRACES_KIND = 'traces';
export const TRACES_SCHEMA_VERSION = 1;
export const TRACES_RERUN_HINT = 'fireopt ingest <traces...> --out <dataset>';

/** A column: its Arrow type, whether it may be null, and what it holds. `Value` is its JS value type. */
export interface ColumnSpec<Value = unknown, Nullable extends boolean = boolean> {
  readonly type: DataType;
  readonly nullable: Nullable;
  readonly doc: string;
  /** Type-level only: the JS value of one cell. */
  readonly value?: Value;
}
type Columns = Record<string, ColumnSpec>;

/** The JS row type of a set of columns (null where the column is nullable). */
export type RowOf<C extends Columns> = {
  -readonly [K in keyof C]: C[K] extends ColumnSpec<infer V, infer N> ? (N extends true ? V | null : V) : never;
};

const utf8 = <N extends boolean>(nullable: N, doc: string): ColumnSpec<string, N> => ({ type: new Utf8(), nullable, doc });
const int32 = <N extends boolean>(nullable: N, doc: string): ColumnSpec<number, N> => ({ type: new Int32(), nullable, doc });
const timestampMs = <N extends boolean>(nullable: N, doc: string): ColumnSpec<number, N> => ({
  type: new TimestampMillisecond(),
  nullable,
  doc,
});
const fieldsOf = (columns: Columns): Field[] =>
  Object.entries(columns).map(([name, spec]) => new Field(name, spec.type, spec.nullable));
const listOfStruct = <C extends Columns, N extends boolean>(columns: C, nullable: N, doc: string): ColumnSpec<RowOf<C>[], N> => ({
  type: new List(new Field('item', new Struct(fieldsOf(columns)), false)),
  nullable,
  doc,
});

/** One chat message, as stored in the `messages` list. */
export const messageColumns = {
  role: utf8(false, '`system`, `user`, `assistant` or `tool`'),
  content: utf8(true, 'the message text; null for an assistant message that only calls tools'),
  name: utf8(true, 'optional participant or tool name'),
  tool_calls: utf8(true, 'assistant tool calls, as the JSON text of the OpenAI `tool_calls` array'),
  tool_call_id: utf8(true, 'for a `tool` message: the id of the call it answers'),
} as const;

/** The traces dataset, one row per sample. */
export const tracesColumns = {
  id: utf8(false, 'content hash of (tools, context, completion): 32 hex digits, equal for duplicates'),
  conversation_id: utf8(false, 'the source conversation id, or `c-<hash of its opening messages>` when it has none'),
  turn_index: int32(false, '0-based index of this assistant turn among the conversation\'s assistant turns'),
  messages: listOfStruct(messageColumns, false, 'the context: every message before this turn (system, user, tool, earlier assistant)'),
  completion: utf8(true, 'this assistant turn\'s text (empty if it only calls tools); null for a prompt without completion'),
  completion_tool_calls: utf8(true, 'this turn\'s tool calls as JSON text, or null'),
  tools: utf8(true, 'tool (function) schemas offered to the model, as JSON text, or null'),
  model: utf8(true, 'the model that wrote the completion, when the trace says'),
  created_at: timestampMs(true, 'when the completion was made, when the trace says'),
  source_file: utf8(false, 'input file path as given (`-` for stdin)'),
  source_line: int32(false, '1-based line of the record in its file (for a JSON array: the line where the element starts)'),
  split: utf8(false, '`train` or `heldout`'),
  metadata: utf8(false, 'JSON object: `format` and source extras (usage, finish_reason, custom_id, ...)'),
} as const;

export type TraceMessage = RowOf<typeof messageColumns>;
export type TraceRow = RowOf<typeof tracesColumns>;
export type TraceSplit = 'train' | 'heldout';

/** The Arrow schema of `train.arrow` and `heldout.arrow`. */
export const tracesSchema = new Schema(fieldsOf(tracesColumns));

const tracesStruct = new Struct(tracesSchema.fields);

const messagesType = tracesColumns.messages.type as List<Struct>;
const messageStruct = messagesType.children[0].type as Struct;

/** The text columns of a traces row, and of a message, by name. */
export type TracesTextColumn = Exclude<keyof TraceRow, 'turn_index' | 'messages' | 'created_at' | 'source_line'>;
export type MessageColumn = keyof TraceMessage;
const TEXT_COLUMNS = tracesSchema.fields.filter((f) => DataType.isUtf8(f.type)).map((f) => f.name as TracesTextColumn);
const MESSAGE_COLUMNS = Object.keys(messageColumns) as MessageColumn[];

/** A Utf8 column's Arrow buffers, exactly `length` values long (views onto unpooled, transferable memory). */
export interface Utf8Buffers {
  length: number;
  nullCount: number;
  offsets: Int32Array; // [length + 1]
  bytes: Uint8Array; // [offsets[length]]
  validity: Uint8Array; // [ceil(length / 8)], bit set = not null
}

/**
 * Rows encoded column by column, ready to become (part of) a record batch: what a parse worker
 * sends back to the main thread (its buffers are transferred, not copied).
 */
export interface EncodedTraceRows {
  length: number;
  text: Record<TracesTextColumn, Utf8Buffers>;
  turnIndex: Int32Array;
  sourceLine: Int32Array;
  createdAtMs: Float64Array; // NaN = null
  messageOffsets: Int32Array; // [length + 1] into the message columns
  messages: Record<MessageColumn, Utf8Buffers>;
}

/** The ArrayBuffers behind encoded rows, for `postMessage`'s transfer list. */
export function encodedBuffers(rows: EncodedTraceRows): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  const add = (view: ArrayBufferView): void => {
    buffers.add(view.buffer as ArrayBuffer);
  };
  for (const column of [...Object.values(rows.text), ...Object.values(rows.messages)]) {
    add(column.offsets);
    add(column.bytes);
    add(column.validity);
  }
  add(rows.turnIndex);
  add(rows.sourceLine);
  add(rows.createdAtMs);
  add(rows.messageOffsets);
  return [...buffers];
}

/**
 * A nullable Utf8 column written directly as Arrow buffers (validity bitmap, int32 offsets, bytes).
 * Hand-built because arrow-js's generic builders measured ~3x slower here and were the
 * bottleneck of ingest; it also appends raw UTF-8 byte ranges (text already encoded once for the
 * sample hash is copied, not encoded again) and ranges of another column (the main thread
 * assembles batches from worker-encoded rows by memcpy). Memory comes from `allocUnsafeSlow`
 * so that it can be transferred between threads (pooled Buffers cannot).
 */
export class Utf8Column {
  private bytes: Buffer;
  private offsets: Int32Array;
  private validity: Uint8Array;
  private byteLength = 0;
  private nullCount = 0;
  length = 0;

  constructor(rowCapacity = 1024, byteCapacity = 1 << 16) {
    this.bytes = Buffer.allocUnsafeSlow(byteCapacity);
    this.offsets = new Int32Array(rowCapacity + 1);
    this.validity = new Uint8Array((rowCapacity + 7) >> 3);
  }

  /** Bytes written so far (to size the next column like this one). */
  get byteSize(): number {
    return this.byteLength;
  }

  appendString(value: string | null): void {
    if (value === null) return this.appendNull();
    this.reserveBytes(value.length * 3); // UTF-8 needs at most 3 bytes per UTF-16 unit
    const i = this.nextRow();
    this.byteLength += this.bytes.write(value, this.byteLength, 'utf8');
    this.validity[i >> 3] |= 1 << (i & 7);
    this.offsets[i + 1] = this.byteLength;
  }

  /** Append `source[start, end)`, already UTF-8. */
  appendBytes(source: Uint8Array, start: number, end: number): void {
    this.reserveBytes(end - start);
    const i = this.nextRow();
    this.bytes.set(source.subarray(start, end), this.byteLength);
    this.byteLength += end - start;
    this.validity[i >> 3] |= 1 << (i & 7);
    this.offsets[i + 1] = this.byteLength;
  }

  appendNull(): void {
    const i = this.nextRow();
    this.nullCount++;
    this.offsets[i + 1] = this.byteLength;
  }

  /** Append values `[from, to)` of another column's buffers. */
  appendRange(source: Utf8Buffers, from: number, to: number): void {
    if (to <= from) return;
    const byteStart = source.offsets[from];
    const byteCount = source.offsets[to] - byteStart;
    this.reserveBytes(byteCount);
    this.reserveRows(to - from);
    this.bytes.set(source.bytes.subarray(byteStart, byteStart + byteCount), this.byteLength);
    const shift = this.byteLength - byteStart;
    const base = this.length - from;
    for (let k = from; k < to; k++) {
      const i = base + k;
      this.offsets[i + 1] = source.offsets[k + 1] + shift;
      if (source.validity[k >> 3] & (1 << (k & 7))) this.validity[i >> 3] |= 1 << (i & 7);
      else this.nullCount++;
    }
    this.length += to - from;
    this.byteLength += byteCount;
  }

  /** The buffers, trimmed to the values written. */
  buffers(): Utf8Buffers {
    return {
      length: this.length,
      nullCount: this.nullCount,
      offsets: this.offsets.subarray(0, this.length + 1),
      bytes: this.bytes.subarray(0, this.byteLength),
      validity: this.validity.subarray(0, (this.length + 7) >> 3),
    };
  }

  toData(): Data<Utf8> {
    const buffers = this.buffers();
    return makeData({
      type: new Utf8(),
      length: buffers.length,
      nullCount: buffers.nullCount,
      nullBitmap: buffers.nullCount ? buffers.validity : null,
      valueOffsets: buffers.offsets,
      data: buffers.bytes,
    });
  }

  private nextRow(): number {
    if (this.length + 1 >= this.offsets.length) this.reserveRows(1);
    return this.length++;
  }

  private reserveRows(count: number): void {
    const need = this.length + count + 1;
    if (need <= this.offsets.length) return;
    const capacity = Math.max(need, this.offsets.length * 2);
    const offsets = new Int32Array(capacity);
    offsets.set(this.offsets.subarray(0, this.length + 1));
    this.offsets = offsets;
    const validity = new Uint8Array((capacity + 7) >> 3);
    validity.set(this.validity);
    this.validity = validity;
  }

  private reserveBytes(count: number): void {
    const need = this.byteLength + count;
    if (need <= this.bytes.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(need, this.bytes.length * 2));
    this.bytes.copy(grown, 0, 0, this.byteLength);
    this.bytes = grown;
  }
}

/** Growable typed array for a numeric column. */
class NumberColumn<T extends Int32Array | Float64Array> {
  length = 0;
  constructor(public values: T) {}

  push(value: number): void {
    if (this.length === this.values.length) this.grow(this.length + 1);
    this.values[this.length++] = value;
  }

  pushRange(source: T, from: number, to: number): void {
    this.grow(this.length + to - from);
    this.values.set(source.subarray(from, to), this.length);
    this.length += to - from;
  }

  trimmed(): T {
    return this.values.subarray(0, this.length) as T;
  }

  private grow(need: number): void {
    if (need <= this.values.length) return;
    const next = new (this.values.constructor as new (n: number) => T)(Math.max(need, this.values.length * 2));
    next.set(this.values.subarray(0, this.length));
    this.values = next;
  }
}

/**
 * Builds traces rows column by column. A row is written by appending one value to every text
 * column (`text.*`), the row's context messages to the message columns (`message.*`), then
 * `endRow(turnIndex, sourceLine, createdAtMs)`. `encode()` hands the rows to another thread;
 * `toRecordBatch()` makes an Arrow record batch. Both start a fresh builder, sized like the last
 * one (the finished buffers may still be queued in the file writer, so they are not reused).
 */
export class TracesBatchBuilder {
  text!: Record<TracesTextColumn, Utf8Column>;
  message!: Record<MessageColumn, Utf8Column>;
  private turnIndex!: NumberColumn<Int32Array>;
  private sourceLine!: NumberColumn<Int32Array>;
  private createdAtMs!: NumberColumn<Float64Array>;
  private messageOffsets!: NumberColumn<Int32Array>;
  length = 0;

  constructor() {
    this.reset(1024);
  }

  endRow(turnIndex: number, sourceLine: number, createdAtMs: number | null): void {
    this.turnIndex.push(turnIndex);
    this.sourceLine.push(sourceLine);
    this.createdAtMs.push(createdAtMs ?? NaN);
    this.messageOffsets.push(this.message.role.length);
    this.length++;
  }

  /** Append rows `[from, to)` of encoded rows. */
  appendRows(source: EncodedTraceRows, from: number, to: number): void {
    if (to <= from) return;
    for (const name of TEXT_COLUMNS) this.text[name].appendRange(source.text[name], from, to);
    const messageFrom = source.messageOffsets[from];
    const messageTo = source.messageOffsets[to];
    for (const name of MESSAGE_COLUMNS) this.message[name].appendRange(source.messages[name], messageFrom, messageTo);
    this.turnIndex.pushRange(source.turnIndex, from, to);
    this.sourceLine.pushRange(source.sourceLine, from, to);
    this.createdAtMs.pushRange(source.createdAtMs, from, to);
    const shift = this.messageOffsets.values[this.length] - messageFrom;
    for (let k = from + 1; k <= to; k++) this.messageOffsets.push(source.messageOffsets[k] + shift);
    this.length += to - from;
  }

  encode(): EncodedTraceRows {
    this.check();
    const text = mapColumns(TEXT_COLUMNS, (name) => this.text[name].buffers());
    const messages = mapColumns(MESSAGE_COLUMNS, (name) => this.message[name].buffers());
    const rows: EncodedTraceRows = {
      length: this.length,
      text,
      turnIndex: this.turnIndex.trimmed(),
      sourceLine: this.sourceLine.trimmed(),
      createdAtMs: this.createdAtMs.trimmed(),
      messageOffsets: this.messageOffsets.trimmed(),
      messages,
    };
    this.resetLike();
    return rows;
  }

  /** The rows as one record batch, in schema order. */
  toRecordBatch(): RecordBatch {
    this.check();
    const length = this.length;
    const children = tracesSchema.fields.map((field): Data => {
      const name = field.name as keyof TraceRow;
      if (name === 'messages') {
        const struct = makeData({
          type: messageStruct,
          length: this.message.role.length,
          nullCount: 0,
          children: MESSAGE_COLUMNS.map((column) => this.message[column].toData()),
        });
        return makeData({ type: messagesType, length, nullCount: 0, valueOffsets: this.messageOffsets.trimmed(), child: struct });
      }
      if (DataType.isUtf8(field.type)) return this.text[name as TracesTextColumn].toData();
      // The few numeric columns go through arrow-js builders: they are a small share of the work.
      const builder = makeBuilder({ type: field.type, nullValues: [null, undefined] });
      if (name === 'created_at') for (const ms of this.createdAtMs.trimmed()) builder.append(Number.isNaN(ms) ? null : ms);
      else for (const value of (name === 'turn_index' ? this.turnIndex : this.sourceLine).trimmed()) builder.append(value);
      return builder.finish().flush();
    });
    const data = makeData({ type: tracesStruct, length, nullCount: 0, children });
    this.resetLike();
    return new RecordBatch(tracesSchema, data);
  }

  private check(): void {
    for (const name of TEXT_COLUMNS) {
      if (this.text[name].length !== this.length) throw new Error(`TracesBatchBuilder: column ${name} has ${this.text[name].length} values, ${this.length} rows`);
    }
    for (const name of MESSAGE_COLUMNS) {
      if (this.message[name].length !== this.message.role.length) throw new Error(`TracesBatchBuilder: message column ${name} is ragged`);
    }
  }

  private resetLike(): void {
    this.reset(Math.max(this.length, 16));
  }

  private reset(rows: number): void {
    const previous = this.text as Record<TracesTextColumn, Utf8Column> | undefined;
    const previousMessages = this.message as Record<MessageColumn, Utf8Column> | undefined;
    const messages = previousMessages ? previousMessages.role.length : rows * 4;
    // Start each column at the size it reached last time: growing by doubling would copy it again.
    const sized = (old: Utf8Column | undefined, count: number): Utf8Column => new Utf8Column(count, Math.max(1024, old?.byteSize ?? 1 << 16));
    this.text = mapColumns(TEXT_COLUMNS, (name) => sized(previous?.[name], rows));
    this.message = mapColumns(MESSAGE_COLUMNS, (name) => sized(previousMessages?.[name], messages));
    this.turnIndex = new NumberColumn(new Int32Array(rows));
    this.sourceLine = new NumberColumn(new Int32Array(rows));
    this.createdAtMs = new NumberColumn(new Float64Array(rows));
    this.messageOffsets = new NumberColumn(new Int32Array(rows + 1));
    this.messageOffsets.push(0);
    this.length = 0;
  }
}

function mapColumns<K extends string, V>(names: readonly K[], make: (name: K) => V): Record<K, V> {
  const out = {} as Record<K, V>;
  for (const name of names) out[name] = make(name);
  return out;
}

/** Read rows from a traces Arrow file, one record batch at a time (memory stays flat). */
export async function* readTraceRows(path: string): AsyncGenerator<TraceRow> {
  const handle = await open(path, 'r');
  try {
    const reader = await RecordBatchReader.from(handle);
    await reader.open();
    const names = reader.schema.fields.map((f) => f.name).join(',');
    if (names !== tracesSchema.fields.map((f) => f.name).join(',')) {
      throw new InputError(`${path}: not a traces file (columns ${names})`, `HINT: re-run \`${TRACES_RERUN_HINT}\``, 'E_SCHEMA_VERSION');
    }
    for await (const batch of reader) {
      for (let i = 0; i < batch.numRows; i++) yield traceRowAt(batch, i);
    }
  } finally {
    await handle.close();
  }
}

/** Row `i` of a traces record batch as a plain object. */
export function traceRowAt(batch: RecordBatch, i: number): TraceRow {
  const row: Record<string, unknown> = {};
  for (const field of tracesSchema.fields) {
    const value: unknown = batch.getChild(field.name)?.get(i);
    if (field.name === 'messages') {
      row.messages = (value as Vector).toArray().map((m: { toJSON(): TraceMessage }) => ({ ...m.toJSON() }));
    } else row[field.name] = value ?? null;
  }
  return row as TraceRow;
}

/** The schema as plain lines (`name: type, nullable`), for `inspect` and the README. */
export function describeTracesSchema(): Array<{ name: string; type: string; nullable: boolean; doc: string }> {
  return Object.entries(tracesColumns).map(([name, spec]) => ({
    name,
    type: String(spec.type),
    nullable: spec.nullable,
    doc: spec.doc,
  }));
}
