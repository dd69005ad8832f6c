/**
 * Input sources: resolve paths, globs and `-` to files; stream each one's bytes (gunzipping when
 * the bytes start with the gzip magic) while hashing the raw bytes; split the stream into records.
 *
 * Records are split by hand on raw bytes rather than with readline because readline decodes first:
 * it replaces invalid UTF-8 silently (we must reject such lines) and buffers a line of any length
 * (we must reject oversized lines without holding them).
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { glob, isDynamicPattern } from 'tinyglobby';
import { FireoptError, InputError, describeError } from '../errors.js';
import {
  EXCERPT_BYTES,
  FAILED_RECORD,
  HEAD_RECORD,
  decodeRecord,
  recordAt,
  type LineBlock,
  type RawRecord,
} from './blocks.js';

// Re-exported so that ingest's driver reads every piece of its input side from one module.
export { FAILED_RECORD, HEAD_RECORD, recordAt, type LineBlock, type RawRecord };

export const STDIN_NAME = '-';

/** Expand globs (sorted, each pattern's matches in order) and check that plain paths exist. */
export async function resolveInputs(patterns: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const pattern of patterns) {
    if (pattern === STDIN_NAME) {
      files.push(pattern);
      continue;
    }
    const stats = statOrUndefined(pattern);
    if (stats?.isFile()) {
      files.push(pattern);
    } else if (stats?.isDirectory()) {
      throw new InputError(`${pattern}: is a directory`, `HINT: pass its files, e.g. '${pattern}/*.jsonl'`);
    } else if (isDynamicPattern(pattern)) {
      const matches = (
        await glob(pattern, { onlyFiles: true, expandDirectories: false, absolute: isAbsolute(pattern) })
      ).sort();
      if (matches.length === 0) throw new InputError(`${pattern}: no files match this pattern`);
      files.push(...matches);
    } else {
      throw new InputError(`${pattern}: no such file`);
    }
  }
  return [...new Set(files)];
}

