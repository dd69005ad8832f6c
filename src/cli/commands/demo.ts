/** `fireopt demo`: the whole loop offline on the shipped demo target and traffic (the pipeline is imported lazily). */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import type { ContextGetter } from '../context.js';
import { join } from 'node:path';
import { claimOutputs } from '../../util/output.js';
import { interruptible } from '../safety.js';

interface DemoFlags {
  out: string;
  timeBudget: number;
  maxSteps?: number;
}

export function register(program: Command, context: ContextGetter): void {
  program
    .command('demo')
    .summary('run the whole loop offline on a bundled demo target and sample traffic, then print what it gained')
    .description(
      'Ingests datasets/demo-traces.jsonl, distills it with datasets/demo-target.gguf ' +
        '(a small Llama model made by fireopt),\n' +
        'trains a draft, evaluates it beside a generic draft and prompt lookup, exports and promotes it. ' +
        'A rerun skips\n' +
        'unchanged stages.',
    )
    .option('-o, --out <dir>', 'work folder', 'out/demo')
    .option('--time-budget <seconds>', 'training time budget', Number, 90)
    .option(
      '--max-steps <n>',
      'training steps per candidate at most (with a generous --time-budget, the same run on any machine)',
      Number,
    )
    .action(async (flags: DemoFlags) => {
      const ctx = context();
      if (ctx.globals.config || ctx.globals.set.length)
        throw new UsageError('demo: takes no config; use `fireopt run --config ...` for your own data');
      if (!(flags.timeBudget > 0)) throw new UsageError('demo: --time-budget must be a positive number of seconds');
      if (flags.maxSteps !== undefined && !(Number.isInteger(flags.maxSteps) && flags.maxSteps > 0)) {
        throw new UsageError('demo: --max-steps must be a positive whole number');
      }
      claimOutputs({
        command: 'demo',
        outputs: [
          { path: join(flags.out, 'run'), kind: 'pipeline-run', option: '--out' },
          { path: join(flags.out, 'release'), kind: 'release', option: '--out' },
          { path: join(flags.out, 'measure-target.gguf'), kind: 'gguf-file', option: '--out' },
        ],
        inputs: [],
      });
      const { runDemo, demoTable } = await import('../../pipeline/demo.js');
      const kept = `finished stages are kept in ${join(flags.out, 'run')}: run the same command again to continue`;
      const result = await interruptible(ctx.io, { command: 'demo', kept, stageWatchesSignal: false }, () =>
        runDemo(
          { out: flags.out, timeBudgetS: flags.timeBudget, maxSteps: flags.maxSteps },
          { progress: ctx.progress },
        ),
      );
      if (ctx.globals.json) ctx.io.stdout(JSON.stringify(result, null, 2) + '\n');
      else ctx.io.stdout('\n' + demoTable(result) + '\n');
      // The demo shows the loop and its table; every finished outcome (a draft slower than suffix decoding
      // is not promoted, a second run is `unchanged`) is a successful demo, said in the table's outcome line.
    });
}
