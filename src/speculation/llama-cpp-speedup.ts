/**
 * Measured speed-up in llama.cpp: real greedy speculative decoding (llama-cpp-loop.ts) timed against
 * plain greedy decoding of the same prompts, in the same process, on the same target context.
 *
 * Interleaved so that a change of machine load hits every configuration alike: in each round, for
 * each prompt, plain decoding runs first and then every (drafter, k) configuration on that prompt.
 * A configuration's speed-up in a round is the round's plain wall time over its own (both summed over
 * the prompts); the reported speed-up is the median over rounds, with the smallest and largest.
 * Every speculative output is compared with the plain output token for token: speculative decoding
 * that changes the output is a bug, reported as an error rather than a number. Each round's timings are
 * kept term by term (prefills, verifications by drafted length, drafting) for the cost model of
 * loop-cost.ts, which predicts from costs paid in the same rounds.
 */
import { RunError } from '../errors.js';
import { LlamaCppSpeculator, type DraftSource, type SpeculativeRun } from './llama-cpp-loop.js';
import type { LoopTiming, PlainTiming } from './loop-cost.js';
import type { Proposer } from './proposer.js';

/** One proposer of draft tokens: a draft GGUF or a model-free method. */
export type SpeedupDrafter = { name: string; gguf: string } | { name: string; proposer: Proposer };

export interface LlamaCppSpeedupOptions {
  targetModel: string;
  drafters: readonly SpeedupDrafter[];
  /** Prompt token ids (BOS included where the model wants one). */
  prompts: readonly (readonly number[])[];
  kList: readonly number[];
  maxTokens: number;
  /** Threads per llama.cpp context. */
  threads: number;
  /** Timed rounds (the median is reported). */
  runs: number;
  /** Untimed rounds first. */
  warmupRuns: number;
}

/** Median, smallest and largest of a sample. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

export interface MeasuredConfiguration {
  k: number;
  /** Target verification passes per round (the same every round: decoding is deterministic). */
  steps: number;
  drafted: number;
  accepted: number;
  /** Draft-model evaluations per round (0 for a model-free proposer). */
  draftEvaluations: number;
  /** Measured τ: tokens / target steps. */
  tau: number;
  tokensPerSecond: Spread;
  /** Plain wall time / speculative wall time, per round. */
  speedup: Spread;
  /** Median ms per round spent drafting, verifying on the target, and in all. */
  draftMs: number;
  targetMs: number;
  wallMs: number;
  /** What each timed round paid, term by term (summed over the prompts). */
  rounds: LoopTiming[];
}

export interface LlamaCppSpeedup {
  /** The llama.cpp release and build that ran it. */
  engineVersion: string;
  /** Tokens each round generates (the same for plain and speculative: the outputs are equal). */
  tokens: number;
  plain: { tokensPerSecond: Spread; wallMs: number; rounds: PlainTiming[] };
  drafters: Array<{ name: string; byK: MeasuredConfiguration[] }>;
  /** The plain greedy continuation of each prompt. */
  outputs: number[][];
}

/** Median, min and max. */
export function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1] };
}

/** A round's timing before any decoding: zeros, with room for verifications of 0..k drafts. */
function emptyTiming(k: number): LoopTiming & { verifyMsByDrafted: number[]; verifyCallsByDrafted: number[] } {
  return {
    wallMs: 0,
    targetPrefillMs: 0,
    draftPrefillMs: 0,
    draftMs: 0,
    draftEvaluations: 0,
    steps: 0,
    verifyMsByDrafted: new Array(k + 1).fill(0),
    verifyCallsByDrafted: new Array(k + 1).fill(0),
  };
}

/** Add one decoding's timings into a round's. */
function addRun(into: ReturnType<typeof emptyTiming>, run: SpeculativeRun): void {
  into.wallMs += run.wallMs;
  into.targetPrefillMs += run.targetPrefillMs;
  into.draftPrefillMs += run.draftPrefillMs;
  into.draftMs += run.draftMs;
  into.draftEvaluations += run.draftEvaluations;
  into.steps += run.steps;
  run.verifyMsByDrafted.forEach((ms, d) => {
    into.verifyMsByDrafted[d] += ms;
    into.verifyCallsByDrafted[d] += run.verifyCallsByDrafted[d];
  });
}