function statOrUndefined(path: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** What is known about one input once it has been read. */
export interface SourceStats {
  bytes: number;
  sha256: string;
  gzip: boolean;
}

/** An opened input: its decompressed byte chunks, and stats complete once they are consumed. */
export interface OpenedSource {
  /**
   * A plain file's chunks are read into memory from a `ChunkPool`: each chunk is valid until the
   * next one is requested, and then read into again unless it was transferred to another thread
   * (detached), in which case its memory comes back through `ChunkPool.give` once that thread is done.
   */
  chunks: AsyncIterable<Buffer>;
  stats(): SourceStats;
  /**
   * True when each chunk's memory may be transferred to another thread (a plain file's chunks);
   * zlib and stdin keep and reuse theirs.
   */
  chunksOwned(): boolean;
}

export const CHUNK_BYTES = 1 << 20;
const MAX_FREE_CHUNKS = 16;

/**
 * Read buffers for plain files, reused: a fresh 1 MiB ArrayBuffer per read (as `createReadStream`
 * makes) is external memory to V8, and at hundreds of MB/s it drove a full mark-compact of the
 * main thread's heap every ~64 MB read, most of the GC work of a run.
 */
export class ChunkPool {
  private readonly free: ArrayBuffer[] = [];

  /** A buffer to read into: a free one, or a new one. */
  take(): ArrayBuffer {
    return this.free.pop() ?? new ArrayBuffer(CHUNK_BYTES);
  }

  /** `length` bytes of a pooled buffer when they fit in one, else of a new one. */
  bytes(length: number): Uint8Array {
    return length <= CHUNK_BYTES ? new Uint8Array(this.take(), 0, length) : new Uint8Array(length);
  }

  /** Give back a chunk's memory (one that came back from a worker, or one the reader is done with). */
  give(memory: ArrayBuffer): void {
    if (memory.byteLength === CHUNK_BYTES && this.free.length < MAX_FREE_CHUNKS) this.free.push(memory);
  }
}

/** Open a file (or stdin for `-`); `onRawBytes` sees the count of raw bytes read so far. */
export function openSource(
  file: string,
  stdin: Readable | undefined,
  onRawBytes: (n: number) => void,
  pool = new ChunkPool(),
): OpenedSource {
  let raw: AsyncIterable<Buffer>;
  let plain: PlainFileReader | undefined;
  if (file === STDIN_NAME) {
    if (!stdin) throw new InputError('`-` reads stdin, but no stdin is available here');
    raw = stdin;
  } else {
    plain = new PlainFileReader(file, pool);
    raw = plain.chunks();
  }
  const hash = createHash('sha256');
  let bytes = 0;
  let gzip = false;
  async function* hashed(): AsyncGenerator<Buffer> {
    for await (const chunk of raw) {
      const buffer = chunk as Buffer;
      hash.update(buffer);
      bytes += buffer.length;
      onRawBytes(buffer.length);
      yield buffer;
    }
  }
  async function* decoded(): AsyncGenerator<Buffer> {
    const iterator = hashed();
    try {
      const first = await iterator.next();
      if (first.done) return;
      gzip = first.value.length >= 2 && first.value[0] === 0x1f && first.value[1] === 0x8b;
      async function* all(): AsyncGenerator<Buffer> {
        yield first.value as Buffer;
        for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
      }
      if (!gzip) {
        yield* all();
        return;
      }
      if (plain) plain.reuse = false; // zlib holds on to its input chunks
      const gunzip = createGunzip({ chunkSize: 1 << 20 });
      const input = Readable.from(all());
      input.on('error', (error) => gunzip.destroy(error));
      input.pipe(gunzip);
      try {
        for await (const chunk of gunzip) yield chunk as Buffer;
      } catch (error) {
        if (error instanceof FireoptError) throw error; // e.g. interrupted, not corrupt
        throw new InputError(`${file}: cannot decompress gzip data (${describeError(error)})`);
      } finally {
        input.destroy();
        gunzip.destroy();
      }
    } finally {
      await iterator.return(undefined); // stops and closes the underlying file when a reader stops early
    }
  }
  return {
    chunks: decoded(),
    stats: () => ({ bytes, sha256: hash.digest('hex'), gzip }),
    chunksOwned: () => file !== STDIN_NAME && !gzip,
  };
}

/** Reads a file in chunks of pooled memory (see `OpenedSource.chunks`). */
class PlainFileReader {
  /** Whether a chunk that was not transferred may be read into again once the next is requested. */
  reuse = true;

  constructor(
    private readonly file: string,
    private readonly pool: ChunkPool,
  ) {}

  async *chunks(): AsyncGenerator<Buffer> {
    const handle = await open(this.file, 'r');
    let previous: ArrayBuffer | undefined;
    try {
      for (;;) {
        // A detached buffer (byteLength 0) went to a worker, which gives it back to the pool.
        if (previous && previous.byteLength > 0 && this.reuse) this.pool.give(previous);
        previous = undefined;
        const memory = this.pool.take();
        const { bytesRead } = await handle.read(new Uint8Array(memory), 0, memory.byteLength, null);
        if (bytesRead === 0) {
          this.pool.give(memory);
          return;
        }
        previous = memory;
        yield Buffer.from(memory, 0, bytesRead);
      }
    } finally {
      await handle.close();
    }
  }
}

/** How an input is laid out: JSON Lines (also plain text, one prompt per line) or one JSON array. */
export type Container = 'lines' | 'json-array';

/**
 * Split decompressed chunks into records, yielded in arrays (one per chunk) to keep per-record
 * overhead low. The container is chosen from the first non-blank byte: `[` is a JSON array.
 */
export async function* splitRecords(
  chunks: AsyncIterable<Buffer>,
  maxRecordBytes: number,
  onContainer: (container: Container) => void,
): AsyncGenerator<RawRecord[]> {
  for await (const block of splitRecordBlocks(chunks, maxRecordBytes, onContainer)) {
    if (Array.isArray(block)) {
      yield block;
      continue;
    }
    const records: RawRecord[] = [];
    let failure = 0;
    for (let i = 0; i < block.count; i++) {
      records.push(recordAt(block, i, failure));
      if (block.starts[i] === FAILED_RECORD) failure++;
    }
    yield records;
  }
}

/**
 * Like `splitRecords`, but JSON Lines come as `LineBlock`s of undecoded bytes: the main thread
 * only finds line boundaries, and the decoding happens where the record is parsed. Records of a
 * JSON array come as `RawRecord`s as before.
 */
export async function* splitRecordBlocks(
  chunks: AsyncIterable<Buffer>,
  maxRecordBytes: number,
  onContainer: (container: Container) => void,
): AsyncGenerator<LineBlock | RawRecord[]> {
  let splitter: LineSplitter | ArraySplitter | undefined;
  for await (const chunk of chunks) {
    if (!splitter) {
      const first = firstNonBlank(chunk);
      if (first === -1) continue; // leading blank chunk: keep looking (a blank chunk holds no record)
      splitter = chunk[first] === 0x5b /* [ */ ? new ArraySplitter(maxRecordBytes) : new LineSplitter(maxRecordBytes);
      onContainer(splitter instanceof ArraySplitter ? 'json-array' : 'lines');
    }
    const records = splitter.push(chunk);
    if (Array.isArray(records) ? records.length : records.count) yield records;
  }
  if (splitter) {
    const records = splitter.end();
    if (Array.isArray(records) ? records.length : records.count) yield records;
  }
}

function firstNonBlank(chunk: Buffer): number {
  for (let i = 0; i < chunk.length; i++) {
    const c = chunk[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09 && !(i < 3 && (c === 0xef || c === 0xbb || c === 0xbf)))
      return i;
  }
  return -1;
}

/** Splits on `\n` (dropping a trailing `\r` and a leading BOM); blank lines are skipped. */
class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private skipping = false; // inside an oversized line: drop bytes until its newline
  private skippedExcerpt = '';
  private line = 0; // number of the line being assembled, 1-based once started
  private atStart = true;
  private block: LineBlock = {
    chunk: Buffer.alloc(0),
    count: 0,
    lines: new Int32Array(1024),
    starts: new Int32Array(1024),
    ends: new Int32Array(1024),
    head: undefined,
    failures: [],
  };

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): LineBlock {
    this.startBlock(chunk);
    let start = 0;
    if (this.atStart) {
      this.atStart = false;
      if (chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) start = 3;
    }
    for (;;) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline === -1) {
        this.hold(chunk.subarray(start));
        return this.block;
      }
      this.line++;
      if (this.skipping) {
        this.skipping = false;
        this.fail(this.oversized());
      } else if (this.pendingBytes === 0) {
        if (newline - start > this.maxBytes) this.fail(this.oversizedFrom(chunk.subarray(start, newline)));
        else this.emit(chunk, start, newline, false);
      } else {
        const piece = chunk.subarray(start, newline);
        if (this.pendingBytes + piece.length > this.maxBytes) {
          this.skippedExcerpt = Buffer.concat(this.pending).subarray(0, EXCERPT_BYTES).toString('utf8');
          this.pending = [];
          this.pendingBytes = 0;
          this.fail(this.oversized());
        } else {
          const whole = Buffer.concat([...this.pending, piece], this.pendingBytes + piece.length);
          this.pending = [];
          this.pendingBytes = 0;
          this.emit(whole, 0, whole.length, true);
        }
      }
      start = newline + 1;
    }
  }

  end(): LineBlock {
    this.startBlock(Buffer.alloc(0));
    if (this.skipping) {
      this.line++;
      this.fail(this.oversized());
    } else if (this.pendingBytes > 0) {
      this.line++;
      const whole = Buffer.concat(this.pending, this.pendingBytes);
      this.emit(whole, 0, whole.length, true);
    }
    this.pending = [];
    this.pendingBytes = 0;
    return this.block;
  }

  private startBlock(chunk: Buffer): void {
    this.block.chunk = chunk;
    this.block.count = 0;
    this.block.head = undefined;
    this.block.failures = [];
  }

  private hold(rest: Buffer): void {
    if (this.skipping || rest.length === 0) return;
    if (this.pendingBytes + rest.length > this.maxBytes) {
      this.skippedExcerpt = Buffer.concat([...this.pending, rest])
        .subarray(0, EXCERPT_BYTES)
        .toString('utf8');
      this.pending = [];
      this.pendingBytes = 0;
      this.skipping = true;
      return;
    }
    // Copy: the chunk's memory is reused for later reads.
    this.pending.push(Buffer.from(rest));
    this.pendingBytes += rest.length;
  }

  /** Add the record `bytes[start, end)` (of the chunk, or `head`) unless it is blank. */
  private emit(bytes: Buffer, start: number, end: number, head: boolean): void {
    if (end > start && bytes[end - 1] === 0x0d) end--;
    let blank = true;
    for (let i = start; i < end; i++) {
      const c = bytes[i];
      if (c !== 0x20 && c !== 0x09) {
        blank = false;
        break;
      }
    }
    if (blank) return;
    const i = this.nextRecord();
    this.block.starts[i] = head ? HEAD_RECORD : start;
    this.block.ends[i] = end;
    if (head) this.block.head = bytes;
  }

  private fail(record: RawRecord): void {
    const i = this.nextRecord();
    this.block.starts[i] = FAILED_RECORD;
    this.block.ends[i] = 0;
    this.block.failures.push(record);
  }

  private nextRecord(): number {
    const block = this.block;
    if (block.count === block.lines.length) {
      const grow = (array: Int32Array): Int32Array => {
        const grown = new Int32Array(array.length * 2);
        grown.set(array);
        return grown;
      };
      block.lines = grow(block.lines);
      block.starts = grow(block.starts);
      block.ends = grow(block.ends);
    }
    block.lines[block.count] = this.line;
    return block.count++;
  }

  private oversizedFrom(bytes: Buffer): RawRecord {
    this.skippedExcerpt = bytes.subarray(0, EXCERPT_BYTES).toString('utf8');
    return this.oversized();
  }

  private oversized(): RawRecord {
    const excerpt = this.skippedExcerpt;
    this.skippedExcerpt = '';
    return {
      ok: false,
      line: this.line,
      code: 'oversized-line',
      reason: `line longer than ${this.maxBytes} bytes`,
      excerpt,
    };
  }
}

