/**
 * Parse workers for large inputs. Parsing, normalising, hashing and encoding samples is ~3/4 of
 * ingest's CPU time and each record is independent, so the main thread only reads, splits lines
 * into blocks, and hands the blocks to worker threads; it then consumes their results strictly in
 * submission order (dedup, batch boundaries and writing need one sequential view), so output is
 * identical to the single-threaded path. The caller bounds the blocks in flight, which bounds memory.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { FileSettings, ProcessedBlock } from './process.js';
import type { LineBytes, RawRecord } from './sources.js';

/** A block of JSON Lines: line i is `buffers[source[i]][starts[i], ends[i])`, numbered `lines[i]`. */
export interface BlockRequest {
  settings: FileSettings;
  buffers: Uint8Array[];
  source: Uint8Array;
  starts: Int32Array;
  ends: Int32Array;
  lines: Int32Array;
  /** Records that failed before parsing (oversized lines), by index, ascending; their byte range is empty. */
  failures: Array<{ index: number; record: RawRecord }>;
}

export type BlockResponse = { ok: true; block: ProcessedBlock } | { ok: false; message: string; stack: string };

// The worker runs compiled JavaScript: under vitest (TypeScript sources) it does not exist, and
// ingest stays on the main thread.
const WORKER_URL = new URL('./parse-worker.js', import.meta.url);

/** Whether parse workers can be started from this build. */
export function parseWorkersAvailable(): boolean {
  return WORKER_URL.protocol === 'file:' && existsSync(fileURLToPath(WORKER_URL));
}

interface Pending {
  resolve(block: ProcessedBlock): void;
  reject(error: Error): void;
}

export class ParsePool {
  private readonly workers: Worker[] = [];
  private readonly pending: Pending[][] = [];
  private next = 0;
  private failure: Error | undefined;

  constructor(count: number) {
    for (let i = 0; i < count; i++) {
      const worker = new Worker(WORKER_URL);
      const queue: Pending[] = [];
      worker.on('message', (response: BlockResponse) => {
        const waiting = queue.shift();
        if (!waiting) return;
        if (response.ok) waiting.resolve(response.block);
        else {
          const error = new Error(response.message);
          error.stack = response.stack;
          waiting.reject(error);
        }
      });
      worker.on('error', (error) => this.fail(error));
      worker.on('exit', (code) => {
        if (queue.length) this.fail(new Error(`parse worker exited (code ${code}) with ${queue.length} blocks pending`));
      });
      this.workers.push(worker);
      this.pending.push(queue);
    }
  }

  get size(): number {
    return this.workers.length;
  }

  /** Process a block on the next worker (round robin); its buffers are transferred, not copied. */
  submit(request: BlockRequest): Promise<ProcessedBlock> {
    if (this.failure) return Promise.reject(this.failure);
    const index = this.next;
    this.next = (this.next + 1) % this.workers.length;
    return new Promise<ProcessedBlock>((resolve, reject) => {
      this.pending[index].push({ resolve, reject });
      const transfer = [...request.buffers, request.source, request.starts, request.ends, request.lines].map((view) => view.buffer as ArrayBuffer);
      this.workers[index].postMessage(request, transfer);
    });
  }

  async close(): Promise<void> {
    this.failure ??= new Error('parse pool closed');
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const queue of this.pending) for (const waiting of queue.splice(0)) waiting.reject(error);
  }
}

/**
 * Pack split entries `[from, ...)` into one block request. With `handOver` (the chunks are fresh
 * memory that nothing else holds: a plain file's read stream), a line stays in its chunk and the
 * chunk's memory is transferred to the worker, which saves copying the input on the main thread;
 * otherwise, and for small buffers (which may be slices of Node's shared Buffer pool), lines are
 * copied into one new buffer.
 */
export function packBlock(settings: FileSettings, entries: ReadonlyArray<RawRecord | LineBytes>, from: number, handOver: boolean): BlockRequest {
  const count = entries.length - from;
  const source = new Uint8Array(count);
  const starts = new Int32Array(count);
  const ends = new Int32Array(count);
  const lines = new Int32Array(count);
  const failures: BlockRequest['failures'] = [];
  const owned = (bytes: Buffer): boolean => handOver && bytes.buffer.byteLength > Buffer.poolSize;
  const buffers: Uint8Array[] = [];
  let copiedBytes = 0;
  for (let i = from; i < entries.length; i++) {
    const entry = entries[i];
    if ('bytes' in entry && !owned(entry.bytes)) copiedBytes += entry.bytes.length;
  }
  const copied = new Uint8Array(copiedBytes);
  buffers.push(copied);
  let copiedEnd = 0;
  for (let i = 0; i < count; i++) {
    const entry = entries[from + i];
    lines[i] = entry.line;
    if (!('bytes' in entry)) {
      failures.push({ index: i, record: entry });
      continue;
    }
    const bytes = entry.bytes;
    if (owned(bytes)) {
      let at = buffers.length - 1;
      if (buffers[at].buffer !== bytes.buffer) {
        buffers.push(new Uint8Array(bytes.buffer as ArrayBuffer));
        at++;
      }
      source[i] = at;
      starts[i] = bytes.byteOffset;
      ends[i] = bytes.byteOffset + bytes.length;
    } else {
      copied.set(bytes, copiedEnd);
      starts[i] = copiedEnd;
      copiedEnd += bytes.length;
      ends[i] = copiedEnd;
    }
  }
  if (buffers.length > 256) throw new Error('packBlock: too many buffers in one block'); // source indices are bytes
  return { settings: { ...settings }, buffers, source, starts, ends, lines, failures };
}
