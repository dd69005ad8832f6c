/**
 * The measured speed-up (`eval.speedup.engine: llama-cpp`): every candidate decodes sampled prompts
 * speculatively in llama.cpp against the target GGUF, timed against plain greedy decoding of the same
 * prompts in the same process (speculation/llama-cpp-speedup.ts), and the output is checked equal to
 * plain decoding. Beside each measurement: the simulator's τ on the same prompts and outputs and the
 * cost model's predicted speed-up from it, so that measured / predicted says how far the model is off.
 * The prediction takes its costs from the same interleaved rounds (speculation/loop-cost.ts): prefills,
 * verification by drafted length, draft evaluations and per-step overhead, fitted across configurations;
 * the prediction from the separately timed c and v_k (`eval.cost`) is kept beside it.
 *
 * Drafts decode as `fireopt export` writes them (a GGUF over the target's vocabulary), through the
 * exporter the command hands in (stages do not import each other); model-free methods propose with
 * fireopt's own proposers. A target or draft whose tokenizer differs from the data's is refused.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { InputError } from '../errors.js';
import {
  acceptanceLength,
  emptyCounts,
  matchesFromTeacherForcing,
  matchesWithProposer,
  simulateGreedy,
  speedupFromCounts,
  stepsByDrafted,
  teacherForcedDraft,
  type CompletionMatches,
  type DraftModel,
  type Proposer,
} from '../speculation/index.js';
import { measureLlamaCppSpeedup, spread, type SpeedupDrafter } from '../speculation/llama-cpp-speedup.js';
import { fitLoopCosts, predictedLoopMs } from '../speculation/loop-cost.js';
import {
  checkSameTokenizer,
  tokenizerIdentity,
  type ExpectedTokenizer,
  type TokenizerIdentity,
} from '../tokenizer/identity.js';
import { loadTokenizer } from '../tokenizer/load.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { EvalConfig } from './config.js';
import type { MeasuredSpeedup } from './report-schema.js';

/** Writes the draft checkpoint `draftDir` as a GGUF for `targetGguf` into `outDir`; returns the GGUF's path. */
export type DraftGgufExporter = (draftDir: string, targetGguf: string, outDir: string) => Promise<string>;

/** A candidate as the measurement needs it: how it proposes, and the cost model's c and v_k for it. */
export interface SpeedupCandidate {
  name: string;
  /** A draft: its checkpoint, the model the simulator runs, and its tokenizer (when it records one). */
  draft?: { path: string; model: DraftModel; tokenizer?: Tokenizer | TokenizerIdentity };
  /** A model-free method. */
  proposer?: Proposer;
  costRatio: number;
  /** v_k for k = 1..8 (null: 1). */
  verifyCostByK: number[] | null;
}