/** Time plain and speculative greedy decoding of `prompts`, interleaved (see the file comment). */
export async function measureLlamaCppSpeedup(options: LlamaCppSpeedupOptions): Promise<LlamaCppSpeedup> {
  const { prompts, kList, maxTokens, runs, warmupRuns } = options;
  if (prompts.length === 0) throw new RangeError('speed-up measurement: no prompts');
  if (runs < 1) throw new RangeError('speed-up measurement: runs must be ≥ 1');
  const longest = Math.max(...prompts.map((p) => p.length));
  const ggufs = options.drafters.flatMap((d) => ('gguf' in d ? [d.gguf] : []));
  const speculator = await LlamaCppSpeculator.open({
    targetModel: options.targetModel,
    draftModels: ggufs,
    threads: options.threads,
    // The prompt, every generated token and a full draft beyond the budget's end.
    contextSize: longest + maxTokens + Math.max(...kList) + 8,
  });
  try {
    const sources: DraftSource[] = [];
    let draftIndex = 0;
    for (const drafter of options.drafters)
      sources.push('gguf' in drafter ? { draftIndex: draftIndex++ } : { proposer: drafter.proposer });
    // [drafter][k index][timed round]; counts are the same every round (decoding is deterministic).
    const timedRounds: LoopTiming[][][] = options.drafters.map(() => kList.map(() => []));
    const plainRounds: PlainTiming[] = [];
    let lastCounts: Array<Array<{ drafted: number; accepted: number }>> = [];
    let outputs: number[][] = [];
    for (let round = 0; round < warmupRuns + runs; round++) {
      const plainRound: PlainTiming = { wallMs: 0, prefillMs: 0, tokens: 0 };
      const roundTimings = options.drafters.map(() => kList.map((k) => emptyTiming(k)));
      const roundCounts = options.drafters.map(() => kList.map(() => ({ drafted: 0, accepted: 0 })));
      const roundOutputs: number[][] = [];
      for (const [p, prompt] of prompts.entries()) {
        const plain = await speculator.greedy(prompt, { maxTokens });
        plainRound.wallMs += plain.wallMs;
        plainRound.prefillMs += plain.prefillMs;
        plainRound.tokens += plain.tokens.length;
        roundOutputs.push(plain.tokens);
        if (outputs.length > p && !sameTokens(outputs[p], plain.tokens))
          throw new RunError(
            `plain greedy decoding of prompt ${p} changed between rounds: llama.cpp is not deterministic here`,
          );
        for (const [d, source] of sources.entries()) {
          for (const [i, k] of kList.entries()) {
            const run = await speculator.decode(prompt, { k, maxTokens, source });
            if (!sameTokens(run.tokens, plain.tokens)) {
              const at = run.tokens.findIndex((token, t) => token !== plain.tokens[t]);
              throw new RunError(
                `speculative decoding with ${options.drafters[d].name} at k = ${k} changed the output of prompt ${p} ` +
                  `(first difference at token ${at < 0 ? Math.min(run.tokens.length, plain.tokens.length) : at}): ` +
                  'it must equal plain greedy decoding token for token',
                'HINT: this is a bug in the speculative loop or the engine; report it with the draft and prompt',
                'E_SPECULATION_MISMATCH',
              );
            }
            addRun(roundTimings[d][i], run);
            roundCounts[d][i].drafted += run.drafted;
            roundCounts[d][i].accepted += run.accepted;
          }
        }
      }
      if (outputs.length === 0) outputs = roundOutputs;
      if (round < warmupRuns) continue;
      plainRounds.push(plainRound);
      roundTimings.forEach((byK, d) => byK.forEach((timing, i) => timedRounds[d][i].push(timing)));
      lastCounts = roundCounts;
    }
    const tokens = outputs.reduce((n, o) => n + o.length, 0);
    const plainMs = plainRounds.map((r) => r.wallMs);
    const perSecond = (ms: readonly number[]): Spread => spread(ms.map((m) => (tokens / m) * 1000));
    return {
      engineVersion: speculator.engineVersion,
      tokens,
      plain: { tokensPerSecond: perSecond(plainMs), wallMs: spread(plainMs).median, rounds: plainRounds },
      drafters: options.drafters.map((drafter, d) => ({
        name: drafter.name,
        byK: kList.map((k, i): MeasuredConfiguration => {
          const rounds = timedRounds[d][i];
          const wallMs = rounds.map((r) => r.wallMs);
          const steps = rounds[0].steps;
          return {
            k,
            steps,
            drafted: lastCounts[d][i].drafted,
            accepted: lastCounts[d][i].accepted,
            draftEvaluations: rounds[0].draftEvaluations,
            tau: steps > 0 ? tokens / steps : 1,
            tokensPerSecond: perSecond(wallMs),
            speedup: spread(wallMs.map((ms, r) => plainMs[r] / ms)),
            draftMs: spread(rounds.map((r) => r.draftMs)).median,
            targetMs: spread(rounds.map((r) => r.verifyMsByDrafted.reduce((a, b) => a + b, 0))).median,
            wallMs: spread(wallMs).median,
            rounds,
          };
        }),
      })),
      outputs,
    };
  } finally {
    await speculator.close();
  }
}

function sameTokens(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((token, i) => token === b[i]);
}
