/**
 * Column builders for traces rows: values are written straight into Arrow's buffer layout
 * (validity bitmap, int32 offsets, UTF-8 bytes), ready for `tracesRecordBatch` or for transfer
 * between threads. This module does not import arrow-js: parse workers use it, and loading
 * arrow-js costs each worker ~130 ms of CPU at start.
 */
import type { EncodedTraceRows, MessageColumn, TracesTextColumn, Utf8Buffers } from '../formats/traces-schema.js';

// The schema's text columns and message fields, in schema order; the checks below make the
// compiler reject a list that misses a column of the schema.
const TEXT_COLUMNS = [
  'id',
  'conversation_id',
  'completion',
  'completion_tool_calls',
  'tools',
  'model',
  'source_file',
  'split',
  'metadata',
] as const satisfies readonly TracesTextColumn[];
const MESSAGE_COLUMNS = [
  'role',
  'content',
  'name',
  'tool_calls',
  'tool_call_id',
] as const satisfies readonly MessageColumn[];
type Covers<All, Listed> = [Exclude<All, Listed>] extends [never] ? true : never;
const textColumnsComplete: Covers<TracesTextColumn, (typeof TEXT_COLUMNS)[number]> = true;
const messageColumnsComplete: Covers<MessageColumn, (typeof MESSAGE_COLUMNS)[number]> = true;
void textColumnsComplete;
void messageColumnsComplete;

/** Encoded rows and byte arrays copied into one ArrayBuffer, `memory`, to hand to another thread. */
export interface PackedRows {
  memory: ArrayBuffer;
  rows: EncodedTraceRows[];
  bytes: Uint8Array[];
}

/**
 * Copy encoded rows (~90 typed arrays each) and byte arrays into one ArrayBuffer: a large enough
 * one from `spares` (memory the other thread gave back; it is removed from the list), else a new
 * one. Handing a block to another thread as one reused allocation, rather than the builder's own
 * buffers or a new ArrayBuffer per block, keeps both threads' allocation and so their garbage
 * collection low (new ArrayBuffers count as external memory, which triggers full GCs).
 */
export function packEncoded(
  rowSets: readonly EncodedTraceRows[],
  byteArrays: readonly Uint8Array[],
  spares: ArrayBuffer[],
): PackedRows {
  let total = 0;
  const measure = (view: ArrayBufferView): void => {
    total = align8(total) + view.byteLength;
  };
  const measureColumn = (column: Utf8Buffers): void => {
    measure(column.offsets);
    measure(column.bytes);
    measure(column.validity);
  };
  for (const rows of rowSets) {
    for (const name of TEXT_COLUMNS) measureColumn(rows.text[name]);
    for (const name of MESSAGE_COLUMNS) measureColumn(rows.messages[name]);
    for (const view of [rows.turnIndex, rows.sourceLine, rows.createdAtMs, rows.messageOffsets]) measure(view);
  }
  for (const view of byteArrays) measure(view);
  const spare = spares.findIndex((memory) => memory.byteLength >= total);
  // New memory gets some headroom, so that it can be reused for the somewhat larger blocks that follow.
  const memory = spare >= 0 ? spares.splice(spare, 1)[0] : new ArrayBuffer(align8(Math.ceil(total * 1.25)));
  let at = 0;
  function copy(view: Int32Array): Int32Array;
  function copy(view: Float64Array): Float64Array;
  function copy(view: Uint8Array): Uint8Array;
  function copy(view: Int32Array | Float64Array | Uint8Array): Int32Array | Float64Array | Uint8Array {
    at = align8(at);
    const copied =
      view instanceof Int32Array
        ? new Int32Array(memory, at, view.length)
        : view instanceof Float64Array
          ? new Float64Array(memory, at, view.length)
          : new Uint8Array(memory, at, view.length);
    copied.set(view);
    at += view.byteLength;
    return copied;
  }
  const copyColumn = (column: Utf8Buffers): Utf8Buffers => ({
    length: column.length,
    nullCount: column.nullCount,
    offsets: copy(column.offsets),
    bytes: copy(column.bytes),
    validity: copy(column.validity),
  });
  // Same order as measured above.
  const rows = rowSets.map((source) => ({
    length: source.length,
    text: mapColumns(TEXT_COLUMNS, (name) => copyColumn(source.text[name])),
    messages: mapColumns(MESSAGE_COLUMNS, (name) => copyColumn(source.messages[name])),
    turnIndex: copy(source.turnIndex),
    sourceLine: copy(source.sourceLine),
    createdAtMs: copy(source.createdAtMs),
    messageOffsets: copy(source.messageOffsets),
  }));
  const bytes = byteArrays.map((view) => copy(view));
  return { memory, rows, bytes };
}

