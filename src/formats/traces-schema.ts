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

/**
 * Build one record batch from rows, in schema order. Text columns (almost all the bytes) are
 * encoded straight into Arrow's offsets + data layout: arrow-js's generic builders measured ~3x
 * slower here and were the bottleneck of ingest. Other columns use arrow-js builders.
 */
export function tracesRecordBatch(rows: readonly TraceRow[]): RecordBatch {
  const children = tracesSchema.fields.map((field) => {
    const name = field.name as keyof TraceRow;
    if (name === 'messages') return messagesData(rows);
    if (DataType.isUtf8(field.type)) {
      const column = new Utf8Column(rows.length);
      for (const row of rows) column.append(row[name] as string | null);
      return column.finish();
    }
    const builder = makeBuilder({ type: field.type, nullValues: [null, undefined] });
    for (const row of rows) builder.append(row[name]);
    return builder.finish().flush();
  });
  const data = makeData({ type: tracesStruct, length: rows.length, nullCount: 0, children });
  return new RecordBatch(tracesSchema, data);
}

const messagesType = tracesColumns.messages.type as List<Struct>;
const messageFieldNames = Object.keys(messageColumns) as Array<keyof TraceMessage>;

function messagesData(rows: readonly TraceRow[]): Data {
  const listOffsets = new Int32Array(rows.length + 1);
  let total = 0;
  for (let i = 0; i < rows.length; i++) {
    total += rows[i].messages.length;
    listOffsets[i + 1] = total;
  }
  const columns = messageFieldNames.map(() => new Utf8Column(total));
  for (const row of rows) {
    for (const message of row.messages) {
      for (let f = 0; f < messageFieldNames.length; f++) columns[f].append(message[messageFieldNames[f]] ?? null);
    }
  }
  const structType = messagesType.children[0].type as Struct;
  const struct = makeData({ type: structType, length: total, nullCount: 0, children: columns.map((c) => c.finish()) });
  return makeData({ type: messagesType, length: rows.length, nullCount: 0, valueOffsets: listOffsets, child: struct });
}

/** A nullable Utf8 column written directly as Arrow buffers (validity bitmap, int32 offsets, bytes). */
class Utf8Column {
  private bytes = Buffer.allocUnsafe(1 << 16);
  private byteLength = 0;
  private readonly offsets: Int32Array;
  private readonly validity: Uint8Array;
  private length = 0;
  private nullCount = 0;

  constructor(private readonly capacity: number) {
    this.offsets = new Int32Array(capacity + 1);
    this.validity = new Uint8Array((capacity + 7) >> 3);
  }

  append(value: string | null): void {
    const i = this.length++;
    if (value === null) {
      this.nullCount++;
    } else {
      this.validity[i >> 3] |= 1 << (i & 7);
      const need = this.byteLength + value.length * 3; // UTF-8 needs at most 3 bytes per UTF-16 unit
      if (need > this.bytes.length) {
        const grown = Buffer.allocUnsafe(Math.max(need, this.bytes.length * 2));
        this.bytes.copy(grown, 0, 0, this.byteLength);
        this.bytes = grown;
      }
      this.byteLength += this.bytes.write(value, this.byteLength, 'utf8');
    }
    this.offsets[i + 1] = this.byteLength;
  }

  finish(): Data<Utf8> {
    if (this.length !== this.capacity) throw new Error(`Utf8Column: ${this.length} values appended, ${this.capacity} expected`);
    return makeData({
      type: new Utf8(),
      length: this.length,
      nullCount: this.nullCount,
      nullBitmap: this.nullCount ? this.validity : null,
      valueOffsets: this.offsets,
      data: this.bytes.subarray(0, this.byteLength),
    });
  }
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
