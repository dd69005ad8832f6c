/**
 * Atomic outputs: work in a hidden sibling folder / file, then rename into place. An interrupted
 * or failed run leaves no partial output, and an earlier output at the same path stays intact
 * until the new one is complete.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

/** A staging directory for `finalPath`; call `commit()` to move it into place or `abort()`. */
export class StagedDir {
  readonly path: string;
  readonly finalPath: string;
  private done = false;

  constructor(finalPath: string) {
    this.finalPath = resolve(finalPath);
    const parent = dirname(this.finalPath);
    mkdirSync(parent, { recursive: true });
    this.path = join(parent, `.${basename(this.finalPath)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    mkdirSync(this.path);
  }

  /** Replace `finalPath` with the staged directory (old content removed only after the swap). */
  commit(): void {
    if (this.done) return;
    let backup: string | undefined;
    if (existsSync(this.finalPath)) {
      backup = `${this.path}.old`;
      renameSync(this.finalPath, backup);
    }
    try {
      renameSync(this.path, this.finalPath);
    } catch (error) {
      if (backup) renameSync(backup, this.finalPath);
      throw error;
    }
    this.done = true;
    if (backup) rmSync(backup, { recursive: true, force: true });
  }

  /** Remove the staged directory; the earlier output (if any) is untouched. */
  abort(): void {
    if (this.done) return;
    this.done = true;
    rmSync(this.path, { recursive: true, force: true });
  }
}

/** Write a file atomically (temp file in the same folder, then rename). */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const target = resolve(path);
  mkdirSync(dirname(target), { recursive: true });
  const tmp = join(dirname(target), `.${basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, target);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
}
