/** `fireopt train --config draft.yaml`: train the draft (the stage is imported lazily). */
import { Option, type Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { ExitStatus, UsageError } from '../../errors.js';
import type { FireoptConfig } from '../../config/schema.js';
import { detectCheckpointKind } from '../../formats/load-model.js';
import type { MeasureDraftCost } from '../../train/candidates.js';
import type { ContextGetter } from '../context.js';
import { BACKEND_CHOICES } from '../../train/config.js';
import { claimOutputs } from '../../util/output.js';
import { forceOption, interruptible } from '../safety.js';

interface TrainFlags {
  targets?: string;
  out?: string;
  resume: boolean;
  backend?: string;
  timeBudget?: number;
  maxSteps?: number;
  targetModel?: string;
  force?: boolean;
}

export function register(program: Command, context: ContextGetter): void {
  program
    .command('train')
    .summary('train the draft model on distillation targets (automatic size and learning-rate selection by default)')
    .description(
      'Read <targets>/{train,heldout}.arrow and write <out>/draft (the chosen draft checkpoint), metrics.jsonl,\n' +
        'curves.svg and, with automatic selection, leaderboard.{json,md}. After a crash or kill, run the same\n' +
        'command with --resume to continue exactly where the last saved state left off.',
    )
    .argument('[targets]', 'targets directory from `fireopt distill` (default: train.targets from the config)')
    .option('-o, --out <dir>', 'run folder (default: train.out)')
    .option('--resume', 'continue the run in --out from its saved state', false)
    .addOption(new Option('--backend <name>', 'TensorFlow.js backend').choices([...BACKEND_CHOICES]))
    .option('--time-budget <seconds>', 'time budget of the automatic selection', Number)
    .option('--max-steps <n>', 'optimiser steps (upper bound)', Number)
    .option('--target-model <path>', 'the target model (embedding init, tokenizer for the checkpoint)')
    .addOption(forceOption())
    .action(async (targets: string | undefined, flags: TrainFlags) => {
      const ctx = context();
      const config = loadConfig({
        file: ctx.globals.config,
        sets: ctx.globals.set,
        flags: {
          'train.targets': targets,
          'train.out': flags.out,
          'train.backend': flags.backend,
          'train.time_budget_s': flags.timeBudget,
          'train.max_steps': flags.maxSteps,
          'train.target_model': flags.targetModel,
        },
      });
      const { train } = config;
      if (!train.targets) throw new UsageError('train: no targets directory given (argument or train.targets)');
      if (!train.out) throw new UsageError('train: no run folder given (--out or train.out)');
      claimOutputs({
        command: 'train',
        outputs: [{ path: train.out, kind: 'train-run', option: flags.out ? '--out' : 'train.out' }],
        inputs: [train.targets, train.target_model, train.init_from, train.tokenizer],
        force: flags.force,
      });
      const { runTrain } = await import('../../train/index.js');
      const measureCost = await trainCostMeter(config, (message) =>
        ctx.progress({ kind: 'log', level: 'info', message }),
      );
      const [targetsDir, out] = [train.targets, train.out];
      const kept = `the state of the last checkpoint is kept in ${out}: run the same command with --resume to continue`;
      await interruptible(ctx.io, { command: 'train', kept, stageWatchesSignal: true }, async (signal) => {
        const summary = await runTrain(
          { targets: targetsDir, out, train: withStatedCost(config), resolvedConfig: config, resume: flags.resume },
          { progress: ctx.progress, signal, measureCost },
        );
        // Automatic selection answers "what should I serve?": a draft that cannot win exits 3, as `run` does.
        const notWorthServing = train.select !== 'off' && summary.outcome !== 'draft-wins';
        const status = (): void => {
          if (notWorthServing) throw new ExitStatus(3, 'E_NO_DRAFT_WINS', summary.verdict);
        };
        if (ctx.globals.json) {
          ctx.io.stdout(JSON.stringify(summary, null, 2) + '\n');
          return status();
        }
        const w = summary.winner;
        ctx.io.stdout(
          [
            `wrote ${summary.draft}: ${w.name}, ${w.parameters} parameters, ${w.steps} steps (${w.stopReason})`,
            `  held-out greedy hit rate ${w.best.hitRate.toFixed(3)} (untrained ` +
              `${w.untrained.hitRate.toFixed(3)}), τ ` +
              `${w.best.acceptanceLength.toFixed(2)}, expected speed-up ${w.best.expectedSpeedup.toFixed(2)}x`,
            `  vocabulary: ${summary.vocab.draft} of ${summary.vocab.target} target ` +
              `tokens (${(100 * summary.vocab.coverage).toFixed(1)}% of training tokens)`,
            `  c ${w.cost.ratio.toFixed(3)}: ${w.cost.source}`,
            ...summary.modelFree.map(
              (m) =>
                `  ${m.method} (model-free): hit rate ${m.hitRate.toFixed(3)}, expected ` +
                `speed-up ${m.expectedSpeedup.toFixed(2)}x`,
            ),
            ...summary.hybrids
              .slice(0, 1)
              .map(
                (h) =>
                  `  ${h.candidate} + suffix (hybrid, min_match ${h.minMatch ?? '∞'}): hit rate ` +
                  `${h.hitRate.toFixed(3)}, expected speed-up ${h.expectedSpeedup.toFixed(2)}x ` +
                  '(information only: no engine fireopt exports to serves it)',
              ),
            `${summary.outcome === 'draft-wins' ? '' : 'warning: '}${summary.verdict}`,
            ...(summary.leaderboard.length > 1 ? [`  leaderboard: ${summary.out}/leaderboard.md`] : []),
          ].join('\n') + '\n',
        );
        status();
      });
    });
}

/** With `eval.cost.engine: given`, selection prices drafts with eval's stated c (unless train states its own). */
function withStatedCost(config: FireoptConfig): FireoptConfig['train'] {
  const { train } = config;
  if (config.eval.cost.engine !== 'given' || train.search.cost_ratio !== undefined) return train;
  return { ...train, search: { ...train.search, cost_ratio: config.eval.cost_ratio } };
}

/**
 * Selection's c measured as eval measures it (eval.cost settings) when the target is a GGUF and
 * eval.cost.engine is not `given`; with `given`, eval's stated c; otherwise train estimates it.
 */
async function trainCostMeter(
  config: FireoptConfig,
  log: (line: string) => void,
): Promise<MeasureDraftCost | undefined> {
  const { train } = config;
  if (train.search.cost_ratio !== undefined || config.eval.cost.engine === 'given') return undefined;
  const targetModel =
    config.eval.cost.target_model ??
    (train.target_model && detectCheckpointKind(train.target_model) === 'gguf' ? train.target_model : undefined);
  const { draftCostMeter } = await import('../../evaluate/train-cost.js');
  return draftCostMeter({ ...config.eval, cost: { ...config.eval.cost, target_model: targetModel } }, log);
}
