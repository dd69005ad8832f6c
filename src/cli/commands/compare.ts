/**
 * `fireopt compare <reportA> <reportB>`: promote B over A? For CI: exit 0 = promote, 3 = do not
 * promote (as `fireopt run`), 2 = the reports cannot be compared (unreadable, another schema,
 * different data, different cost assumptions), 1 = compare itself failed.
 */
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { ExitStatus, RunError } from '../../errors.js';
import type { ContextGetter } from '../context.js';

interface CompareFlags {
  margin?: number;
  samples?: number;
  candidateA?: string;
  candidateB?: string;
}

export function register(program: Command, context: ContextGetter): void {
  program
    .command('compare')
    .summary('Δτ and Δ speed-up of report B over report A with a bootstrap CI; promote / do not promote')
    .description(
      'Exit codes: 0 promote B, 3 do not promote, 2 reports that cannot be compared (other data, other cost\n' +
        'assumptions: c measured in one and given in the other, or measured against another target), 1 failed.',
    )
    .argument('<reportA>', 'report.json of the current draft (the baseline)')
    .argument('<reportB>', 'report.json of the candidate')
    .option('--margin <m>', 'promote only if the 95% CI of Δ speed-up lies above m (default 0)', Number)
    .option('--samples <n>', 'bootstrap resamples (default 2000)', Number)
    .option('--candidate-a <name>', 'candidate inside report A (default: its --model)')
    .option('--candidate-b <name>', 'candidate inside report B (default: its --model)')
    .action(async (pathA: string, pathB: string, flags: CompareFlags) => {
      const ctx = context();
      const config = loadConfig({
        file: ctx.globals.config,
        sets: ctx.globals.set,
        flags: { 'eval.margin': flags.margin, 'eval.bootstrap_samples': flags.samples },
      });
      const { readReport, compareReports } = await import('../../evaluate/compare.js');
      const comparison = compareReports(readReport(pathA), pathA, readReport(pathB), pathB, {
        margin: config.eval.margin,
        samples: config.eval.bootstrap_samples,
        seed: config.eval.seed,
        candidateA: flags.candidateA,
        candidateB: flags.candidateB,
      });
      if (ctx.globals.json) ctx.io.stdout(JSON.stringify(comparison, null, 2) + '\n');
      else {
        const ci = (v: [number, number]): string => `[${v[0].toFixed(3)}, ${v[1].toFixed(3)}]`;
        ctx.io.stdout(
          [
            `cost: ${comparison.a.cost}`,
            `A ${comparison.a.candidate}: τ ${comparison.a.tau.toFixed(3)}, ` +
              `speed-up ${comparison.a.speedup.toFixed(3)}× at k = ${comparison.a.best_k}`,
            `B ${comparison.b.candidate}: τ ${comparison.b.tau.toFixed(3)}, ` +
              `speed-up ${comparison.b.speedup.toFixed(3)}× at k = ${comparison.b.best_k}`,
            `Δτ ${comparison.delta_tau.estimate.toFixed(3)} 95% CI ${ci(comparison.delta_tau.ci95)}; ` +
              `Δ speed-up ${comparison.delta_speedup.estimate.toFixed(3)} ` +
              `95% CI ${ci(comparison.delta_speedup.ci95)} ` +
              `(${comparison.conversations} conversations, ${comparison.bootstrap_samples} resamples)`,
            `${comparison.promote ? 'PROMOTE' : 'DO NOT PROMOTE'}: ${comparison.reason}`,
          ].join('\n') + '\n',
        );
      }
      if (!comparison.promote) throw new ExitStatus(3, 'E_NOT_PROMOTED', comparison.reason);
    });
}
