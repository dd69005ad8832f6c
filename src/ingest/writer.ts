/**
 * Writes one split's rows to an Arrow IPC file as a stream of record batches: encoded rows are
 * copied into a batch builder up to `batchRows`, turned into a record batch, and written; the file
 * footer comes at `close()`. Memory holds one batch and whatever the file stream has not flushed yet.
 */
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { RecordBatchFileWriter } from 'apache-arrow';
import { TracesBatchBuilder, tracesSchema, type EncodedTraceRows } from '../formats/traces-schema.js';

export class TracesFileWriter {
  private readonly writer = new RecordBatchFileWriter();
  private readonly file: WriteStream;
  private readonly done: Promise<void>;
  private readonly builder = new TracesBatchBuilder();
  rowCount = 0;

  constructor(readonly path: string, private readonly batchRows: number) {
    this.file = createWriteStream(path);
    this.done = pipeline(this.writer.toNodeStream(), this.file);
    this.done.catch(() => {}); // surfaced by flush() / close()
  }

  /** Append rows `[from, to)` of `rows`, writing each batch as it fills. */
  async addRows(rows: EncodedTraceRows, from: number, to: number): Promise<void> {
    while (from < to) {
      const count = Math.min(to - from, this.batchRows - this.builder.length);
      this.builder.appendRows(rows, from, from + count);
      this.rowCount += count;
      from += count;
      if (this.builder.length >= this.batchRows) await this.flush();
    }
  }

  /** Write buffered rows as one record batch, then wait while the file is far behind. */
  async flush(): Promise<void> {
    if (this.builder.length === 0) return;
    this.writer.write(this.builder.toRecordBatch());
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
