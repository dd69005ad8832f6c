/** report.md: the report as tables a person reads (and a plain sentence when a baseline wins). */
import type { EvalReport } from './report-schema.js';

const fixed = (value: number | null, digits = 3): string => (value === null ? '–' : value.toFixed(digits));
const percent = (value: number | null): string => (value === null ? '–' : `${(100 * value).toFixed(1)}%`);

function table(header: string[], rows: string[][]): string {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

export function renderMarkdown(report: EvalReport): string {
  const [candidate, ...baselines] = report.candidates;
  const lines: string[] = [];
  lines.push(`# fireopt eval: ${candidate.name}`, '');
  lines.push(
    `Data: \`${report.data.path}\` (${report.data.split} split): ` +
      `${report.data.rows} completions, ${report.data.conversations} conversations, ` +
      `${report.data.tokens} target tokens; ${report.data.rows_with_top_k} rows with top-k log-probabilities.`,
    '',
  );
  const winner = report.candidates.find((c) => c.name === report.winner);
  if (winner && winner.name !== candidate.name) {
    lines.push(
      `**A baseline wins: ${winner.name}** reaches an expected speed-up of ` +
        `${fixed(winner.best_speedup, 2)}× (k = ${winner.best_k}) ` +
        `against ${fixed(candidate.best_speedup, 2)}× (k = ${candidate.best_k}) for ${candidate.name}.`,
      '',
    );
  } else if (baselines.length) {
    lines.push(
      `${candidate.name} beats every baseline: ` +
        `${fixed(candidate.best_speedup, 2)}× expected speed-up at k = ${candidate.best_k}.`,
      '',
    );
  }
  lines.push('## Summary', '');
  lines.push(
    table(
      [
        'method',
        'cost ratio c',
        'greedy hit rate',
        'best k',
        'τ at best k',
        'acceptance at best k',
        'expected speed-up',
        'sampling acceptance Σmin(p,q)',
        'tokens/min',
      ],
      report.candidates.map((c) => {
        const best = c.by_k[c.best_k - 1];
        const sampling = c.sampling_acceptance
          ? `${fixed(c.sampling_acceptance.lower)}–${fixed(c.sampling_acceptance.upper)}`
          : '–';
        return [
          c.name,
          fixed(c.cost_ratio, 3),
          percent(c.greedy_hit_rate),
          String(c.best_k),
          fixed(best.tau),
          percent(best.acceptance_rate),
          `${fixed(c.best_speedup, 2)}×`,
          sampling,
          Math.round(c.throughput.tokens_per_min).toLocaleString('en-US'),
        ];
      }),
    ),
    '',
  );
  const anyMeasured = report.candidates.some((c) => c.verify_cost_by_k !== null);
  lines.push(
    'τ = target tokens per target forward pass (vLLM’s 1 + accepted / drafts, every step counted as a draft round); ' +
      (anyMeasured
        ? 'expected speed-up S = τ / (k·c + v_k) with v_k the target’s measured ' +
          'verification of k + 1 tokens in target decode steps; '
        : 'expected speed-up S = τ / (k·c + 1); ') +
      'model-free methods cost c = 0. The sampling-acceptance range is ' +
      'bounded by the target mass outside its stored top-k.',
    '',
  );
  lines.push('## Cost ratio c', '');
  for (const c of report.candidates) {
    const m = c.cost_measurement;
    if (c.hybrid) {
      const h = c.hybrid;
      const threshold = h.min_match === null ? 'never (the draft alone did best)' : `≥ ${h.min_match} tokens`;
      const chosen = h.chosen_by === 'given' ? 'given' : `chosen on ${h.calibration_rows} train rows`;
      lines.push(
        `- ${c.name}: the suffix tree where its matched context is ${threshold} (${chosen}), ${h.draft} elsewhere; ` +
          `c = ${fixed(c.cost_ratio, 3)} (${c.cost_ratio_source}) paid in ` +
          `${fixed(100 * h.draft_share_by_k[c.best_k - 1], 1)}% of the steps at k = ${c.best_k}.`,
      );
    } else if (c.cost_ratio_source === 'model-free') {
      lines.push(
        `- ${c.name}: c = 0 ` +
          `(model-free)${c.verify_cost_by_k ? '; verification costs v_k as measured for the first draft' : ''}.`,
      );
    } else if (!m) {
      lines.push(
        `- ${c.name}: c = ${fixed(c.cost_ratio, 3)}, given (not measured); ` +
          `verification of k + 1 tokens assumed to cost one target step.`,
      );
    } else {
      const load = m.load_average.before.map((v) => v.toFixed(2)).join(' / ');
      lines.push(
        `- ${c.name}: c = ${fixed(m.cost_ratio, 3)}, measured in llama.cpp: ` +
          `draft step ${fixed(m.draft_step_ms, 3)} ms, target step ${fixed(m.target_step_ms, 3)} ms ` +
          `(batch-1 greedy decode at ${m.context_tokens} cached tokens; ` +
          `${m.threads} thread${m.threads === 1 ? '' : 's'}, context ` +
          `${m.context_size}, F32 draft with ${m.draft_vocab_size} vocabulary rows; ` +
          `median of ${m.runs} runs of ${m.steps_per_run} steps after ` +
          `${m.warmup_runs} warm-up runs; ${m.cpus} × ${m.cpu_model}, load average ${load} before timing).`,
      );
    }
  }
  lines.push('');
  const measuredCandidates = report.candidates.filter((c) => c.cost_measurement !== null);
  if (measuredCandidates.length) {
    lines.push(
      'Target verification of k drafts (k + 1 tokens in one batch), ms and v_k = verification / target step:',
      '',
    );
    lines.push(
      table(
        ['k', ...measuredCandidates.flatMap((c) => [`verify ms ${c.name}`, `v_k ${c.name}`])],
        candidate.by_k.map((_, i) => [
          String(i + 1),
          ...measuredCandidates.flatMap((c) => [
            fixed(c.cost_measurement!.target_verify_ms_by_k[i] ?? null, 3),
            fixed(c.cost_measurement!.verify_cost_by_k[i] ?? null, 2),
          ]),
        ]),
      ),
      '',
    );
  }
  lines.push('## τ and speed-up by k', '');
  lines.push(
    table(
      ['k', ...report.candidates.flatMap((c) => [`τ ${c.name}`, `S ${c.name}`])],
      candidate.by_k.map((_, i) => [
        String(i + 1),
        ...report.candidates.flatMap((c) => [fixed(c.by_k[i].tau), fixed(c.by_k[i].speedup, 2)]),
      ]),
    ),
    '',
  );
  lines.push('Closed-form and per-position speed-up estimates (for checking the i.i.d. assumption):', '');
  lines.push(
    table(
      ['k', ...report.candidates.flatMap((c) => [`closed form ${c.name}`, `per position ${c.name}`])],
      candidate.by_k.map((_, i) => [
        String(i + 1),
        ...report.candidates.flatMap((c) => [
          fixed(c.by_k[i].speedup_closed_form, 2),
          fixed(c.by_k[i].speedup_per_position, 2),
        ]),
      ]),
    ),
    '',
  );
  lines.push(`## Acceptance by draft position (k = ${report.k_max})`, '');
  lines.push(
    table(
      ['position', ...report.candidates.flatMap((c) => [`conditional ${c.name}`, `unconditional ${c.name}`])],
      candidate.position_acceptance.map((_, i) => [
        String(i + 1),
        ...report.candidates.flatMap((c) => [
          percent(c.position_acceptance[i].conditional),
          percent(c.position_acceptance[i].unconditional),
        ]),
      ]),
    ),
    '',
  );
  lines.push('## Slices', '');
  for (const dimension of ['source_file', 'turn_index', 'finish_reason', 'tag'] as const) {
    const values = [...new Set(candidate.slices.filter((s) => s.dimension === dimension).map((s) => s.value))];
    if (!values.length) continue;
    lines.push(`### by ${dimension.replace('_', ' ')}`, '');
    lines.push(
      table(
        [
          dimension,
          'rows',
          'tokens',
          ...report.candidates.flatMap((c) => [`hit rate ${c.name}`, `best S ${c.name} (k)`]),
        ],
        values.map((value) => {
          const first = candidate.slices.find((s) => s.dimension === dimension && s.value === value);
          return [
            value,
            String(first?.rows ?? 0),
            String(first?.tokens ?? 0),
            ...report.candidates.flatMap((c) => {
              const slice = c.slices.find((s) => s.dimension === dimension && s.value === value);
              return slice
                ? [percent(slice.hit_rate), `${fixed(slice.best_speedup, 2)}× (${slice.best_k})`]
                : ['–', '–'];
            }),
          ];
        }),
      ),
      '',
    );
  }
  if (report.measured) lines.push(...measuredSection(report.measured));
  const measuredPlot = report.measured ? ', `speedup-measured.svg`' : '';
  lines.push(
    `Plots: \`acceptance-by-position.svg\`, \`tau-vs-k.svg\`, \`speedup-vs-k.svg\`, \`slices.svg\`${measuredPlot}.`,
    '',
  );
  return lines.join('\n');
}

/** How the *Measured* section's prediction is made, with the shared costs the rounds paid. */
function costModelLine(measured: NonNullable<EvalReport['measured']>): string {
  const costs = measured.costs_in_run;
  const perDrafter = measured.candidates
    .map(
      (c) =>
        `${c.name}: e = ${fixed(c.costs_in_run.draft_evaluation_ms, 2)} ms ` +
        `(c = ${fixed(c.costs_in_run.cost_ratio, 3)}), o = ${fixed(c.costs_in_run.step_overhead_ms, 2)} ms, ` +
        `P_draft = ${fixed(c.costs_in_run.draft_prefill_ms, 1)} ms`,
    )
    .join('; ');
  return (
    'Predicted from the simulated steps and the costs paid in the same rounds: a decoding costs ' +
    'P_target + P_draft + Σ_d n_d·(v_d + d·e + o), plain decoding P_target + N·t (medians over the rounds: ' +
    `t = ${fixed(costs.plain_step_ms, 2)} ms, P_target = ${fixed(costs.target_prefill_ms, 1)} ms, ` +
    `v_d = ${costs.verify_cost_by_drafted.map((v) => fixed(v, 2)).join(', ')} plain steps for d = 0…` +
    `${costs.verify_cost_by_drafted.length - 1}; ${perDrafter}). ` +
    "*Predicted from the cost phase* uses each candidate's c and v_k from the summary instead."
  );
}

/** The *Measured* section: real speculative decoding in llama.cpp beside the prediction. */
function measuredSection(measured: NonNullable<EvalReport['measured']>): string[] {
  const load = measured.load_average;
  const lines = [
    '## Measured',
    '',
    `Real greedy speculative decoding in ${measured.engine_version} against \`${measured.target_model}\`: ` +
      `${measured.prompts} prompts × at most ${measured.max_tokens} new ` +
      `tokens (${measured.tokens} tokens per round), ` +
      `${measured.threads} thread(s), median of ${measured.runs} rounds interleaved with plain decoding ` +
      `(${measured.warmup_runs} untimed first). Plain decoding: ` +
      `${fixed(measured.plain_tokens_per_second.median, 1)} tokens/s. Every output equalled plain greedy decoding ` +
      `token for token. Machine: ${measured.cpus} × ${measured.cpu_model}, load average ` +
      `${fixed(load.before[0], 2)} before, ${fixed(load.after[0], 2)} after.`,
    '',
    costModelLine(measured),
    '',
  ];
  lines.push(
    table(
      [
        'method',
        'k',
        'τ measured',
        'τ simulated',
        'tokens/s',
        'speed-up measured (min–max)',
        'predicted',
        'measured / predicted',
        'predicted from the cost phase',
        'v, c as paid',
      ],
      measured.candidates.flatMap((c) =>
        c.by_k.map((m) => [
          c.name,
          String(m.k),
          fixed(m.tau, 3),
          fixed(m.simulated_tau, 3),
          fixed(m.tokens_per_second.median, 1),
          `${fixed(m.speedup.median, 2)}× (${fixed(m.speedup.min, 2)}–${fixed(m.speedup.max, 2)})`,
          `${fixed(m.predicted_speedup, 2)}×`,
          fixed(m.measured_over_predicted, 2),
          `${fixed(m.predicted_speedup_cost_phase, 2)}×`,
          `${fixed(m.verify_cost_in_run, 2)}, ${fixed(m.draft_cost_in_run, 3)}`,
        ]),
      ),
    ),
    '',
  );
  return lines;
}
