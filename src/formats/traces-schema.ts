/**
 * The `traces` dataset that `fireopt ingest` writes and distill reads: one row per sample (an
 * assistant turn, or a prompt awaiting a completion). The schema is declared once, below, as a
 * value; the Arrow schema and the TypeScript row type are both derived from it.
 *
 * `messages` is a List<Struct> (role, content, name, tool_calls, tool_call_id), so the context is
 * structured data that pyarrow, polars and arrow-js read as a list of records; tool calls and tool
 * schemas are arbitrary JSON, so they are stored as JSON text.
 */
import { readArrowRows } from './arrow-read.js';
import {
  Field,
  Int32,
  List,
  RecordBatch,
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

const utf8 = <N extends boolean>(nullable: N, doc: string): ColumnSpec<string, N> => ({
  type: new Utf8(),
  nullable,
  doc,
});
const int32 = <N extends boolean>(nullable: N, doc: string): ColumnSpec<number, N> => ({
  type: new Int32(),
  nullable,
  doc,
});
const timestampMs = <N extends boolean>(nullable: N, doc: string): ColumnSpec<number, N> => ({
  type: new TimestampMillisecond(),
  nullable,
  doc,
});
const fieldsOf = (columns: Columns): Field[] =>
  Object.entries(columns).map(([name, spec]) => new Field(name, spec.type, spec.nullable));
const listOfStruct = <C extends Columns, N extends boolean>(
  columns: C,
  nullable: N,
  doc: string,
): ColumnSpec<RowOf<C>[], N> => ({
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
  turn_index: int32(false, "0-based index of this assistant turn among the conversation's assistant turns"),
  messages: listOfStruct(
    messageColumns,
    false,
    'the context: every message before this turn (system, user, tool, earlier assistant)',
  ),
  completion: utf8(
    true,
    "this assistant turn's text (empty if it only calls tools); null for a prompt without completion",
  ),
  completion_tool_calls: utf8(true, "this turn's tool calls as JSON text, or null"),
  tools: utf8(true, 'tool (function) schemas offered to the model, as JSON text, or null'),
  model: utf8(true, 'the model that wrote the completion, when the trace says'),
  created_at: timestampMs(true, 'when the completion was made, when the trace says'),
  source_file: utf8(false, 'input file path as given (`-` for stdin)'),
  source_line: int32(
    false,
    '1-based line of the record in its file (for a JSON array: the line where the element starts)',
  ),
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

/** A Utf8 column's Arrow buffers, exactly `length` values long. */
export interface Utf8Buffers {
  length: number;
  nullCount: number;
  offsets: Int32Array; // [length + 1]
  bytes: Uint8Array; // [offsets[length]]
  validity: Uint8Array; // [ceil(length / 8)], bit set = not null
}

/**
 * Rows encoded column by column in Arrow's layout (built by `src/ingest/columns.ts`, which does
 * not load arrow-js so that parse workers start fast); `tracesRecordBatch` wraps them without copying.
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

/** Encoded rows as one record batch, in schema order (the text buffers are used as they are). */
export function tracesRecordBatch(rows: EncodedTraceRows): RecordBatch {
  const children = tracesSchema.fields.map((field): Data => {
    const name = field.name as keyof TraceRow;
    if (name === 'messages') {
      const struct = makeData({
        type: messageStruct,
        length: rows.messageOffsets[rows.length],
        nullCount: 0,
        children: messageStruct.children.map((child) => utf8Data(rows.messages[child.name as MessageColumn])),
      });
      return makeData({
        type: messagesType,
        length: rows.length,
        nullCount: 0,
        valueOffsets: rows.messageOffsets,
        child: struct,
      });
    }
    if (DataType.isUtf8(field.type)) return utf8Data(rows.text[name as TracesTextColumn]);
    // The few numeric columns go through arrow-js builders: they are a small share of the work.
    const builder = makeBuilder({ type: field.type, nullValues: [null, undefined] });
    if (name === 'created_at') for (const ms of rows.createdAtMs) builder.append(Number.isNaN(ms) ? null : ms);
    else for (const value of name === 'turn_index' ? rows.turnIndex : rows.sourceLine) builder.append(value);
    return builder.finish().flush();
  });
  const data = makeData({ type: tracesStruct, length: rows.length, nullCount: 0, children });
  return new RecordBatch(tracesSchema, data);
}

function utf8Data(column: Utf8Buffers): Data<Utf8> {
  return makeData({
    type: new Utf8(),
    length: column.length,
    nullCount: column.nullCount,
    nullBitmap: column.nullCount ? column.validity : null,
    valueOffsets: column.offsets,
    data: column.bytes,
  });
}

/** Read rows from a traces Arrow file, one record batch at a time (a damaged file: an error naming it). */
export function readTraceRows(path: string): AsyncGenerator<TraceRow> {
  const spec = { what: 'a traces file', schema: tracesSchema, rerunHint: TRACES_RERUN_HINT, rowAt: traceRowAt };
  return readArrowRows(path, spec);
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