/**
 * Splits a JSON array file (`[{...}, {...}]`) into its elements without parsing them, tracking
 * only string/escape state and nesting depth, so a large array streams in flat memory. No
 * installed library streams JSON arrays; this scanner is ~60 lines and each element is then
 * parsed with JSON.parse like a JSON Lines record.
 */
class ArraySplitter {
  private depth = 0;
  private inString = false;
  private escaped = false;
  private line = 1;
  private elementLine = 0;
  private parts: Buffer[] = [];
  private partBytes = 0;
  private inElement = false;
  private oversizedElement = false;
  private closed = false;

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): RawRecord[] {
    const out: RawRecord[] = [];
    let elementStart = this.inElement ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (c === 0x0a) this.line++;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c /* \ */) this.escaped = true;
        else if (c === 0x22 /* " */) this.inString = false;
        continue;
      }
      if (this.closed) {
        if (!isBlank(c))
          this.closed = false; // trailing garbage after `]`: reported as a bad element
        else continue;
      }
      if (this.depth === 0) {
        if (c === 0x5b) this.depth = 1;
        continue;
      }
      if (this.depth === 1 && !this.inElement) {
        if (isBlank(c) || c === 0x2c /* , */) continue;
        if (c === 0x5d /* ] */) {
          this.depth = 0;
          this.closed = true;
          continue;
        }
        this.inElement = true;
        this.elementLine = this.line;
        elementStart = i;
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b || c === 0x5b) this.depth++;
      else if (c === 0x7d || c === 0x5d) {
        if (this.depth === 1) {
          // `]` closing the array right after a scalar element
          this.finishElement(chunk.subarray(elementStart, i), out);
          elementStart = -1;
          this.depth = 0;
          this.closed = true;
          continue;
        }
        this.depth--;
        if (this.depth === 1) {
          this.finishElement(chunk.subarray(elementStart, i + 1), out);
          elementStart = -1;
        }
      } else if (c === 0x2c && this.depth === 1) {
        this.finishElement(chunk.subarray(elementStart, i), out);
        elementStart = -1;
      }
    }
    if (this.inElement && elementStart !== -1) this.holdPart(chunk.subarray(elementStart));
    return out;
  }

  end(): RawRecord[] {
    const out: RawRecord[] = [];
    if (this.inElement) this.finishElement(Buffer.alloc(0), out); // unterminated: JSON.parse will reject it
    return out;
  }

  private holdPart(part: Buffer): void {
    if (this.oversizedElement) return;
    if (this.partBytes + part.length > this.maxBytes) {
      this.oversizedElement = true;
      this.parts = [Buffer.from(Buffer.concat([...this.parts, part]).subarray(0, EXCERPT_BYTES))];
      return;
    }
    this.parts.push(Buffer.from(part));
    this.partBytes += part.length;
  }

  private finishElement(last: Buffer, out: RawRecord[]): void {
    this.inElement = false;
    if (this.oversizedElement || this.partBytes + last.length > this.maxBytes) {
      const excerpt = Buffer.concat([...this.parts, last.subarray(0, EXCERPT_BYTES)])
        .subarray(0, EXCERPT_BYTES)
        .toString('utf8');
      out.push({
        ok: false,
        line: this.elementLine,
        code: 'oversized-line',
        reason: `array element longer than ${this.maxBytes} bytes`,
        excerpt,
      });
    } else {
      const bytes = this.parts.length ? Buffer.concat([...this.parts, last]) : last;
      out.push(decodeRecord(bytes, this.elementLine));
    }
    this.parts = [];
    this.partBytes = 0;
    this.oversizedElement = false;
  }
}

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}
