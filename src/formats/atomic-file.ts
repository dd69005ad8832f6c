/**
 * Streamed atomic file output: bytes go to a hidden temp file beside the target, which is renamed
 * into place only when complete. Model files can be larger than one Buffer, so unlike
 * util/atomic.ts's writeFileAtomic this takes the data in pieces.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { InputError } from '../errors.js';

export class AtomicFileWriter {
  readonly finalPath: string;
  readonly tempPath: string;
  /** Bytes written so far. */
  position = 0;
  private fd: number | undefined;

  constructor(path: string) {
    this.finalPath = resolve(path);
    this.tempPath = join(dirname(this.finalPath), `.${basename(this.finalPath)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      mkdirSync(dirname(this.finalPath), { recursive: true });
      this.fd = openSync(this.tempPath, 'w');
    } catch (error) {
      // An output path the user cannot write to is a usage problem, not a fireopt bug.
      throw new InputError(`${path}: cannot write output (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
  }

  write(bytes: Uint8Array): void {
    if (this.fd === undefined) throw new Error(`${this.finalPath}: write after close`);
    let done = 0;
    while (done < bytes.byteLength) done += writeSync(this.fd, bytes, done, bytes.byteLength - done);
    this.position += bytes.byteLength;
  }

  /** Write zero bytes until the position is a multiple of `alignment`. */
  pad(alignment: number): void {
    const padding = (alignment - (this.position % alignment)) % alignment;
    if (padding) this.write(new Uint8Array(padding));
  }

  /** Flush, close and rename into place. */
  commit(): void {
    if (this.fd === undefined) throw new Error(`${this.finalPath}: commit after close`);
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = undefined;
    try {
      renameSync(this.tempPath, this.finalPath);
    } catch (error) {
      rmSync(this.tempPath, { force: true });
      throw new InputError(`${this.finalPath}: cannot replace the output (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
  }

  /** Close and delete the temp file; an earlier file at the target path is untouched. */
  abort(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    rmSync(this.tempPath, { force: true });
  }
}

/** Run `write` against an atomic writer for `path`; the file appears only if `write` returns. */
export function writeAtomically(path: string, write: (out: AtomicFileWriter) => void): void {
  const out = new AtomicFileWriter(path);
  try {
    write(out);
    out.commit();
  } catch (error) {
    out.abort();
    throw error;
  }
}
