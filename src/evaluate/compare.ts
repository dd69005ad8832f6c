/**
 * `fireopt compare`: is report B's candidate better than report A's by more than a margin?
 * Δτ and Δ speed-up (B − A, each at its own best k) with a percentile bootstrap confidence interval
 * over conversations: conversations are resampled with replacement (paired: the same draw for A
 * and B), and τ is recomputed as Σ tokens / Σ steps over the draw.
 */
import { readFileSync } from 'node:fs';
import { InputError } from '../errors.js';
import { costAssumption, sameCostAssumption } from './cost.js';
import { SeededRandom } from '../model/random.js';
import {
  REPORT_KIND,
  REPORT_SCHEMA_VERSION,
  reportSchema,
  type CandidateReport,
  type EvalReport,
} from './report-schema.js';

export interface ComparedCandidate {
  report: string;
  candidate: string;
  best_k: number;
  tau: number;
  speedup: number;
  /** The cost assumption its speed-up rests on (the same for A and B, or compare refuses). */
  cost: string;
}

export interface Comparison {
  a: ComparedCandidate;
  b: ComparedCandidate;
  conversations: number;
  delta_tau: { estimate: number; ci95: [number, number] };
  delta_speedup: { estimate: number; ci95: [number, number] };
  margin: number;
  bootstrap_samples: number;
  /** Promote B when the lower end of Δ speed-up's 95% interval exceeds the margin. */
  promote: boolean;
  reason: string;
}

/** Read and validate a report.json. */
export function readReport(path: string): EvalReport {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new InputError(
      `${path}: not a readable JSON report (${(error as Error).message})`,
      'HINT: run `fireopt eval ... --out <dir>` and pass <dir>/report.json',
    );
  }
  const header = raw as { kind?: unknown; schema_version?: unknown };
  if (header?.kind !== REPORT_KIND) throw new InputError(`${path}: not an eval report (kind ${String(header?.kind)})`);
  if (header.schema_version !== REPORT_SCHEMA_VERSION) {
    throw new InputError(
      `${path}: eval report schema version ${String(header.schema_version)}, ` +
        `this fireopt reads ${REPORT_SCHEMA_VERSION}`,
      'HINT: re-run `fireopt eval`',
    );
  }
  const parsed = reportSchema.safeParse(raw);
  if (!parsed.success)
    throw new InputError(
      `${path}: invalid eval report: ${parsed.error.issues
        .slice(0, 5)
        .map((i) => `${i.path.join('.')}: ${i.message}`)
        .join('; ')}`,
    );
  return parsed.data;
}

function pick(report: EvalReport, path: string, name?: string): CandidateReport {
  if (!name) return report.candidates[0];
  const found = report.candidates.find((c) => c.name === name);
  if (!found)
    throw new InputError(
      `${path}: no candidate named ${name} (has ${report.candidates.map((c) => c.name).join(', ')})`,
    );
  return found;
}

export interface CompareOptions {
  margin: number;
  samples: number;
  seed: number;
  /** Candidate names inside each report (default: each report's first, its --model). */
  candidateA?: string;
  candidateB?: string;
}