/** Measure every candidate's real speed-up on the sampled prompts (token ids, row ids) beside the prediction. */
export async function measureSpeedup(
  candidates: readonly SpeedupCandidate[],
  sample: { ids: readonly (readonly number[])[]; rows: readonly string[] },
  config: EvalConfig,
  deps: { exportDraftGguf?: DraftGgufExporter; dataTokenizer?: ExpectedTokenizer; log: (line: string) => void },
): Promise<MeasuredSpeedup> {
  const settings = config.speedup;
  const prompts = sample.ids;
  if (!config.cost.target_model)
    throw new InputError(
      'eval: measuring the speed-up in llama.cpp needs the target GGUF',
      'HINT: pass --target-model <target.gguf> (eval.cost.target_model)',
    );
  const targetModel = resolve(config.cost.target_model);
  if (!existsSync(targetModel)) throw new InputError(`${targetModel}: no such target GGUF (eval.cost.target_model)`);
  if (prompts.length === 0) throw new InputError('eval: no prompts to measure the speed-up on (the split is empty)');
  const targetTokenizer = await loadTokenizer(targetModel);
  const expected = {
    identity: tokenizerIdentity(targetTokenizer),
    label: `the target's vocabulary (${targetModel})`,
    load: async () => targetTokenizer,
  };
  for (const candidate of candidates) {
    if (candidate.draft?.tokenizer)
      await checkSameTokenizer(
        expected,
        candidate.draft.tokenizer,
        `the vocabulary of the draft ${candidate.draft.path}`,
        "HINT: speculative decoding needs the target's vocabulary: measure against the draft's own target, or " +
          "train the draft on this target's outputs",
      );
  }
  // The prompts are the data's token ids: the target must read them as the data's tokenizer wrote them.
  if (deps.dataTokenizer)
    await checkSameTokenizer(
      deps.dataTokenizer,
      targetTokenizer,
      `the vocabulary of the target ${targetModel}`,
      'HINT: measure against the target the data was distilled from (eval.cost.target_model)',
    );
  const dir = mkdtempSync(join(tmpdir(), 'fireopt-speedup-'));
  try {
    const drafters: SpeedupDrafter[] = [];
    for (const [i, candidate] of candidates.entries()) {
      if (candidate.draft) {
        if (!deps.exportDraftGguf) throw new Error('eval: no draft exporter was handed in for --measure-speedup');
        const gguf = await deps.exportDraftGguf(candidate.draft.path, targetModel, join(dir, `draft-${i}`));
        drafters.push({ name: candidate.name, gguf });
      } else if (candidate.proposer) drafters.push({ name: candidate.name, proposer: candidate.proposer });
    }
    deps.log(
      `measuring the speed-up in llama.cpp: ${drafters.length} candidate(s) × k ${settings.k.join(', ')}, ` +
        `${prompts.length} prompts × ${settings.max_tokens} tokens, ${settings.runs} runs`,
    );
    const loadBefore = loadavg();
    const measured = await measureLlamaCppSpeedup({
      targetModel,
      drafters,
      prompts,
      kList: settings.k,
      maxTokens: settings.max_tokens,
      threads: settings.threads,
      runs: settings.runs,
      warmupRuns: settings.warmup_runs,
    });
    const loadAfter = loadavg();
    // The cost model's terms, fitted per timed round from what that round paid (see loop-cost.ts).
    const kMax = Math.max(...settings.k);
    const plainRounds = measured.plain.rounds;
    const roundCosts = plainRounds.map((plain, r) =>
      fitLoopCosts(
        plain,
        measured.drafters.map((drafter) => drafter.byK.map((cell) => cell.rounds[r])),
        kMax,
      ),
    );
    const medianOver = (value: (r: number) => number): number => spread(plainRounds.map((_, r) => value(r))).median;
    const inPlainSteps = (ms: number, r: number): number =>
      roundCosts[r].plainStepMs > 0 ? ms / roundCosts[r].plainStepMs : 0;
    const report: MeasuredSpeedup['candidates'] = [];
    for (const [i, candidate] of candidates.entries()) {
      const matches = await simulatedMatches(candidate, prompts, measured.outputs);
      const byK = measured.drafters[i].byK.map((cell) => {
        const counts = emptyCounts(cell.k);
        for (const m of matches) simulateGreedy(m, cell.k, counts);
        const simulatedTau = acceptanceLength(counts);
        const steps = stepsByDrafted(counts);
        const predicted = medianOver((r) => plainRounds[r].wallMs / predictedLoopMs(roundCosts[r], i, steps));
        // Step by step: each simulated step pays for what it really drafted (see speedupFromCounts).
        const predictedCostPhase = speedupFromCounts(
          counts,
          candidate.costRatio,
          (drafted) => candidate.verifyCostByK?.[drafted - 1] ?? 1,
        );
        const verifyMs = (r: number): number => cell.rounds[r].verifyMsByDrafted.reduce((a, b) => a + b, 0);
        return {
          k: cell.k,
          tau: cell.tau,
          simulated_tau: simulatedTau,
          predicted_speedup: predicted,
          predicted_speedup_cost_phase: predictedCostPhase,
          speedup: cell.speedup,
          measured_over_predicted: predicted > 0 ? cell.speedup.median / predicted : 0,
          tokens_per_second: cell.tokensPerSecond,
          steps: cell.steps,
          drafted: cell.drafted,
          accepted: cell.accepted,
          draft_evaluations: cell.draftEvaluations,
          draft_ms: cell.draftMs,
          target_ms: cell.targetMs,
          wall_ms: cell.wallMs,
          verify_cost_in_run: cell.steps > 0 ? medianOver((r) => inPlainSteps(verifyMs(r) / cell.steps, r)) : 0,
          draft_cost_in_run:
            cell.draftEvaluations > 0
              ? medianOver((r) => inPlainSteps(cell.rounds[r].draftMs / cell.draftEvaluations, r))
              : 0,
        };
      });
      report.push({
        name: candidate.name,
        costs_in_run: {
          draft_prefill_ms: medianOver((r) => roundCosts[r].drafters[i].prefillMs),
          draft_evaluation_ms: medianOver((r) => roundCosts[r].drafters[i].evaluationMs),
          cost_ratio: medianOver((r) => inPlainSteps(roundCosts[r].drafters[i].evaluationMs, r)),
          step_overhead_ms: medianOver((r) => roundCosts[r].drafters[i].stepOverheadMs),
        },
        by_k: byK,
      });
      const best = byK.reduce((a, b) => (b.speedup.median > a.speedup.median ? b : a));
      deps.log(
        `${candidate.name}: measured ${best.speedup.median.toFixed(2)}× at k = ${best.k} ` +
          `(predicted ${best.predicted_speedup.toFixed(2)}× from the costs paid in the same rounds, ` +
          `${best.predicted_speedup_cost_phase.toFixed(2)}× from the cost phase; τ ${best.tau.toFixed(2)} measured, ` +
          `${best.simulated_tau.toFixed(2)} simulated)`,
      );
    }
    return {
      engine: 'llama-cpp',
      engine_version: measured.engineVersion,
      target_model: targetModel,
      prompts: prompts.length,
      prompt_rows: [...sample.rows],
      max_tokens: settings.max_tokens,
      tokens: measured.tokens,
      threads: settings.threads,
      runs: settings.runs,
      warmup_runs: settings.warmup_runs,
      plain_tokens_per_second: measured.plain.tokensPerSecond,
      identical_to_plain: true,
      costs_in_run: {
        plain_step_ms: medianOver((r) => roundCosts[r].plainStepMs),
        target_prefill_ms: medianOver((r) => roundCosts[r].targetPrefillMs),
        verify_ms_by_drafted: Array.from({ length: kMax + 1 }, (_, d) =>
          medianOver((r) => roundCosts[r].verifyMsByDrafted[d]),
        ),
        verify_cost_by_drafted: Array.from({ length: kMax + 1 }, (_, d) =>
          medianOver((r) => inPlainSteps(roundCosts[r].verifyMsByDrafted[d], r)),
        ),
      },
      load_average: {
        before: [loadBefore[0], loadBefore[1], loadBefore[2]],
        after: [loadAfter[0], loadAfter[1], loadAfter[2]],
      },
      cpus: cpus().length,
      cpu_model: cpus()[0]?.model.trim() ?? 'unknown',
      candidates: report,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The simulator's match lengths on the measured prompts and their plain outputs. */
async function simulatedMatches(
  candidate: SpeedupCandidate,
  prompts: readonly (readonly number[])[],
  outputs: readonly number[][],
): Promise<CompletionMatches[]> {
  if (candidate.draft) {
    const scored = await teacherForcedDraft(
      candidate.draft.model,
      prompts.map((prompt, i) => ({ promptIds: prompt, completionIds: outputs[i] })),
    );
    return outputs.map((output, i) => matchesFromTeacherForcing(output, scored[i].predicted));
  }
  if (!candidate.proposer) throw new Error(`${candidate.name}: neither a draft nor a proposer`);
  const matches: CompletionMatches[] = [];
  for (const [i, prompt] of prompts.entries())
    matches.push(await matchesWithProposer(candidate.proposer, Array.from(prompt), outputs[i]));
  return matches;
}
