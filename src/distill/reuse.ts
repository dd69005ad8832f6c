/**
 * Rows of an earlier targets folder that a distill run takes instead of asking the target again
 * (`fireopt distill --reuse <targets>`, and `fireopt run` with its previous targets). Rows are
 * found by their id (a hash of the row's content, so an unchanged trace keeps it); the earlier
 * folder is used only when its provenance equals this run's (same target, tokenizer, template and
 * output-changing settings): otherwise every row is distilled again and the reason is given.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tableFromIPC, type RecordBatch } from 'apache-arrow';
import { checkArrowFile } from '../formats/arrow-read.js';
import { TARGETS_KIND, TARGETS_RERUN_HINT, targetRowAt, type TargetRow } from '../formats/targets-schema.js';
import { provenanceDifferences, type TargetsProvenance } from './provenance.js';

/** The earlier rows of each row id, loaded column-wise (an Arrow table, not row objects). */
export class ReusableTargets {
  private readonly byId = new Map<string, Array<{ batch: RecordBatch; row: number }>>();
  readonly dir: string;

  private constructor(dir: string, batches: RecordBatch[]) {
    this.dir = dir;
    for (const batch of batches) {
      const ids = batch.getChild('id');
      for (let r = 0; r < batch.numRows; r++) {
        const id = String(ids?.get(r));
        const entry = this.byId.get(id);
        if (entry) entry.push({ batch, row: r });
        else this.byId.set(id, [{ batch, row: r }]);
      }
    }
  }

  /** The earlier target rows of `rowId` (n of them when n completions were sampled), or undefined. */
  rowsOf(rowId: string): TargetRow[] | undefined {
    return this.byId.get(rowId)?.map(({ batch, row }) => targetRowAt(batch, row));
  }

  /**
   * Open `dir` for reuse by a run of `provenance`: `reusable` is undefined when nothing can be
   * reused, and `reason` says why (or what was found).
   */
  static open(dir: string, provenance: TargetsProvenance): { reusable?: ReusableTargets; reason: string } {
    const manifestPath = join(dir, 'manifest.json');
    if (!existsSync(manifestPath)) return { reason: `${dir} holds no earlier targets: distilling every row` };
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
      kind?: string;
      provenance?: TargetsProvenance;
    };
    if (manifest.kind !== TARGETS_KIND) return { reason: `${dir} is not a targets folder: distilling every row` };
    if (!manifest.provenance) {
      return { reason: `${dir} was written by an older fireopt (no provenance in its manifest): distilling every row` };
    }
    const differences = provenanceDifferences(manifest.provenance, provenance);
    if (differences.length) {
      return { reason: `re-distilling every row: changed since ${dir} was written: ${differences.join('; ')}` };
    }
    const batches: RecordBatch[] = [];
    for (const split of ['train', 'heldout']) {
      const path = join(dir, `${split}.arrow`);
      if (!existsSync(path)) continue;
      checkArrowFile(path, TARGETS_RERUN_HINT);
      batches.push(...tableFromIPC(readFileSync(path)).batches);
    }
    const reusable = new ReusableTargets(dir, batches);
    return { reusable, reason: `reusing rows of ${dir} by row id (${reusable.byId.size} row ids there)` };
  }
}
