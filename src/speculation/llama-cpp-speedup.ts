/**
 * Measured speed-up in llama.cpp: real greedy speculative decoding (llama-cpp-loop.ts) timed against
 * plain greedy decoding of the same prompts, in the same process, on the same target context.
 *
 * Interleaved so that a change of machine load hits every configuration alike: in each round, for
 * each prompt, plain decoding runs first and then every (drafter, k) configuration on that prompt.
 * A configuration's speed-up in a round is the round's plain wall time over its own (both summed over
 * the prompts); the reported speed-up is the median over rounds, with the smallest and largest.
 * Every speculative output is compared with the plain output token for token: speculative decoding
 * that changes the output is a bug, reported as an error rather than a number.
 */
import { RunError } from '../errors.js';
import { LlamaCppSpeculator, type DraftSource } from './llama-cpp-loop.js';
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
}

export interface LlamaCppSpeedup {
  /** The llama.cpp release and build that ran it. */
  engineVersion: string;
  /** Tokens each round generates (the same for plain and speculative: the outputs are equal). */
  tokens: number;
  plain: { tokensPerSecond: Spread; wallMs: number };
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

interface Accumulator {
  steps: number;
  drafted: number;
  accepted: number;
  draftEvaluations: number;
  draftMs: number[];
  targetMs: number[];
  wallMs: number[];
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
    const accumulators = options.drafters.map(() =>
      kList.map(
        (): Accumulator => ({
          steps: 0,
          drafted: 0,
          accepted: 0,
          draftEvaluations: 0,
          draftMs: [],
          targetMs: [],
          wallMs: [],
        }),
      ),
    );
    const plainMs: number[] = [];
    let outputs: number[][] = [];
    for (let round = 0; round < warmupRuns + runs; round++) {
      const timed = round >= warmupRuns;
      let roundPlainMs = 0;
      const roundMs = accumulators.map((byK) => byK.map(() => ({ draft: 0, target: 0, wall: 0 })));
      const roundCounts = accumulators.map((byK) => byK.map(() => ({ steps: 0, drafted: 0, accepted: 0, evals: 0 })));
      const roundOutputs: number[][] = [];
      for (const [p, prompt] of prompts.entries()) {
        const plain = await speculator.greedy(prompt, { maxTokens });
        roundPlainMs += plain.wallMs;
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
            const ms = roundMs[d][i];
            ms.draft += run.draftMs;
            ms.target += run.targetMs;
            ms.wall += run.wallMs;
            const counts = roundCounts[d][i];
            counts.steps += run.steps;
            counts.drafted += run.drafted;
            counts.accepted += run.accepted;
            counts.evals += run.draftEvaluations;
          }
        }
      }
      if (outputs.length === 0) outputs = roundOutputs;
      if (!timed) continue;
      plainMs.push(roundPlainMs);
      accumulators.forEach((byK, d) =>
        byK.forEach((acc, i) => {
          acc.draftMs.push(roundMs[d][i].draft);
          acc.targetMs.push(roundMs[d][i].target);
          acc.wallMs.push(roundMs[d][i].wall);
          Object.assign(acc, {
            steps: roundCounts[d][i].steps,
            drafted: roundCounts[d][i].drafted,
            accepted: roundCounts[d][i].accepted,
            draftEvaluations: roundCounts[d][i].evals,
          });
        }),
      );
    }
    const tokens = outputs.reduce((n, o) => n + o.length, 0);
    const perSecond = (ms: readonly number[]): Spread => spread(ms.map((m) => (tokens / m) * 1000));
    return {
      engineVersion: speculator.engineVersion,
      tokens,
      plain: { tokensPerSecond: perSecond(plainMs), wallMs: spread(plainMs).median },
      drafters: options.drafters.map((drafter, d) => ({
        name: drafter.name,
        byK: kList.map((k, i) => {
          const acc = accumulators[d][i];
          return {
            k,
            steps: acc.steps,
            drafted: acc.drafted,
            accepted: acc.accepted,
            draftEvaluations: acc.draftEvaluations,
            tau: acc.steps > 0 ? tokens / acc.steps : 1,
            tokensPerSecond: perSecond(acc.wallMs),
            speedup: spread(acc.wallMs.map((ms, r) => plainMs[r] / ms)),
            draftMs: spread(acc.draftMs).median,
            targetMs: spread(acc.targetMs).median,
            wallMs: spread(acc.wallMs).median,
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
