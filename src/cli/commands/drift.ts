/**
 * `fireopt drift --model <deployed draft> --traces <fresh traces>`: is retraining due? Exit codes:
 * 0 not due, 3 due (the acceptance fell by more than drift.threshold), 0 with outcome `nothing-deployed`
 * when the release does not exist yet, 1 failed, 2 bad usage/input.
 */
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { ConfigError, ExitStatus, UsageError } from '../../errors.js';
import type { ContextGetter } from '../context.js';
import { claimOutputs } from '../../util/output.js';
import { forceOption, interruptible } from '../safety.js';

interface DriftFlags {
  model?: string;
  traces?: string[];
  out?: string;
  threshold?: number;
  force?: boolean;
}

export function register(program: Command, context: ContextGetter): void {
  program
    .command('drift')
    .summary("the deployed draft's acceptance on fresh traces against the acceptance recorded when it was promoted")
    .description(
      'Ingests the fresh traces (all held out), distills them with the configured target, evaluates the deployed\n' +
        'draft and says whether retraining is due (drift.threshold). Exit codes: 0 not due, 3 due,\n' +
        '0 nothing deployed yet (the release does not exist; outcome "nothing-deployed"), 1 failed, 2 bad usage/input.',
    )
    .option(
      '-m, --model <dir>',
      'the deployed draft checkpoint, or a release folder holding draft/ and promotion.json ' +
        '(default: promotion.release)',
    )
    .option('-t, --traces <files...>', 'fresh trace files or globs (default: ingest.inputs)')
    .option(
      '-o, --out <dir>',
      'work folder for the dataset, targets and report (default: <run.dir>/drift, else fireopt-drift)',
    )
    .option('--threshold <fraction>', 'relative drop that makes retraining due (drift.threshold)', Number)
    .addOption(forceOption())
    .action(async (flags: DriftFlags) => {
      const ctx = context();
      const config = loadConfig({
        file: ctx.globals.config,
        sets: ctx.globals.set,
        flags: { 'ingest.inputs': flags.traces, 'drift.threshold': flags.threshold },
      });
      const model = flags.model ?? config.promotion.release;
      if (!model) throw new UsageError('drift: no deployed draft (--model or promotion.release)');
      const { readTargetApiKey } = await import('../../targets/open.js');
      const apiKey = readTargetApiKey(config.target, process.env);
      const out = flags.out ?? (config.run.dir ? `${config.run.dir}/drift` : 'fireopt-drift');
      const target = config.target;
      claimOutputs({
        command: 'drift',
        outputs: [{ path: out, kind: 'drift-work', option: '--out' }],
        inputs: [
          model,
          ...config.ingest.inputs,
          target?.engine === 'openai' ? undefined : target?.model,
          config.distill.tokenizer,
        ],
        force: flags.force,
      });
      const { runDrift } = await import('../../pipeline/index.js');
      const plan = { command: 'drift', kept: 'nothing to keep: run the same command again', stageWatchesSignal: false };
      const result = await interruptible(ctx.io, plan, () =>
        runDrift(config, { model, traces: config.ingest.inputs, out }, { progress: ctx.progress, apiKey }),
      );
      if (ctx.globals.json) ctx.io.stdout(JSON.stringify(result, null, 2) + '\n');
      else if (result.outcome === 'nothing-deployed') ctx.io.stdout(`NOTHING DEPLOYED: ${result.reason}\n`);
      else {
        ctx.io.stdout(
          [
            `${result.retrain ? 'RETRAINING DUE' : 'NO RETRAINING NEEDED'}: ${result.reason}`,
            `  deployed draft ${result.model}; ${result.rows} fresh completions; report ${result.report}`,
            `  recorded: ${result.recorded.source}`,
          ].join('\n') + '\n',
        );
      }
      if (result.outcome === 'retraining-due') throw new ExitStatus(3, 'E_DRIFT', result.reason);
    });
}
