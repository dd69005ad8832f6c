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
 * Calls are interleaved one by one — a draft step, a target step, then the target's verification of
 * k + 1 tokens for k = 1..kMax, `steps` times a round — so that a change of machine load hits every
 * quantity alike: timed in blocks (all draft steps, then all target steps, then each k's verifications),
 * the same draft shape measured c = 0.021 and 0.068 on a loaded machine, seconds of load apart
 * (bench/history/evaluate.md). After `warmupRuns` untimed rounds, each time is the median over `runs`
 * rounds of its round total / `steps` calls, and each ratio (c, v_k) the median of the rounds' own ratios
 * (paired within a round, so load that changes between rounds cancels too).
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
  // The decode steps grow each cache by `steps` tokens; the last verification reaches kMax + 1 beyond.
  const timedTokens = steps + kMax + 1;
  if (contextTokens < 1 || contextTokens + timedTokens > contextSize) {
    throw new Error(
      `cost measurement: ${contextTokens} context tokens + ` +
        `${timedTokens} timed tokens do not fit a ${contextSize}-token context`,
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

    const greedyNext = { generateNext: { token: true, options: { temperature: 0 } } } as const;
    /** One batch-1 greedy step of `sequence` fed `token`; its ms and its next token. */
    const step = async (sequence: LlamaContextSequence, token: Token): Promise<{ ms: number; next: Token }> => {
      const started = performance.now();
      const outputs = await sequence.controlledEvaluate([[token, greedyNext]]);
      const ms = performance.now() - started;
      return { ms, next: outputs[0]?.next.token ?? tokenAt(sequence.nextTokenIndex) };
    };
    /** One verification of k + 1 tokens at the sequence's position, erased again (outside the timing); ms. */
    const verify = async (sequence: LlamaContextSequence, k: number): Promise<number> => {
      const position = sequence.nextTokenIndex;
      const input = Array.from({ length: k + 1 }, (_, i): [Token, typeof greedyNext] => [
        tokenAt(position + i),
        greedyNext,
      ]);
      const started = performance.now();
      await sequence.controlledEvaluate(input);
      const ms = performance.now() - started;
      await sequence.eraseContextTokenRanges([{ start: position, end: sequence.nextTokenIndex }]);
      return ms;
    };

    const draftMs: number[] = [];
    const targetMs: number[] = [];
    const verifyMs: number[][] = Array.from({ length: kMax }, () => []);
    for (let round = 0; round < warmupRuns + runs; round++) {
      let draftToken = tokenAt(contextTokens);
      let targetToken = draftToken;
      let d = 0;
      let t = 0;
      const v = new Array<number>(kMax).fill(0);
      for (let s = 0; s < steps; s++) {
        const drafted = await step(draft.sequence, draftToken);
        d += drafted.ms;
        draftToken = drafted.next;
        const decoded = await step(target.sequence, targetToken);
        t += decoded.ms;
        targetToken = decoded.next;
        for (let k = 1; k <= kMax; k++) v[k - 1] += await verify(target.sequence, k);
      }
      for (const { sequence } of loaded)
        await sequence.eraseContextTokenRanges([{ start: contextTokens, end: sequence.nextTokenIndex }]);
      if (round < warmupRuns) continue;
      draftMs.push(d / steps);
      targetMs.push(t / steps);
      v.forEach((ms, i) => verifyMs[i].push(ms / steps));
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
