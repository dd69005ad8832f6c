/**
 * The one reader path for fireopt's Arrow IPC files (traces and targets): a cheap check of the
 * file's framing before a stage starts work, and a streaming row reader that turns arrow-js's
 * failures on a damaged file ("Cannot read properties of null (reading 'fieldsLength')") into an
 * input error naming the file, what is wrong and the command that rewrites it.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { RecordBatchReader, type RecordBatch, type Schema } from 'apache-arrow';
import { FireoptError, InputError } from '../errors.js';

/** The IPC file format starts and ends with these bytes; the stream format starts with a 0xFFFFFFFF continuation. */
const FILE_MAGIC = Buffer.from('ARROW1', 'latin1');
const STREAM_CONTINUATION = Buffer.from([0xff, 0xff, 0xff, 0xff]);

/** What a reader expects of a file, for its checks and messages. */
export interface ArrowFileSpec<Row> {
  /** "a traces file", "a targets file". */
  what: string;
  schema: Schema;
  /** The command that writes the file, for the hint. */
  rerunHint: string;
  rowAt(batch: RecordBatch, i: number): Row;
}

function damaged(path: string, why: string, rerunHint: string): InputError {
  const hint = `HINT: re-run \`${rerunHint}\` to write it again`;
  return new InputError(`${path}: damaged Arrow file: ${why}`, hint, 'E_ARROW');
}

/**
 * Check that `path` is a whole Arrow IPC file (magic at both ends) without reading it; throws an
 * InputError naming the file. A stage calls this before it starts work (or a resume journal).
 */
export function checkArrowFile(path: string, rerunHint: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'missing' : `cannot be read (${code})`;
    throw new InputError(`${path}: ${why}`, `HINT: re-run \`${rerunHint}\``);
  }
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(FILE_MAGIC.length);
    readSync(fd, head, 0, head.length, 0);
    // The stream format has no footer: it is checked as it is read.
    if (head.subarray(0, STREAM_CONTINUATION.length).equals(STREAM_CONTINUATION)) return;
    if (!head.equals(FILE_MAGIC)) {
      const why = size === 0 ? 'the file is empty' : 'it does not start with the Arrow magic bytes (not an Arrow file)';
      throw damaged(path, why, rerunHint);
    }
    const tail = Buffer.alloc(FILE_MAGIC.length);
    readSync(fd, tail, 0, tail.length, Math.max(0, size - tail.length));
    if (size < 2 * FILE_MAGIC.length + 4 || !tail.equals(FILE_MAGIC)) {
      const why = `the file ends after ${size} bytes without the Arrow footer (truncated: a copy or a write cut short)`;
      throw damaged(path, why, rerunHint);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Rows of an Arrow file, one record batch at a time (memory stays flat), after checking its framing
 * and columns. A damaged file gives an InputError naming it, never an arrow-js internal error.
 * `batchOrder` reads the record batches in another order (random access through the file's footer):
 * given their count, it returns a permutation of 0 … count − 1.
 */
export async function* readArrowRows<Row>(
  path: string,
  spec: ArrowFileSpec<Row>,
  batchOrder?: (count: number) => number[],
): AsyncGenerator<Row> {
  checkArrowFile(path, spec.rerunHint);
  const handle = await open(path, 'r');
  try {
    let reader: RecordBatchReader;
    try {
      reader = await RecordBatchReader.from(handle);
      await reader.open();
    } catch (error) {
      throw damaged(path, `its schema cannot be read (${(error as Error).message})`, spec.rerunHint);
    }
    const names = reader.schema.fields.map((f) => f.name).join(',');
    if (names !== spec.schema.fields.map((f) => f.name).join(',')) {
      const hint = `HINT: re-run \`${spec.rerunHint}\``;
      throw new InputError(`${path}: not ${spec.what} (columns ${names})`, hint, 'E_SCHEMA_VERSION');
    }
    const unreadable = (index: number, error: unknown) =>
      error instanceof FireoptError
        ? error
        : damaged(path, `record batch ${index + 1} cannot be read (${(error as Error).message})`, spec.rerunHint);
    if (batchOrder && reader.isFile()) {
      for (const index of batchOrder(reader.numRecordBatches)) {
        let batch: RecordBatch | null;
        try {
          batch = await reader.readRecordBatch(index);
        } catch (error) {
          throw unreadable(index, error);
        }
        if (!batch) throw unreadable(index, new Error('missing'));
        for (let i = 0; i < batch.numRows; i++) yield spec.rowAt(batch, i);
      }
      return;
    }
    let batches = 0;
    const iterator = reader[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<RecordBatch>;
      try {
        next = await iterator.next();
      } catch (error) {
        throw unreadable(batches, error);
      }
      if (next.done) break;
      batches++;
      for (let i = 0; i < next.value.numRows; i++) yield spec.rowAt(next.value, i);
    }
  } finally {
    await handle.close();
  }
}
