/**
 * The block protocol of ingest: how the splitter (sources.ts) hands records to the per-record
 * work (process.ts), on the main thread or across a worker boundary. Both sides import it from
 * here, so neither imports the other.
 */
import { isUtf8 } from 'node:buffer';

/** One record of an input, or the reason it could not be read as text. */
export type RawRecord =
  | { ok: true; line: number; text: string }
  | { ok: false; line: number; code: 'invalid-utf8' | 'oversized-line'; reason: string; excerpt: string };

/** In a `LineBlock`'s `starts`: the record is the block's `head`, or one of its `failures`. */
export const HEAD_RECORD = -1;
export const FAILED_RECORD = -2;

/** The records of a `LineBlock` (below), as the main thread splits them or a worker receives them. */
export interface LineRecords {
  chunk: Buffer;
  head: Buffer | undefined;
  lines: Int32Array;
  starts: Int32Array;
  ends: Int32Array;
  failures: RawRecord[];
}

/**
 * The records of one chunk of JSON Lines, not yet decoded, as arrays rather than an object per
 * record (at ~600k records per GB, per-record objects were most of the main thread's garbage).
 * Record i has line number `lines[i]` and is `chunk[starts[i], ends[i])`; or, where `starts[i]`
 * is `HEAD_RECORD`, `head` (the record that began in earlier chunks and ends in this one, always
 * the first); or, where it is `FAILED_RECORD`, the next of `failures` (a line that is too long).
 * The arrays are the splitter's: valid until the next chunk is split.
 */
export interface LineBlock {
  chunk: Buffer;
  count: number;
  lines: Int32Array;
  starts: Int32Array;
  ends: Int32Array;
  head: Buffer | undefined;
  failures: RawRecord[];
}

/** Record `i` of a block as a decoded record (`failure` is the index into `failures` of a failed one). */
export function recordAt(block: LineBlock, i: number, failure: number): RawRecord {
  const start = block.starts[i];
  if (start >= 0) return decodeRecord(block.chunk.subarray(start, block.ends[i]), block.lines[i]);
  if (start === HEAD_RECORD) return decodeRecord((block.head as Buffer).subarray(0, block.ends[i]), block.lines[i]);
  return block.failures[failure];
}

/** Bytes of a rejected record kept as its excerpt. */
export const EXCERPT_BYTES = 160;

/** A record's bytes as text, or an invalid-utf8 failure. */
export function decodeRecord(bytes: Buffer, line: number): RawRecord {
  return decodeRange(bytes, 0, bytes.length, line, false);
}

/** The record `bytes[start, end)` as text (`knownUtf8`: already checked), or an invalid-utf8 failure. */
export function decodeRange(bytes: Buffer, start: number, end: number, line: number, knownUtf8: boolean): RawRecord {
  if (!knownUtf8 && !isUtf8(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end))) {
    const excerpt = bytes.subarray(start, Math.min(end, start + EXCERPT_BYTES)).toString('latin1');
    return { ok: false, line, code: 'invalid-utf8', reason: 'invalid UTF-8', excerpt };
  }
  return { ok: true, line, text: bytes.toString('utf8', start, end) };
}
