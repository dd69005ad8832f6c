/**
 * `fireopt run --config pipeline.yaml`: ingest → distill → drift check → train → eval → export →
 * promotion gate over a run directory (the pipeline is imported lazily). For CI, the exit code:
 * 0 promoted, 3 not promoted, 4 retraining not needed, 1 failed, 2 bad usage / config / input.
 */
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { ConfigError, ExitStatus } from '../../errors.js';
import type { ContextGetter } from '../commands.js';
import { claimPipelineOutputs, interruptible } from '../safety.js';

interface RunFlags {
  dir?: string;
  traces?: string[];
  release?: string;
  force?: boolean;
  timeBudget?: number;
}

export function register(program: Command, context: ContextGetter): void {
  program
    .command('run')
    .summary('the whole loop: ingest, distill, drift check, train, eval, export and the promotion gate')
    .description(
      'Runs every stage over a run directory (run.dir), one numbered folder per stage; stages whose inputs and\n' +
        'config are unchanged are skipped, so a rerun after a failure resumes at the failed stage.\n' +
        'Exit codes: 0 promoted, 3 not promoted, 4 retraining not needed (no drift), 1 failed, 2 bad usage/config/input.',
    )
    .option('--dir <dir>', 'run directory (default: run.dir)')
    .option('--traces <files...>', 'fresh trace files or globs (default: ingest.inputs)')
    .option('--release <dir>', 'release location of the deployed draft (default: promotion.release)')
    .option('--force', 'retrain even when the deployed draft shows no drift')
    .option('--time-budget <seconds>', 'training time budget (train.time_budget_s)', Number)
    .action(async (flags: RunFlags) => {
      const ctx = context();
      const config = loadConfig({
        file: ctx.globals.config,
        sets: ctx.globals.set,
        flags: {
          'run.dir': flags.dir,
          'run.force': flags.force,
          'ingest.inputs': flags.traces,
          'promotion.release': flags.release,
          'train.time_budget_s': flags.timeBudget,
        },
      });
      let apiKey: string | undefined;
      if (config.target?.engine === 'openai' && config.target.api_key_env) {
        apiKey = process.env[config.target.api_key_env];
        if (!apiKey) throw new ConfigError(`target.api_key_env: the environment variable ${config.target.api_key_env} is not set`);
      }
      const options = { dir: flags.dir ? '--dir' : 'run.dir', release: flags.release ? '--release' : 'promotion.release' };
      claimPipelineOutputs('run', config, options);
      const { runPipeline } = await import('../../pipeline/index.js');
      const kept = 'finished stages are kept in the run directory: run the same command again to resume there';
      const result = await interruptible(ctx.io, { command: 'run', kept, stageWatchesSignal: true }, (signal) =>
        runPipeline(config, { progress: ctx.progress, signal, apiKey }),
      );
      if (ctx.globals.json) ctx.io.stdout(JSON.stringify(result, null, 2) + '\n');
      else {
        const lines = [`${result.outcome.toUpperCase()}: ${result.reason}`, `run directory ${result.dir}`];
        for (const stage of result.stages) lines.push(`  ${stage.stage.padEnd(11)} ${stage.status}${stage.status === 'ran' ? ` (${stage.seconds.toFixed(1)} s)` : ''}`);
        for (const c of result.candidates) {
          lines.push(`  ${c.name}: hit rate ${c.hit_rate === null ? '–' : (100 * c.hit_rate).toFixed(1) + '%'}, τ ${c.tau.toFixed(2)} at k = ${c.best_k}, expected speed-up ${c.speedup.toFixed(2)}×`);
        }
        if (result.report) lines.push(`report: ${result.report}`);
        if (result.export) lines.push(`export: ${result.export}`);
        if (result.outcome === 'promoted' && result.release) lines.push(`released to ${result.release} (promotion.json)`);
        if (result.retention) lines.push(`retention: deleted ${result.retention.deleted.length} path(s)`);
        ctx.io.stdout(lines.join('\n') + '\n');
      }
      if (result.exit_code !== 0) throw new ExitStatus(result.exit_code === 3 ? 3 : 4, result.outcome === 'not-promoted' ? 'E_NOT_PROMOTED' : 'E_NOT_NEEDED', result.reason);
    });
}
