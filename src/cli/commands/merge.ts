/**
 * `fireopt merge <shards…> --out <dir>`: join the shards of `distill --shard` (targets) or of
 * `ingest --shard` (a traces dataset) into one folder; the shards' manifests say which (the stage is lazy).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { claimOutputs } from '../../util/output.js';
import type { ContextGetter } from '../context.js';
import { forceOption, interruptible } from '../safety.js';

interface MergeFlags {
  out?: string;
  dataset?: string;
  force?: boolean;
}

export function register(program: Command, context: ContextGetter): void {
  program
    .command('merge')
    .summary('join the shards of `fireopt distill --shard i/n` (or `ingest --shard`) into one folder')
    .description(
      'Distill shards: checks they are of one dataset, one target and one config and cover every row exactly once\n' +
        '(exit 2 naming missing or duplicated shards), then writes <out>/{train,heldout}.arrow in dataset order:\n' +
        'the same Arrow data as one unsharded distill run.\n' +
        'Ingest shards: the rows in the order one unsharded ingest reads the files, duplicates across shards removed.',
    )
    .argument('<shards...>', 'shard output folders (any order)')
    .option('-o, --out <dir>', 'output targets directory (replaced atomically when complete)')
    .option('--dataset <dir>', 'the ingested dataset the shards were distilled from (default: as their manifests say)')
    .addOption(forceOption())
    .action(async (shards: string[], flags: MergeFlags) => {
      const ctx = context();
      if (!flags.out) throw new UsageError('merge: no output directory given (--out)');
      const traces = shards.length > 0 && manifestKind(shards[0]) === 'traces';
      claimOutputs({
        command: 'merge',
        outputs: [{ path: flags.out, kind: traces ? 'traces' : 'targets', option: '--out' }],
        inputs: [...shards, flags.dataset],
        force: flags.force,
      });
      const out = flags.out;
      if (traces) {
        const { runMergeTraces } = await import('../../ingest/merge.js');
        const summary = await runMergeTraces({ shards, out }, { progress: ctx.progress });
        ctx.io.stdout(
          ctx.globals.json
            ? JSON.stringify(summary, null, 2) + '\n'
            : `wrote ${summary.out}: ${summary.rows.train} train + ${summary.rows.heldout} held-out rows from ` +
                `${summary.shards} shards (${summary.duplicates_across_shards} duplicates across shards removed)\n`,
        );
        return;
      }
      const { runMerge } = await import('../../distill/merge.js');
      const kept = 'nothing was written; the shards are untouched';
      await interruptible(ctx.io, { command: 'merge', kept, stageWatchesSignal: false }, async () => {
        const summary = await runMerge({ shards, out, dataset: flags.dataset }, { progress: ctx.progress });
        if (ctx.globals.json) {
          ctx.io.stdout(JSON.stringify(summary, null, 2) + '\n');
          return;
        }
        const c = summary.counts;
        ctx.io.stdout(
          [
            `wrote ${summary.out}: ${c.rows.train} train + ${c.rows.heldout} ` +
              `held-out target rows from ${summary.shards} shards`,
            `  ${c.input} input rows: ${c.ok} ok, ${c.failed} failed, ${c.skipped} skipped`,
            `  tokens: ${summary.tokens.prompt} prompt, ${summary.tokens.completion} completion`,
          ].join('\n') + '\n',
        );
      });
    });
}

/** The `kind` in a folder's manifest.json (undefined when unreadable: the stage then reports it). */
function manifestKind(dir: string): unknown {
  try {
    return (JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { kind?: unknown }).kind;
  } catch {
    return undefined;
  }
}
