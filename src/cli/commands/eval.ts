/**
 * `fireopt eval --model <draft> --data <targets> --out <dir>`: simulate speculative decoding
 * (the stage is imported lazily).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { InputError, UsageError } from '../../errors.js';
import type { CommandContext, ContextGetter } from '../context.js';
import { recordedDraftInputs } from '../draft-inputs.js';
import { claimOutputs } from '../../util/output.js';
import { forceOption, interruptible } from '../safety.js';

interface EvalFlags {
  model?: string;
  data?: string;
  baseline: string[];
  costRatio?: number;
  measureCost?: string;
  targetModel?: string;
  costThreads?: number;
  measureSpeedup?: string;
  speedupK?: number[];
  speedupPrompts?: number;
  speedupRuns?: number;
  out?: string;
  split?: string;
  limit?: number;
  force?: boolean;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];
const numberList = (value: string): number[] => value.split(',').map((part) => Number(part.trim()));

export function register(program: Command, context: ContextGetter): void {
  program
    .command('eval')
    .summary('predict the speed-up of a draft (and baselines) by simulating speculative decoding on target data')
    .description(
      'Greedy hit rate, simulated acceptance length τ and speed-up for k = ' +
        '1..8, per-position and sampling acceptance,\n' +
        'baselines on the same data and slices. Writes <out>/report.json, report.md and SVG plots.\n' +
        '--model and --baseline take a draft checkpoint directory, `prompt-lookup` or `suffix`; `--baseline hybrid` ' +
        'pairs the suffix tree with the --model draft (the tree where its match is long enough, the draft elsewhere).',
    )
    .option('-m, --model <draft>', 'the candidate: draft checkpoint directory, prompt-lookup or suffix')
    .option('-d, --data <targets>', 'targets directory written by distill (default: the draft was trained on)')
    .option('-b, --baseline <draft|method>', 'another draft or model-free method to measure (repeatable)', collect, [])
    .option('--cost-ratio <c>', 'draft forward cost / target forward cost, given (default 0.05)', Number)
    .option(
      '--measure-cost <engine>',
      'measure c instead: llama-cpp times draft and target decode steps (needs --target-model), or given',
    )
    .option('--target-model <gguf>', 'the target GGUF that --measure-cost llama-cpp times the drafts against')
    .option('--cost-threads <n>', 'threads of the llama.cpp contexts when measuring (default 1)', Number)
    .option(
      '--measure-speedup <engine>',
      'llama-cpp: decode sampled prompts speculatively in llama.cpp, timed ' +
        'against plain decoding (needs --target-model)',
    )
    .option('--speedup-k <list>', 'draft lengths measured, comma-separated (default 1,2,4,6,8)', numberList)
    .option('--speedup-prompts <n>', 'prompts sampled from the split for the measurement (default 8)', Number)
    .option('--speedup-runs <n>', 'timed rounds of the measurement; the median is reported (default 5)', Number)
    .option('--split <split>', 'heldout (default) or train')
    .option('--limit <n>', 'at most n rows', Number)
    .option('-o, --out <dir>', 'output directory (replaced atomically)')
    .addOption(forceOption())
    .action(async (flags: EvalFlags) => {
      const ctx = context();
      if (flags.measureCost === 'llama-cpp' && flags.costRatio !== undefined) {
        throw new UsageError('eval: --cost-ratio gives c, --measure-cost llama-cpp measures it: pass one of them');
      }
      const config = loadConfig({
        file: ctx.globals.config,
        sets: ctx.globals.set,
        flags: {
          'eval.model': flags.model,
          'eval.data': flags.data,
          'eval.baselines': flags.baseline.length ? flags.baseline : undefined,
          'eval.cost_ratio': flags.costRatio,
          'eval.cost.engine': flags.measureCost,
          'eval.cost.target_model': flags.targetModel,
          'eval.cost.threads': flags.costThreads,
          'eval.speedup.engine': flags.measureSpeedup,
          'eval.speedup.k': flags.speedupK,
          'eval.speedup.prompts': flags.speedupPrompts,
          'eval.speedup.runs': flags.speedupRuns,
          'eval.split': flags.split,
          'eval.limit': flags.limit,
          'eval.out': flags.out,
        },
      });
      if (!config.eval.data && config.eval.model) {
        config.eval.data = defaultData(config.eval.model, config.eval.split, ctx);
      }
      const settings = config.eval;
      claimOutputs({
        command: 'eval',
        outputs: [{ path: settings.out, kind: 'eval-report', option: flags.out ? '--out' : 'eval.out' }],
        inputs: [settings.model, settings.data, ...settings.baselines, settings.cost.target_model],
        force: flags.force,
      });
      const { runEval } = await import('../../evaluate/index.js');
      const kept = 'no report written (an earlier report at the output path is untouched)';
      const { report, out } = await interruptible(ctx.io, { command: 'eval', kept, stageWatchesSignal: false }, () =>
        runEval(
          { eval: settings, resolvedConfig: config },
          { progress: ctx.progress, exportDraftGguf: exportDraftGgufLazily },
        ),
      );
      if (ctx.globals.json) {
        ctx.io.stdout(
          JSON.stringify(
            {
              out,
              winner: report.winner,
              candidates: report.candidates.map((c) => ({
                name: c.name,
                greedy_hit_rate: c.greedy_hit_rate,
                best_k: c.best_k,
                tau: c.by_k[c.best_k - 1].tau,
                best_speedup: c.best_speedup,
                cost_ratio: c.cost_ratio,
                cost_ratio_source: c.cost_ratio_source,
              })),
              measured: report.measured?.candidates.map((c) => ({
                name: c.name,
                by_k: c.by_k.map((m) => ({
                  k: m.k,
                  speedup: m.speedup.median,
                  predicted_speedup: m.predicted_speedup,
                  predicted_speedup_cost_phase: m.predicted_speedup_cost_phase,
                  tau: m.tau,
                  simulated_tau: m.simulated_tau,
                })),
              })),
            },
            null,
            2,
          ) + '\n',
        );
        return;
      }
      const lines = [
        `wrote ${out}/report.json, report.md and plots: ${report.data.rows} ` +
          `completions, ${report.data.tokens} target tokens`,
      ];
      for (const c of report.candidates) {
        const hit = c.greedy_hit_rate === null ? '–' : `${(100 * c.greedy_hit_rate).toFixed(1)}%`;
        const cost = c.cost_measurement ? `, c ${c.cost_ratio.toFixed(3)} measured in llama.cpp` : '';
        lines.push(
          `  ${c.name}: hit rate ${hit}, τ ${c.by_k[c.best_k - 1].tau.toFixed(3)} ` +
            `at k = ${c.best_k}, expected speed-up ${c.best_speedup.toFixed(2)}×${cost}`,
        );
      }
      if (report.winner !== report.candidates[0].name) lines.push(`  a baseline wins: ${report.winner}`);
      if (report.measured) {
        const plain = report.measured.plain_tokens_per_second.median;
        lines.push(`measured in llama.cpp (plain ${plain.toFixed(1)} tokens/s; outputs equal to plain decoding):`);
        for (const c of report.measured.candidates) {
          const best = c.by_k.reduce((a, b) => (b.speedup.median > a.speedup.median ? b : a));
          lines.push(
            `  ${c.name}: ${best.speedup.median.toFixed(2)}× at k = ${best.k} ` +
              `(${best.speedup.min.toFixed(2)}–${best.speedup.max.toFixed(2)}), predicted ` +
              `${best.predicted_speedup.toFixed(2)}× (${best.predicted_speedup_cost_phase.toFixed(2)}× from the cost ` +
              `phase), τ ${best.tau.toFixed(2)} ` +
              `(simulated ${best.simulated_tau.toFixed(2)})`,
          );
        }
      }
      ctx.io.stdout(lines.join('\n') + '\n');
    });
}

/**
 * Without --data (or eval.data): the targets the draft was trained on, from its manifest, saying so
 * on stderr. Undefined when the model records none, so the stage reports the missing data as before.
 */
function defaultData(model: string, split: string, ctx: CommandContext): string | undefined {
  const recorded = recordedDraftInputs(model);
  if (!recorded?.targets) return undefined;
  if (!existsSync(join(recorded.targets, 'manifest.json'))) {
    throw new InputError(
      `eval: no --data given, and the targets ${model} was trained on (${recorded.targets}, recorded in ` +
        `${recorded.manifestPath}) are no longer there`,
      'pass --data <targets dir> (written by fireopt distill)',
    );
  }
  ctx.progress({
    kind: 'log',
    level: 'info',
    message:
      `eval: no --data given: evaluating on the ${split} split of ${recorded.targets} ` +
      `(the targets ${model} was trained on)`,
  });
  return recorded.targets;
}

/** `fireopt export`'s GGUF path for one draft, loaded only when a measurement needs it. */
async function exportDraftGgufLazily(draftDir: string, targetGguf: string, outDir: string): Promise<string> {
  const { exportDraftGguf } = await import('../../export/index.js');
  return exportDraftGguf(draftDir, targetGguf, outDir);
}
