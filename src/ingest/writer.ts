/**
 * Writes one split's rows to an Arrow IPC file as a stream of record batches: encoded rows are
 * copied into a batch builder up to `batchRows`, turned into a record batch, and written; the file
 * footer comes at `close()`. Memory holds one batch, one 4 MiB write block, and whatever the file
 * stream has not flushed yet.
 */
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import { AsyncByteQueue, RecordBatchFileWriter } from 'apache-arrow';
import { tracesRecordBatch, tracesSchema, type EncodedTraceRows } from '../formats/traces-schema.js';
import { TracesBatchBuilder } from './columns.js';

const WRITE_BLOCK_BYTES = 4 << 20;

export class TracesFileWriter {
  private readonly writer = new RecordBatchFileWriter();
  private readonly file: WriteStream;
  private readonly done: Promise<void>;
  private readonly builder = new TracesBatchBuilder();
  rowCount = 0;

  constructor(readonly path: string, private readonly batchRows: number) {
    this.file = createWriteStream(path);
    this.done = finished(this.file);
    this.done.catch(() => {}); // surfaced by flush() / close()
    this.writer.reset(new BlockSink(this.file));
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
    this.writer.write(tracesRecordBatch(this.builder.view()));
    this.builder.clear(); // BlockSink copied the batch during write(), so its buffers are free again
    while (this.file.writableNeedDrain && !this.file.destroyed) {
      await Promise.race([once(this.file, 'drain'), this.done]);
    }
  }

  /** Flush, write the footer (an empty file still gets the schema) and close the file. */
  async close(): Promise<void> {
    await this.flush();
    if (this.rowCount === 0) this.writer.reset(undefined, tracesSchema);
    this.writer.finish();
    this.writer.close(); // BlockSink.close ends the file
    await this.done;
  }
}

/**
 * The IPC writer's sink. arrow-js writes a record batch into its sink synchronously, as ~100 small
 * buffers (message header, each column's validity, offsets and data, padding). Its default sink
 * queues them for a stream that writes them one by one, a stream round trip and a syscall each
 * (~10% of ingest's main thread), and keeps the batch's buffers alive until then. This sink copies
 * them at once into 4 MiB blocks for the file, so a batch's column buffers are free for the next
 * batch as soon as `write(batch)` returns (fresh buffers per batch kept V8's GC busy).
 */
class BlockSink extends AsyncByteQueue {
  private readonly free: Buffer[] = []; // blocks the file has finished writing
  private block: Buffer = Buffer.allocUnsafeSlow(WRITE_BLOCK_BYTES);
  private used = 0;

  constructor(private readonly file: WriteStream) {
    super();
  }

  override write(value: Uint8Array): void {
    if (this.used + value.byteLength > this.block.length) this.writeBlock();
    if (value.byteLength >= this.block.length) {
      this.file.write(Buffer.from(value)); // rare: a buffer larger than a block, copied as it may be reused
      return;
    }
    this.block.set(value, this.used);
    this.used += value.byteLength;
  }

  override close(): void {
    this.writeBlock();
    this.file.end();
    super.close();
  }

  private writeBlock(): void {
    if (this.used === 0) return;
    const written = this.block;
    this.file.write(written.subarray(0, this.used), () => this.free.push(written));
    this.block = this.free.pop() ?? Buffer.allocUnsafeSlow(WRITE_BLOCK_BYTES);
    this.used = 0;
  }
}
