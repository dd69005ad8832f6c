/**
 * The `targets` dataset that `fireopt distill` writes and `train` / `eval` read: one row per
 * (sample, completion) with the target's token ids, an explicit loss mask and, where the engine
 * gives them, the target's top-k log-probabilities at every completion position.
 * Declared once as a value; the Arrow schema and the row type are derived from it.
 */
import {
  Field,
  Float32,
  Int32,
  List,
  RecordBatch,
  Schema,
  Struct,
  Uint8,
  Utf8,
  makeBuilder,
  makeData,
  type DataType,
} from 'apache-arrow';
import { readArrowRows } from './arrow-read.js';

export const TARGETS_KIND = 'targets';
export const TARGETS_SCHEMA_VERSION = 2;
export const TARGETS_RERUN_HINT = 'fireopt distill <dataset> --out <targets>';

interface Column<Value> {
  readonly type: DataType;
  readonly nullable: boolean;
  readonly doc: string;
  /** Type-level only. */
  readonly value?: Value;
}
const column = <Value>(type: DataType, nullable: boolean, doc: string): Column<Value> => ({ type, nullable, doc });
const list = (item: DataType) => new List(new Field('item', item, false));

export const targetsColumns = {
  id: column<string>(new Utf8(), false, 'the traces row id this sample came from'),
  conversation_id: column<string>(
    new Utf8(),
    false,
    'the source conversation id (slices, bootstrap over conversations)',
  ),
  turn_index: column<number>(new Int32(), false, 'assistant turn index within the conversation'),
  sample_index: column<number>(new Int32(), false, '0-based completion index when `n` > 1 samples per prompt'),
  split: column<string>(new Utf8(), false, '`train` or `heldout`'),
  mode: column<string>(new Utf8(), false, '`regenerate`, `score` or `traces`'),
  prompt_token_ids: column<Int32Array>(
    list(new Int32()),
    false,
    'the rendered prompt (chat template applied), target token ids',
  ),
  completion_token_ids: column<Int32Array>(
    list(new Int32()),
    false,
    'the completion, target token ids (including the stop token that ended it)',
  ),
  loss_mask: column<Uint8Array>(
    list(new Uint8()),
    false,
    'one per completion token: 1 = train on it, 0 = context only',
  ),
  token_logprobs: column<Float32Array | null>(
    list(new Float32()),
    true,
    'log p(token) under the target at each completion position; null when the engine gives none',
  ),
  top_k: column<number>(new Int32(), false, 'alternatives stored per position (0 = none)'),
  top_ids: column<Int32Array | null>(
    list(new Int32()),
    true,
    'flattened [completion length × top_k] ids, most likely first, -1 padded',
  ),
  top_logprobs: column<Float32Array | null>(
    list(new Float32()),
    true,
    'flattened [completion length × top_k] log-probabilities, -Infinity padded',
  ),
  finish_reason: column<string>(
    new Utf8(),
    false,
    '`stop` (end-of-generation or stop token), `length`, or `trace` (traces / score modes)',
  ),
  sampling: column<string>(
    new Utf8(),
    false,
    'JSON of the sampling parameters used (temperature, top_p, top_k, seed, max_tokens)',
  ),
  source_file: column<string>(new Utf8(), false, "the trace's original input file"),
  source_line: column<number>(new Int32(), false, "the trace's original line"),
  metadata: column<string>(
    new Utf8(),
    false,
    "the trace's metadata (JSON object, from ingest): format, tags, source extras",
  ),
} as const;

type Columns = typeof targetsColumns;
export type TargetRow = { -readonly [K in keyof Columns]: Columns[K] extends Column<infer V> ? V : never };

export const targetsSchema = new Schema(
  Object.entries(targetsColumns).map(([name, spec]) => new Field(name, spec.type, spec.nullable)),
);

const targetsStruct = new Struct(targetsSchema.fields);

/** Build one record batch from rows (in schema order). */
export function targetsRecordBatch(rows: readonly TargetRow[]): RecordBatch {
  const children = targetsSchema.fields.map((field) => {
    const builder = makeBuilder({ type: field.type, nullValues: [null, undefined] });
    const name = field.name as keyof TargetRow;
    for (const row of rows) builder.append(row[name]);
    return builder.finish().flush();
  });
  return new RecordBatch(targetsSchema, makeData({ type: targetsStruct, length: rows.length, nullCount: 0, children }));
}

/**
 * Read rows from a targets Arrow file one record batch at a time (a damaged file: an error naming it);
 * `batchOrder` permutes the record batches (see readArrowRows).
 */
export function readTargetRows(path: string, batchOrder?: (count: number) => number[]): AsyncGenerator<TargetRow> {
  const spec = { what: 'a targets file', schema: targetsSchema, rerunHint: TARGETS_RERUN_HINT, rowAt: targetRowAt };
  return readArrowRows(path, spec, batchOrder);
}

export function targetRowAt(batch: RecordBatch, i: number): TargetRow {
  const row: Record<string, unknown> = {};
  for (const field of targetsSchema.fields) {
    const value: unknown = batch.getChild(field.name)?.get(i);
    row[field.name] =
      value !== null && typeof value === 'object' && 'toArray' in value
        ? (value as { toArray(): unknown }).toArray()
        : (value ?? null);
  }
  return row as TargetRow;
}
