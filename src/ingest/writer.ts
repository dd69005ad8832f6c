/**
 * Writes one split's rows to an Arrow IPC file as a stream of record batches: encoded rows are
 * copied into a batch builder up to `batchRows`, turned into a record batch, and written; the file
 * footer comes at `close()`. Memory holds one batch.
 */
import { closeSync, openSync, writevSync } from 'node:fs';
import { AsyncByteQueue, RecordBatchFileWriter, type RecordBatch } from 'apache-arrow';
import { tracesRecordBatch, tracesSchema, type EncodedTraceRows } from '../formats/traces-schema.js';
import { TracesBatchBuilder } from './columns.js';

export class TracesFileWriter {
  private readonly writer = new RecordBatchFileWriter();
  private readonly sink: GatherSink;
  private readonly builder = new TracesBatchBuilder();
  rowCount = 0;

  constructor(
    readonly path: string,
    private readonly batchRows: number,
  ) {
    this.sink = new GatherSink(openSync(path, 'w'));
    this.writer.reset(this.sink);
  }

  /** Append rows `[from, to)` of `rows`, writing each batch as it fills. */
  addRows(rows: EncodedTraceRows, from: number, to: number): void {
    while (from < to) {
      const count = Math.min(to - from, this.batchRows - this.builder.length);
      this.builder.appendRows(rows, from, from + count);
      this.rowCount += count;
      from += count;
      if (this.builder.length >= this.batchRows) this.flush();
    }
  }

  /** Append a record batch of the traces schema as it is (`fireopt merge` copies shards' slices). */
  addBatch(batch: RecordBatch): void {
    this.flush();
    this.writer.write(batch);
    this.sink.writeGathered();
    this.rowCount += batch.numRows;
  }

  /** Write buffered rows as one record batch. */
  flush(): void {
    if (this.builder.length === 0) return;
    this.writer.write(tracesRecordBatch(this.builder.view()));
    this.sink.writeGathered(); // the batch is on disk: its buffers are free again
    this.builder.clear();
  }

  /** Flush, write the footer (an empty file still gets the schema) and close the file. */
  close(): void {
    this.flush();
    if (this.rowCount === 0) this.writer.reset(undefined, tracesSchema);
    this.writer.finish(); // also closes the sink, which writes what is left and closes the file
    this.writer.close();
  }

  /** Close the file without finishing it (the run failed; its staging directory is removed). */
  abandon(): void {
    this.sink.closeFile();
  }
}

/**
 * The IPC writer's sink. arrow-js writes a record batch into its sink synchronously, as ~100 small
 * buffers (message header, each column's validity, offsets and data, padding), most of them views
 * of the batch builder's memory. Its default sink queues them for a stream that writes them one by
 * one, a stream round trip and a syscall each; copying them into large blocks for a stream cost a
 * memcpy of the whole output and a thread hop per block. This sink only collects them, and
 * `writeGathered` hands them to the kernel in one `writev` once the batch is complete, after which
 * the builder's memory may be reused.
 */
class GatherSink extends AsyncByteQueue {
  private pending: Uint8Array[] = [];
  private fd: number | undefined;

  constructor(fd: number) {
    super();
    this.fd = fd;
  }

  override write(value: Uint8Array): void {
    if (value.byteLength > 0) this.pending.push(value);
  }

  /** Write every buffer collected so far. */
  writeGathered(): void {
    if (this.fd === undefined) throw new Error('GatherSink: the file is closed');
    let buffers = this.pending;
    this.pending = [];
    // writev may write less than asked (e.g. a signal); write the rest.
    while (buffers.length > 0) {
      let written = writevSync(this.fd, buffers);
      let done = 0;
      while (done < buffers.length && written >= buffers[done].byteLength) written -= buffers[done++].byteLength;
      buffers = buffers.slice(done);
      if (written > 0) buffers[0] = buffers[0].subarray(written);
    }
  }

  /** Write what is left and close the file (arrow-js calls this from `finish()` and again from `close()`). */
  override close(): void {
    if (this.fd !== undefined) {
      this.writeGathered();
      this.closeFile();
    }
    super.close();
  }

  closeFile(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}
