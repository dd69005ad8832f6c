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

/** A block of JSON Lines: line i is `bytes[ends[i-1], ends[i])`, numbered `lines[i]`; failures replace some lines. */
export interface BlockRequest {
  settings: FileSettings;
  bytes: Uint8Array;
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
      this.workers[index].postMessage(request, [request.bytes.buffer as ArrayBuffer, request.ends.buffer as ArrayBuffer, request.lines.buffer as ArrayBuffer]);
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

/** Pack consecutive split entries into one block request (copying the line bytes into one transferable buffer). */
export function packBlock(settings: FileSettings, entries: ReadonlyArray<RawRecord | LineBytes>, from: number): BlockRequest {
  let total = 0;
  for (let i = from; i < entries.length; i++) {
    const entry = entries[i];
    if ('bytes' in entry) total += entry.bytes.length;
  }
  const count = entries.length - from;
  const bytes = new Uint8Array(total);
  const ends = new Int32Array(count);
  const lines = new Int32Array(count);
  const failures: BlockRequest['failures'] = [];
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const entry = entries[from + i];
    if ('bytes' in entry) {
      bytes.set(entry.bytes, offset);
      offset += entry.bytes.length;
    } else failures.push({ index: i, record: entry });
    ends[i] = offset;
    lines[i] = entry.line;
  }
  return { settings: { ...settings }, bytes, ends, lines, failures };
}
