/**
 * Writes one split's rows to an Arrow IPC file as a stream of record batches: rows are buffered
 * up to `batchRows`, turned into a record batch, and written; the file footer comes at `close()`.
 * Memory holds one batch and whatever the file stream has not flushed yet.
 */
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { RecordBatchFileWriter } from 'apache-arrow';
import { tracesRecordBatch, tracesSchema, type TraceRow } from '../formats/traces-schema.js';

export class TracesFileWriter {
  private readonly writer = new RecordBatchFileWriter();
  private readonly file: WriteStream;
  private readonly done: Promise<void>;
  private rows: TraceRow[] = [];
  rowCount = 0;

  constructor(readonly path: string, private readonly batchRows: number) {
    this.file = createWriteStream(path);
    this.done = pipeline(this.writer.toNodeStream(), this.file);
    this.done.catch(() => {}); // surfaced by flush() / close()
  }

  /** Buffer a row; returns true when a full batch is waiting for `flush()`. */
  add(row: TraceRow): boolean {
    this.rows.push(row);
    this.rowCount++;
    return this.rows.length >= this.batchRows;
  }

  /** Write buffered rows as one record batch, then wait while the file is far behind. */
  async flush(): Promise<void> {
    if (this.rows.length === 0) return;
    this.writer.write(tracesRecordBatch(this.rows));
    this.rows = [];
    // Backpressure: while the file is saturated, the encoded batches wait in the writer's queue.
    while (this.file.writableNeedDrain && !this.file.destroyed) {
      await Promise.race([once(this.file, 'drain'), this.done]);
    }
  }

  /** Flush, write the footer (an empty file still gets the schema) and close the file. */
  async close(): Promise<void> {
    await this.flush();
    if (this.rowCount === 0) this.writer.reset(undefined, tracesSchema);
    this.writer.finish();
    await this.done;
  }
}