const align8 = (n: number): number => (n + 7) & ~7;

/**
 * Rows a builder holds before it grows: a block of ingest (1 MiB of input) or a record batch fits,
 * so the columns do not grow once V8 has optimised the code that fills them. A first growth there
 * runs code it has no feedback for, which throws the optimised code away (and the large functions
 * it was inlined into) to be compiled again: ~0.1 CPU-s per GB of input and thread, measured.
 * (Byte capacity still grows with the texts; rows were what grew after warm-up.)
 */
export const ROW_CAPACITY = 4096;

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
  private lastString: string | null = null; // the last string appended, while its bytes end the buffer
  length = 0;

  constructor(rowCapacity = ROW_CAPACITY, byteCapacity = 1 << 16) {
    this.bytes = Buffer.allocUnsafeSlow(byteCapacity);
    this.offsets = new Int32Array(rowCapacity + 1);
    this.validity = new Uint8Array((rowCapacity + 7) >> 3);
  }

  /**
   * Append a string. Columns such as source_file, split, model and metadata repeat the previous
   * row's value most of the time: then its bytes are copied rather than encoded again (each
   * `Buffer.write` is a call into C++, which dominates for short strings).
   */
  appendString(value: string | null): void {
    if (value === null) {
      this.appendNull();
      return;
    }
    if (value === this.lastString && this.length > 0) {
      const start = this.offsets[this.length - 1];
      this.appendBytes(this.bytes, start, this.offsets[this.length]);
      return;
    }
    this.reserveBytes(value.length * 3); // UTF-8 needs at most 3 bytes per UTF-16 unit
    const i = this.nextRow();
    this.byteLength += this.bytes.write(value, this.byteLength, 'utf8');
    this.validity[i >> 3] |= 1 << (i & 7);
    this.offsets[i + 1] = this.byteLength;
    this.lastString = value;
  }

  /** Append `source[start, end)`, already UTF-8 (`source` may be this column's own bytes, before the end). */
  appendBytes(source: Uint8Array, start: number, end: number): void {
    const count = end - start;
    const own = source === this.bytes;
    this.reserveBytes(count);
    if (own) source = this.bytes; // reserveBytes may have moved them
    const i = this.nextRow();
    copyBytes(source, start, end, this.bytes, this.byteLength);
    this.byteLength += count;
    this.validity[i >> 3] |= 1 << (i & 7);
    this.offsets[i + 1] = this.byteLength;
    this.lastString = null;
  }

  /** Append a value of `byteCount` bytes that are written later (`setHex`). */
  appendUnset(byteCount: number): void {
    this.reserveBytes(byteCount);
    const i = this.nextRow();
    this.byteLength += byteCount;
    this.validity[i >> 3] |= 1 << (i & 7);
    this.offsets[i + 1] = this.byteLength;
    this.lastString = null;
  }

  /**
   * Write `source[at, at + count)` as 2·count lowercase hex digits over row `row`'s value
   * (appended by `appendUnset(2 * count)`).
   */
  setHex(row: number, source: Uint8Array, at: number, count: number): void {
    const bytes = this.bytes;
    let to = this.offsets[row];
    for (let k = at; k < at + count; k++) {
      const b = source[k];
      bytes[to++] = HEX_DIGITS[b >> 4];
      bytes[to++] = HEX_DIGITS[b & 15];
    }
  }

  appendNull(): void {
    const i = this.nextRow();
    this.nullCount++;
    this.offsets[i + 1] = this.byteLength;
    this.lastString = null;
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
    const offsets = this.offsets;
    const sourceOffsets = source.offsets;
    for (let k = from; k < to; k++) offsets[base + k + 1] = sourceOffsets[k + 1] + shift;
    const validity = this.validity;
    if (source.nullCount === 0) setBits(validity, this.length, to - from);
    else {
      for (let k = from; k < to; k++) {
        const i = base + k;
        if (source.validity[k >> 3] & (1 << (k & 7))) validity[i >> 3] |= 1 << (i & 7);
        else this.nullCount++;
      }
    }
    this.length += to - from;
    this.byteLength += byteCount;
    this.lastString = null;
  }

  /** Empty the column, keeping its memory. */
  clear(): void {
    this.validity.fill(0, 0, (this.length + 7) >> 3);
    this.length = 0;
    this.byteLength = 0;
    this.nullCount = 0;
    this.lastString = null;
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

/** Set bits [start, start + count) of a bitmap (least significant bit first, as Arrow's validity). */
function setBits(bitmap: Uint8Array, start: number, count: number): void {
  let bit = start;
  const end = start + count;
  for (; bit < end && bit & 7; bit++) bitmap[bit >> 3] |= 1 << (bit & 7);
  const fullEnd = end & ~7;
  if (bit < fullEnd) {
    bitmap.fill(0xff, bit >> 3, fullEnd >> 3);
    bit = fullEnd;
  }
  for (; bit < end; bit++) bitmap[bit >> 3] |= 1 << (bit & 7);
}

const HEX_DIGITS = Uint8Array.from('0123456789abcdef', (c) => c.charCodeAt(0));

/**
 * memcpy. Most values here are a few bytes (roles, empty names): a loop beats `set(subarray())`,
 * which allocates a view per call; long texts use `set`.
 */
function copyBytes(source: Uint8Array, start: number, end: number, target: Uint8Array, at: number): void {
  if (end - start < 48) {
    for (let k = start; k < end; k++) target[at++] = source[k];
  } else target.set(source.subarray(start, end), at);
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

  clear(): void {
    this.length = 0;
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
 * `endRow(turnIndex, sourceLine, createdAtMs)`. `view()` shows the rows (to wrap as a record
 * batch, or to pack for another thread); `clear()` then empties the builder and keeps its memory.
 */
export class TracesBatchBuilder {
  readonly text = mapColumns(TEXT_COLUMNS, () => new Utf8Column());
  readonly message = mapColumns(MESSAGE_COLUMNS, () => new Utf8Column(4 * ROW_CAPACITY, 1 << 18));
  /** The message columns in schema order (role, content, name, tool_calls, tool_call_id). */
  readonly messageList: Utf8Column[] = MESSAGE_COLUMNS.map((name) => this.message[name]);
  private readonly turnIndex = new NumberColumn<Int32Array>(new Int32Array(ROW_CAPACITY));
  private readonly sourceLine = new NumberColumn<Int32Array>(new Int32Array(ROW_CAPACITY));
  private readonly createdAtMs = new NumberColumn<Float64Array>(new Float64Array(ROW_CAPACITY));
  private readonly messageOffsets = new NumberColumn<Int32Array>(new Int32Array(ROW_CAPACITY + 1));
  length = 0;

  constructor() {
    this.messageOffsets.push(0);
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

  /** The rows as views onto this builder's memory: valid until the builder is changed. */
  view(): EncodedTraceRows {
    this.check();
    return {
      length: this.length,
      text: mapColumns(TEXT_COLUMNS, (name) => this.text[name].buffers()),
      turnIndex: this.turnIndex.trimmed(),
      sourceLine: this.sourceLine.trimmed(),
      createdAtMs: this.createdAtMs.trimmed(),
      messageOffsets: this.messageOffsets.trimmed(),
      messages: mapColumns(MESSAGE_COLUMNS, (name) => this.message[name].buffers()),
    };
  }

  /** Drop all rows, keeping the memory (once whatever used `view()` is done with it). */
  clear(): void {
    for (const name of TEXT_COLUMNS) this.text[name].clear();
    for (const column of this.messageList) column.clear();
    this.turnIndex.clear();
    this.sourceLine.clear();
    this.createdAtMs.clear();
    this.messageOffsets.clear();
    this.messageOffsets.push(0);
    this.length = 0;
  }

  private check(): void {
    for (const name of TEXT_COLUMNS) {
      if (this.text[name].length !== this.length)
        throw new Error(`TracesBatchBuilder: column ${name} has ${this.text[name].length} values, ${this.length} rows`);
    }
    for (const name of MESSAGE_COLUMNS) {
      if (this.message[name].length !== this.message.role.length)
        throw new Error(`TracesBatchBuilder: message column ${name} is ragged`);
    }
  }
}

function mapColumns<K extends string, V>(names: readonly K[], make: (name: K) => V): Record<K, V> {
  const out = {} as Record<K, V>;
  for (const name of names) out[name] = make(name);
  return out;
}
