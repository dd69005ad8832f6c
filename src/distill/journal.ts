/**
 * The resume journal of a distill run: a hidden work folder beside the output holding chunks of
 * finished rows. Each chunk is an Arrow file of target rows plus a JSON index (which input rows
 * it settles: ok or failed), each written then renamed, the index last — so a chunk counts only
 * when complete, and a crash, `kill -9` or Ctrl-C loses at most the rows in flight.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { RecordBatchFileWriter, tableFromIPC, type Table } from 'apache-arrow';
import { writeFileAtomic } from '../util/atomic.js';
import { targetRowAt, targetsRecordBatch, type TargetRow } from '../formats/targets-schema.js';

/** One input row's outcome. `key` is `<split>:<ordinal in its split file>`. */
export type Settlement =
  // truncatedTokens: prompt tokens cut by truncate_prompt `left` (absent when none).
  // reused: the rows were taken from an earlier targets folder (--reuse), not made by the target.
  | { key: string; status: 'ok'; rows: number; truncatedTokens?: number; reused?: boolean }
  | { key: string; status: 'failed'; id: string; reason: string }
  | { key: string; status: 'skipped'; id: string; reason: string };

interface ChunkIndex {
  settlements: Settlement[];
  /** For each Arrow row: the key of its input row. */
  rowKeys: string[];
}

export class DistillJournal {
  readonly dir: string;
  private nextChunk = 0;

  /** Open (or start) the journal for `outDir`; `fingerprint` must match to resume. */
  constructor(outDir: string, fingerprint: string, onRestart: (reason: string) => void) {
    const out = resolve(outDir);
    this.dir = join(dirname(out), `.${basename(out)}.distill-journal`);
    const fingerprintPath = join(this.dir, 'fingerprint.json');
    if (existsSync(this.dir)) {
      const previous = existsSync(fingerprintPath) ? readFileSync(fingerprintPath, 'utf8') : '';
      if (previous !== fingerprint) {
        onRestart('the inputs, target or config changed since the interrupted run: starting over');
        rmSync(this.dir, { recursive: true, force: true });
      }
    }
    mkdirSync(this.dir, { recursive: true });
    if (!existsSync(fingerprintPath)) writeFileAtomic(fingerprintPath, fingerprint);
    for (const name of readdirSync(this.dir)) {
      const match = /^chunk-(\d+)\.json$/.exec(name);
      if (match) this.nextChunk = Math.max(this.nextChunk, Number(match[1]) + 1);
    }
  }

  /** Everything settled by earlier (interrupted) runs, by key. */
  settled(): Map<string, Settlement> {
    const settled = new Map<string, Settlement>();
    for (const index of this.indexes()) for (const s of index.settlements) settled.set(s.key, s);
    return settled;
  }

  /** Write one chunk atomically. */
  append(rows: TargetRow[], rowKeys: string[], settlements: Settlement[]): void {
    const n = String(this.nextChunk++).padStart(6, '0');
    if (rows.length) {
      const writer = new RecordBatchFileWriter();
      writer.write(targetsRecordBatch(rows));
      writer.finish();
      writeFileAtomic(join(this.dir, `chunk-${n}.arrow`), writer.toUint8Array(true));
    }
    const index: ChunkIndex = { settlements, rowKeys };
    writeFileAtomic(join(this.dir, `chunk-${n}.json`), JSON.stringify(index));
  }

  /**
   * All journaled target rows with their keys, chunk by chunk. Each chunk is small
   * (`chunk_rows` rows), so only one is in memory at a time.
   */
  *rows(): Generator<{ key: string; row: TargetRow }> {
    for (const { name, index } of this.indexedChunks()) {
      if (!index.rowKeys.length) continue;
      const table: Table = tableFromIPC(readFileSync(join(this.dir, name.replace(/\.json$/, '.arrow'))));
      let i = 0;
      for (const batch of table.batches) {
        for (let r = 0; r < batch.numRows; r++) yield { key: index.rowKeys[i++], row: targetRowAt(batch, r) };
      }
    }
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private indexes(): ChunkIndex[] {
    return this.indexedChunks().map((c) => c.index);
  }

  private indexedChunks(): Array<{ name: string; index: ChunkIndex }> {
    return readdirSync(this.dir)
      .filter((name) => /^chunk-\d+\.json$/.test(name))
      .sort()
      .map((name) => ({ name, index: JSON.parse(readFileSync(join(this.dir, name), 'utf8')) as ChunkIndex }));
  }
}
