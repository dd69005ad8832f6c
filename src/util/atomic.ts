/**
 * Atomic outputs, the one place for them: work in a hidden sibling folder / file named
 * `.<name>.tmp-<pid>-<random>`, flush it to disk, then rename it into place and flush the parent
 * folder. An interrupted or failed run leaves no partial output, an earlier output at the same path
 * stays intact until the new one is complete, and a power loss after the rename cannot leave an
 * empty or half-written file in its place (ext4 and xfs may reorder a rename before the data
 * without the fsyncs).
 *
 * Staging left by a process that was killed (`kill -9`) is removed by the next run writing the
 * same output; staging of this process is removed when it exits, however it exits.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { InputError } from '../errors.js';

/** Staging folders and temp files of this process not yet committed or aborted. */
const liveStaging = new Set<string>();
let exitHookInstalled = false;

function trackStaging(path: string): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // 'exit' handlers run on process.exit() too (the interrupt helper's way out): nothing half-written stays.
    process.on('exit', removeLiveStaging);
  }
  liveStaging.add(path);
}

/** Remove every staging folder and temp file this process still has open (on exit or interrupt). */
export function removeLiveStaging(): void {
  for (const path of liveStaging) rmSync(path, { recursive: true, force: true });
  liveStaging.clear();
}

/** The hidden staging name beside `finalPath`; its pid tells later runs whether its writer is gone. */
function stagingPath(finalPath: string): string {
  return join(dirname(finalPath), `.${basename(finalPath)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Whether process `pid` is running (EPERM: it is, under another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove staging for `finalPath` left by runs that were killed (their process is gone). */
export function removeStaleStaging(finalPath: string): void {
  const parent = dirname(resolve(finalPath));
  if (!existsSync(parent)) return;
  const prefix = `.${basename(finalPath)}.tmp-`;
  for (const name of readdirSync(parent)) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !processAlive(pid)) {
      rmSync(join(parent, name), { recursive: true, force: true });
    }
  }
}

/** fsync a folder so a rename into it survives a power loss (a no-op where folders cannot be opened). */
function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch (error) {
    // Windows cannot open folders, some file systems refuse fsync on them: the rename still happened.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EACCES') throw error;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** fsync every file under `path` (the writers inside a staging folder write without flushing). */
function fsyncTree(path: string): void {
  const stats = lstatSync(path);
  if (stats.isDirectory()) {
    for (const name of readdirSync(path)) fsyncTree(join(path, name));
    fsyncDir(path);
  } else if (stats.isFile()) {
    const fd = openSync(path, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

function errnoOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? String(error);
}

/** A staging directory for `finalPath`; call `commit()` to move it into place or `abort()`. */
export class StagedDir {
  readonly path: string;
  readonly finalPath: string;
  private done = false;

  constructor(finalPath: string) {
    this.finalPath = resolve(finalPath);
    removeStaleStaging(this.finalPath);
    mkdirSync(dirname(this.finalPath), { recursive: true });
    this.path = stagingPath(this.finalPath);
    mkdirSync(this.path);
    trackStaging(this.path);
  }

  /** Replace `finalPath` with the staged directory (old content removed only after the swap). */
  commit(): void {
    if (this.done) return;
    fsyncTree(this.path);
    let backup: string | undefined;
    if (existsSync(this.finalPath)) {
      backup = `${this.path}.old`;
      renameSync(this.finalPath, backup);
      trackStaging(backup);
    }
    try {
      renameSync(this.path, this.finalPath);
    } catch (error) {
      if (backup) renameSync(backup, this.finalPath);
      throw error;
    }
    this.done = true;
    liveStaging.delete(this.path);
    fsyncDir(dirname(this.finalPath));
    if (backup) {
      rmSync(backup, { recursive: true, force: true });
      liveStaging.delete(backup);
    }
  }

  /** Remove the staged directory; the earlier output (if any) is untouched. */
  abort(): void {
    if (this.done) return;
    this.done = true;
    rmSync(this.path, { recursive: true, force: true });
    liveStaging.delete(this.path);
  }
}

/**
 * Streamed atomic file output: bytes go to a hidden temp file beside the target, renamed into
 * place only when complete. Model files can be larger than one Buffer, so this takes the data in pieces.
 */
export class AtomicFileWriter {
  readonly finalPath: string;
  readonly tempPath: string;
  /** Bytes written so far. */
  position = 0;
  private fd: number | undefined;

  constructor(path: string) {
    this.finalPath = resolve(path);
    this.tempPath = stagingPath(this.finalPath);
    try {
      mkdirSync(dirname(this.finalPath), { recursive: true });
      this.fd = openSync(this.tempPath, 'w');
    } catch (error) {
      // An output path the user cannot write to is a usage problem, not a fireopt bug.
      throw new InputError(`${path}: cannot write output (${errnoOf(error)})`);
    }
    trackStaging(this.tempPath);
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

  /** Flush, close and rename into place, then flush the folder. */
  commit(): void {
    if (this.fd === undefined) throw new Error(`${this.finalPath}: commit after close`);
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = undefined;
    try {
      renameSync(this.tempPath, this.finalPath);
    } catch (error) {
      this.abort();
      throw new InputError(`${this.finalPath}: cannot replace the output (${errnoOf(error)})`);
    }
    liveStaging.delete(this.tempPath);
    fsyncDir(dirname(this.finalPath));
  }

  /** Close and delete the temp file; an earlier file at the target path is untouched. */
  abort(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    rmSync(this.tempPath, { force: true });
    liveStaging.delete(this.tempPath);
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

/** Write a whole file atomically and durably (temp file in the same folder, fsync, rename, fsync folder). */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  writeAtomically(path, (out) => out.write(typeof data === 'string' ? Buffer.from(data, 'utf8') : data));
}
