/**
 * `fireopt run --config pipeline.yaml`: ingest → distill → drift check → train → eval → export →
 * promotion gate over a run directory (the pipeline is imported lazily). For CI, the exit code:
 * 0 promoted, 3 not promoted, 4 retraining not needed, 5 unchanged since the last run, 1 failed,
 * 2 bad usage / config / input.
 */
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { ConfigError, ExitStatus } from '../../errors.js';
import type { ContextGetter } from '../context.js';
import { claimPipelineOutputs, interruptible } from '../safety.js';

interface RunFlags {
  dir?: string;
  traces?: string[];
  release?: string;
  force?: boolean;
  timeBudget?: number;
  limit?: number;
  maxTokens?: number;
}

/** The stable error code of each non-zero finished outcome (the handler only sets the exit code). */
const OUTCOME_CODES = {
  'not-promoted': 'E_NOT_PROMOTED',
  'not-needed': 'E_NOT_NEEDED',
  unchanged: 'E_UNCHANGED',
} as const;

export function register(program: Command, context: ContextGetter): void {
  program
    .command('run')
    .summary('the whole loop: ingest, distill, drift check, train, eval, export and the promotion gate')
    .description(
      'Runs every stage over a run directory (run.dir), one numbered folder per stage; stages whose inputs and\n' +
        'config are unchanged are skipped, so a rerun after a failure resumes at the failed stage.\n' +
        'Exit codes: 0 promoted, 3 not promoted, 4 retraining not needed (no drift), 5 unchanged (nothing new since\n' +
        'the last run), 1 failed, 2 bad usage/config/input. With --json a failure prints a JSON summary too.',
    )
    .option('--dir <dir>', 'run directory (default: run.dir)')
    .option('--traces <files...>', 'fresh trace files or globs (default: ingest.inputs)')
    .option('--release <dir>', 'release location of the deployed draft (default: promotion.release)')
    .option('--force', 'retrain even when the deployed draft shows no drift')
    .option('--time-budget <seconds>', 'training time budget (train.time_budget_s)', Number)
    .option('--limit <n>', 'distill at most n rows per split (distill.limit; quick trials)', Number)
    .option('--max-tokens <n>', 'most tokens per distilled completion (distill.max_tokens)', Number)
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
          'distill.limit': flags.limit,
          'distill.max_tokens': flags.maxTokens,
        },
      });
      const { checkTargetFiles, readTargetApiKey } = await import('../../targets/open.js');
      const apiKey = readTargetApiKey(config.target, process.env);
      checkTargetFiles(config.target); // before ingest runs, not after it
      const options = {
        dir: flags.dir ? '--dir' : 'run.dir',
        release: flags.release ? '--release' : 'promotion.release',
      };
      claimPipelineOutputs('run', config, options);
      const { runPipeline, OUTCOME_EXIT_CODES } = await import('../../pipeline/index.js');
      const kept = 'finished stages are kept in the run directory: run the same command again to resume there';
      const result = await interruptible(ctx.io, { command: 'run', kept, stageWatchesSignal: true }, (signal) =>
        runPipeline(config, { progress: ctx.progress, signal, apiKey }),
      );
      if (ctx.globals.json) ctx.io.stdout(JSON.stringify(result, null, 2) + '\n');
      else {
        const lines = [`${result.outcome.toUpperCase()}: ${result.reason}`, `run directory ${result.dir}`];
        for (const stage of result.stages)
          lines.push(
            `  ${stage.stage.padEnd(11)} ` +
              `${stage.status}${stage.status === 'ran' ? ` (${stage.seconds.toFixed(1)} s)` : ''}`,
          );
        for (const c of result.candidates) {
          lines.push(
            `  ${c.name}: hit rate ${c.hit_rate === null ? '–' : (100 * c.hit_rate).toFixed(1) + '%'}, τ ` +
              `${c.tau.toFixed(2)} at k = ${c.best_k}, expected speed-up ${c.speedup.toFixed(2)}×`,
          );
        }
        if (result.report) lines.push(`report: ${result.report}`);
        if (result.export) lines.push(`export: ${result.export}`);
        if (result.outcome === 'promoted' && result.release)
          lines.push(`released to ${result.release} (promotion.json)`);
        if (result.serve_instead) lines.push(`serve instead: ${result.serve_instead}`);
        if (result.retention) lines.push(`retention: deleted ${result.retention.deleted.length} path(s)`);
        ctx.io.stdout(lines.join('\n') + '\n');
      }
      if (result.outcome !== 'promoted' && result.outcome !== 'failed') {
        throw new ExitStatus(OUTCOME_EXIT_CODES[result.outcome], OUTCOME_CODES[result.outcome], result.reason);
      }
    });
}
