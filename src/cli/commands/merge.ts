/** `fireopt merge <shards…> --out <targets>`: join distill's shards into one targets folder (the stage is lazy). */
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
    .summary('join the shards of `fireopt distill --shard i/n` into one targets folder')
    .description(
      'Checks the shards are of one dataset, one target and one config and cover every row exactly once\n' +
        '(exit 2 naming missing or duplicated shards), then writes <out>/{train,heldout}.arrow in dataset order:\n' +
        'the same Arrow data as one unsharded distill run.',
    )
    .argument('<shards...>', 'shard output folders (any order)')
    .option('-o, --out <dir>', 'output targets directory (replaced atomically when complete)')
    .option('--dataset <dir>', 'the ingested dataset the shards were distilled from (default: as their manifests say)')
    .addOption(forceOption())
    .action(async (shards: string[], flags: MergeFlags) => {
      const ctx = context();
      if (!flags.out) throw new UsageError('merge: no output directory given (--out)');
      claimOutputs({
        command: 'merge',
        outputs: [{ path: flags.out, kind: 'targets', option: '--out' }],
        inputs: [...shards, flags.dataset],
        force: flags.force,
      });
      const { runMerge } = await import('../../distill/merge.js');
      const out = flags.out;
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
            `wrote ${summary.out}: ${c.rows.train} train + ${c.rows.heldout} held-out target rows from ${summary.shards} shards`,
            `  ${c.input} input rows: ${c.ok} ok, ${c.failed} failed, ${c.skipped} skipped`,
            `  tokens: ${summary.tokens.prompt} prompt, ${summary.tokens.completion} completion`,
          ].join('\n') + '\n',
        );
      });
    });
}