/** Compare report B against report A (the current one). */
export function compareReports(
  reportA: EvalReport,
  pathA: string,
  reportB: EvalReport,
  pathB: string,
  options: CompareOptions,
): Comparison {
  if (reportA.data.sha256 !== reportB.data.sha256) {
    throw new InputError(
      `${pathA} and ${pathB} were measured on different data (sha256 ` +
        `${reportA.data.sha256.slice(0, 12)}… vs ${reportB.data.sha256.slice(0, 12)}…)`,
      'HINT: evaluate both with the same --data and split',
    );
  }
  const a = pick(reportA, pathA, options.candidateA);
  const b = pick(reportB, pathB, options.candidateB);
  // A speed-up is τ / (k·c + v_k): with c measured in one and assumed in the other, Δ measures the assumption.
  const costA = costAssumption(reportA, a);
  const costB = costAssumption(reportB, b);
  if (!sameCostAssumption(costA, costB)) {
    throw new InputError(
      `${pathA} and ${pathB} rest on different cost assumptions: ` +
        `${a.name} ${costA.description}; ${b.name} ${costB.description}`,
      'HINT: evaluate both with the same eval.cost (engine, target model, threads) or the same eval.cost_ratio',
      'E_COST_MISMATCH',
    );
  }
  const ka = a.best_k;
  const kb = b.best_k;
  // One step's cost in target steps, as eval priced it: k·c for the draft (the hybrid pays it in its draft
  // steps only) + v_k, the target's verification (1 where it was not measured).
  const stepCost = (c: CandidateReport, k: number): number =>
    k * c.cost_ratio * (c.hybrid?.draft_share_by_k[k - 1] ?? 1) + (c.verify_cost_by_k?.[k - 1] ?? 1);
  const stepsB = new Map(b.conversations.map((c) => [c.id, c]));
  const paired = a.conversations
    .filter((c) => stepsB.has(c.id))
    .map((c) => ({
      tokens: c.tokens,
      stepsA: c.steps[ka - 1],
      stepsB: (stepsB.get(c.id) as { steps: number[] }).steps[kb - 1],
    }));
  if (!paired.length) throw new InputError(`${pathA} and ${pathB} share no conversations`);
  const measure = (indices: ArrayLike<number>): [number, number] => {
    let tokens = 0;
    let stepsA = 0;
    let stepsB = 0;
    for (let i = 0; i < indices.length; i++) {
      const p = paired[indices[i]];
      tokens += p.tokens;
      stepsA += p.stepsA;
      stepsB += p.stepsB;
    }
    const tauA = stepsA ? tokens / stepsA : 1;
    const tauB = stepsB ? tokens / stepsB : 1;
    return [tauB - tauA, tauB / stepCost(b, kb) - tauA / stepCost(a, ka)];
  };
  const all = Int32Array.from(paired, (_, i) => i);
  const [deltaTau, deltaSpeedup] = measure(all);
  const random = new SeededRandom(options.seed);
  const tauDraws = new Float64Array(options.samples);
  const speedupDraws = new Float64Array(options.samples);
  const draw = new Int32Array(paired.length);
  for (let s = 0; s < options.samples; s++) {
    for (let i = 0; i < draw.length; i++) draw[i] = Math.floor(random.nextFloat() * paired.length);
    [tauDraws[s], speedupDraws[s]] = measure(draw);
  }
  const interval = (draws: Float64Array): [number, number] => {
    const sorted = Float64Array.from(draws).sort();
    const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.floor(q * sorted.length)))];
    return [at(0.025), at(0.975)];
  };
  const speedupCi = interval(speedupDraws);
  const promote = speedupCi[0] > options.margin;
  const reason = promote
    ? `Δ speed-up ${deltaSpeedup.toFixed(3)} (95% CI ` +
      `${speedupCi[0].toFixed(3)}…${speedupCi[1].toFixed(3)}) is above the margin ${options.margin}`
    : `the 95% CI of Δ speed-up ` +
      `(${speedupCi[0].toFixed(3)}…${speedupCi[1].toFixed(3)}) does not lie above the margin ${options.margin}`;
  const summary = (report: string, c: CandidateReport, k: number, cost: string): ComparedCandidate => ({
    report,
    candidate: c.name,
    best_k: k,
    tau: c.by_k[k - 1].tau,
    speedup: c.by_k[k - 1].speedup,
    cost,
  });
  return {
    a: summary(pathA, a, ka, costA.description),
    b: summary(pathB, b, kb, costB.description),
    conversations: paired.length,
    delta_tau: { estimate: deltaTau, ci95: interval(tauDraws) },
    delta_speedup: { estimate: deltaSpeedup, ci95: speedupCi },
    margin: options.margin,
    bootstrap_samples: options.samples,
    promote,
    reason,
  };
}
