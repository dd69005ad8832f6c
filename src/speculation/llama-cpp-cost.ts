/**
 * What speculative decoding pays in llama.cpp (node-llama-cpp 3.21.1), measured: the time of one
 * batch-1 decode step of the draft (what each drafted token costs), of the target (what plain
 * decoding costs per token), and of the target's verification of k + 1 tokens in one batch (what
 * each speculative step costs on the target side), for k = 1..kMax.
 *
 * Both models run with the same settings as `LlamaCppSpeculator`: CPU, the same threads and context
 * size, F32 KV caches, flash attention off. Every call is what the loop issues — `controlledEvaluate`
 * with a greedy next token at each position (the logits and the argmax are part of the price) — at the
 * same cache position (`contextTokens` tokens already in the cache); the cache is trimmed back after
 * each run, outside the timed calls.
 *
 * Runs are interleaved (draft, target, verify k = 1..kMax, round after round) so that a change of
 * machine load hits every quantity alike; after `warmupRuns` untimed rounds, each time is the median
 * over `runs` rounds of its run time / `steps` calls, and each ratio (c, v_k) the median of the
 * rounds' own ratios (paired within a round, so load that changes between rounds cancels).
 */
import type { Llama, LlamaContextSequence, LlamaModel, LlamaContext, Token } from 'node-llama-cpp';
import { startLlama } from '../util/llama-runtime.js';

export interface LlamaCppCostOptions {
  targetModel: string;
  draftModel: string;
  /** Threads per context (the same for both). */
  threads?: number;
  /** Context size of both contexts. */
  contextSize?: number;
  /** Tokens in the cache when the steps are timed. */
  contextTokens?: number;
  /** Calls per timed run. */
  steps?: number;
  /** Timed rounds (the median is taken). */
  runs?: number;
  /** Untimed rounds first. */
  warmupRuns?: number;
  /** Verification batches of k + 1 tokens for k = 1..kMax. */
  kMax?: number;
}

export interface LlamaCppCost {
  threads: number;
  contextSize: number;
  contextTokens: number;
  steps: number;
  runs: number;
  warmupRuns: number;
  /** Median ms of one batch-1 greedy decode step of the draft. */
  draftStepMs: number;
  /** Median ms of one batch-1 greedy decode step of the target. */
  targetStepMs: number;
  /** Median ms of one target pass over k + 1 tokens (greedy next token at each), k = 1..kMax. */
  targetVerifyMsByK: number[];
  /** c: median over rounds of draft step ms / target step ms of the same round. */
  costRatio: number;
  /** v_k: median over rounds of verify ms / target step ms: a speculative step's target cost in plain decode steps. */
  verifyRatioByK: number[];
}

interface Loaded {
  model: LlamaModel;
  context: LlamaContext;
  sequence: LlamaContextSequence;
  vocabSize: number;
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** Measure draft and target step costs in llama.cpp (CPU). */
export async function measureLlamaCppCost(options: LlamaCppCostOptions): Promise<LlamaCppCost> {
  const threads = options.threads ?? 1;
  const contextSize = options.contextSize ?? 1024;
  const contextTokens = options.contextTokens ?? 64;
  const steps = options.steps ?? 32;
  const runs = options.runs ?? 7;
  const warmupRuns = options.warmupRuns ?? 2;
  const kMax = options.kMax ?? 8;
  if (contextTokens < 1 || contextTokens + Math.max(steps, kMax + 1) > contextSize) {
    throw new Error(
      `cost measurement: ${contextTokens} context tokens + ` +
        `${Math.max(steps, kMax + 1)} timed tokens do not fit a ${contextSize}-token context`,
    );
  }
  const llama: Llama = await startLlama();
  const loaded: Loaded[] = [];
  try {
    for (const modelPath of [options.draftModel, options.targetModel]) {
      const model = await llama.loadModel({ modelPath });
      const context = await model.createContext({
        contextSize,
        threads,
        sequences: 1,
        flashAttention: false,
        experimentalKvCacheKeyType: 'F32',
        experimentalKvCacheValueType: 'F32',
      });
      loaded.push({
        model,
        context,
        sequence: context.getSequence(),
        vocabSize: model.fileInfo.metadata.tokenizer?.ggml.tokens.length ?? 2,
      });
    }
    const [draft, target] = loaded;
    // Any ids do for timing; the same ones for both models (within the smaller vocabulary).
    const vocab = Math.max(2, Math.min(draft.vocabSize, target.vocabSize));
    const tokenAt = (i: number): Token => (1 + ((i * 7919) % (vocab - 1))) as Token;
    const prefix = Array.from({ length: contextTokens }, (_, i) => tokenAt(i));
    for (const { sequence } of loaded) await sequence.evaluateWithoutGeneratingNewTokens(prefix);

    /** `steps` batch-1 greedy steps, each fed the previous output; ms per step. */
    const decodeRun = async (sequence: LlamaContextSequence): Promise<number> => {
      let token = tokenAt(contextTokens);
      let ms = 0;
      for (let s = 0; s < steps; s++) {
        const started = performance.now();
        const outputs = await sequence.controlledEvaluate([
          [token, { generateNext: { token: true, options: { temperature: 0 } } }],
        ]);
        ms += performance.now() - started;
        token = outputs[0]?.next.token ?? tokenAt(contextTokens + s + 1);
      }
      await sequence.eraseContextTokenRanges([{ start: contextTokens, end: sequence.nextTokenIndex }]);
      return ms / steps;
    };
    /** `steps` verifications of k + 1 tokens at the same position; ms per verification. */
    const verifyRun = async (sequence: LlamaContextSequence, k: number): Promise<number> => {
      const input = Array.from(
        { length: k + 1 },
        (_, i) =>
          [tokenAt(contextTokens + i), { generateNext: { token: true, options: { temperature: 0 } } }] as [
            Token,
            { generateNext: { token: true; options: { temperature: number } } },
          ],
      );
      let ms = 0;
      for (let s = 0; s < steps; s++) {
        const started = performance.now();
        await sequence.controlledEvaluate(input);
        ms += performance.now() - started;
        await sequence.eraseContextTokenRanges([{ start: contextTokens, end: sequence.nextTokenIndex }]);
      }
      return ms / steps;
    };

    const draftMs: number[] = [];
    const targetMs: number[] = [];
    const verifyMs: number[][] = Array.from({ length: kMax }, () => []);
    for (let round = 0; round < warmupRuns + runs; round++) {
      const d = await decodeRun(draft.sequence);
      const t = await decodeRun(target.sequence);
      const v: number[] = [];
      for (let k = 1; k <= kMax; k++) v.push(await verifyRun(target.sequence, k));
      if (round < warmupRuns) continue;
      draftMs.push(d);
      targetMs.push(t);
      v.forEach((ms, i) => verifyMs[i].push(ms));
    }
    const draftStepMs = median(draftMs);
    const targetStepMs = median(targetMs);
    const targetVerifyMsByK = verifyMs.map(median);
    return {
      threads,
      contextSize,
      contextTokens,
      steps,
      runs,
      warmupRuns,
      draftStepMs,
      targetStepMs,
      targetVerifyMsByK,
      costRatio: median(draftMs.map((ms, r) => ms / targetMs[r])),
      verifyRatioByK: verifyMs.map((byRound) => median(byRound.map((ms, r) => ms / targetMs[r]))),
    };
  } finally {
    for (const { context, model } of loaded.reverse()) {
      await context.dispose();
      await model.dispose();
    }
    await llama.dispose();
  }
}
