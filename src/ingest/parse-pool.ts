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
import { FAILED_RECORD, type FileSettings, type ProcessedBlock } from './process.js';
import type { ChunkPool, LineBlock, RawRecord } from './sources.js';

/**
 * Records `[from, count)` of a `LineBlock`, for a worker: `chunk` (transferred) holds the records
 * at `starts[i] >= 0`, `head` the one at `HEAD_RECORD`, and `failures` (in order) those at `FAILED_RECORD`.
 */
export interface BlockRequest {
  settings: FileSettings;
  chunk: Uint8Array;
  head: Uint8Array | undefined;
  lines: Int32Array;
  starts: Int32Array;
  ends: Int32Array;
  failures: RawRecord[];
  /** Memory of consumed blocks, given back for the worker to pack later blocks into. */
  spares: ArrayBuffer[];
}

/** A processed block (packed into `block.memory`), and the request's chunk memory, given back to be read into again. */
export type BlockResponse =
  | { ok: true; block: ProcessedBlock; chunk: ArrayBuffer }
  | { ok: false; message: string; stack: string };

/** What a worker sends once, when it has loaded its code and waits for blocks. */
export interface WorkerReady {
  ready: true;
}

// The worker runs compiled JavaScript: under vitest (TypeScript sources) it does not exist, and
// ingest stays on the main thread.
const WORKER_URL = new URL('./parse-worker.js', import.meta.url);

/** Whether parse workers can be started from this build. */
export function parseWorkersAvailable(): boolean {
  return WORKER_URL.protocol === 'file:' && existsSync(fileURLToPath(WORKER_URL));
}

/**
 * Blocks sent to a worker and not yet back, from which it counts as busy: enough that it is never
 * idle while the main thread parses a block itself (see `IngestRun.ingestFile`).
 */
const BUSY_BLOCKS = 3;

interface Pending {
  resolve(block: ProcessedBlock): void;
  reject(error: Error): void;
}

export class ParsePool {
  private readonly workers: Worker[] = [];
  private readonly pending: Pending[][] = [];
  private readonly ready: boolean[] = [];
  private readonly spares: ArrayBuffer[] = [];
  private next = 0;
  private failure: Error | undefined;

  /** `chunks` gets back the input chunks that blocks were read from, once a worker is done with them. */
  constructor(
    count: number,
    private readonly chunks: ChunkPool,
  ) {
    for (let i = 0; i < count; i++) {
      const worker = new Worker(WORKER_URL);
      const queue: Pending[] = [];
      this.ready.push(false);
      worker.on('message', (response: BlockResponse | WorkerReady) => {
        if ('ready' in response) {
          this.ready[i] = true;
          return;
        }
        const waiting = queue.shift();
        if (!waiting) return;
        if (response.ok) {
          this.chunks.give(response.chunk);
          waiting.resolve(response.block);
        } else {
          const error = new Error(response.message);
          error.stack = response.stack;
          waiting.reject(error);
        }
      });
      worker.on('error', (error) => this.fail(error));
      worker.on('exit', (code) => {
        if (queue.length)
          this.fail(new Error(`parse worker exited (code ${code}) with ${queue.length} blocks pending`));
      });
      this.workers.push(worker);
      this.pending.push(queue);
    }
  }

  get size(): number {
    return this.workers.length;
  }

  /**
   * Whether every worker is still starting (~50 ms: a new isolate loads the parse code) or has
   * blocks waiting besides the one it is on: another block sent now would only wait.
   */
  busy(): boolean {
    return this.pending.every((queue, i) => !this.ready[i] || queue.length >= BUSY_BLOCKS);
  }

  /** Process a block on the next worker (round robin); its buffers are transferred, not copied. */
  submit(request: BlockRequest): Promise<ProcessedBlock> {
    if (this.failure) return Promise.reject(this.failure);
    const index = this.next;
    this.next = (this.next + 1) % this.workers.length;
    const spare = this.spares.pop();
    if (spare) request.spares.push(spare);
    return new Promise<ProcessedBlock>((resolve, reject) => {
      this.pending[index].push({ resolve, reject });
      // The small arrays (lines, starts, ends, head) are copied; chunk and spares are moved.
      this.workers[index].postMessage(request, [request.chunk.buffer as ArrayBuffer, ...request.spares]);
    });
  }

  /** A consumed block's memory, for a worker to pack a later block into. */
  giveBack(block: ProcessedBlock): void {
    if (block.memory && this.spares.length < 2 * this.workers.length) this.spares.push(block.memory);
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
 * Records `[from, block.count)` of a block, as a request for a worker. With `handOver` (the chunk
 * is fresh memory that nothing else holds: a plain file's chunk from the `ChunkPool`), the chunk's
 * memory itself goes to the worker, which gives it back; otherwise (zlib and stdin reuse theirs)
 * the chunk is copied into pooled memory first.
 */
export function packBlock(
  settings: FileSettings,
  block: LineBlock,
  from: number,
  handOver: boolean,
  chunks: ChunkPool,
): BlockRequest {
  let chunk: Uint8Array = block.chunk;
  if (!handOver || chunk.byteOffset !== 0) {
    chunk = chunks.bytes(block.chunk.length);
    chunk.set(block.chunk);
  }
  let failureFrom = 0;
  for (let i = 0; i < from; i++) if (block.starts[i] === FAILED_RECORD) failureFrom++;
  return {
    settings: { ...settings },
    chunk,
    head: from === 0 && block.head ? new Uint8Array(block.head) : undefined,
    lines: block.lines.slice(from, block.count),
    starts: block.starts.slice(from, block.count),
    ends: block.ends.slice(from, block.count),
    failures: block.failures.slice(failureFrom),
    spares: [],
  };
}
