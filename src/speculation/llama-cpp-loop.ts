/**
 * Real greedy speculative decoding in llama.cpp (node-llama-cpp 3.21.1): a draft GGUF proposes k
 * tokens one at a time, the target GGUF verifies them in one batch, the longest agreeing prefix is
 * kept plus the target's own next token, and the rejected tail is erased from both KV caches.
 *
 * Written by hand because node-llama-cpp's `DraftSequenceTokenPredictor` accepts at most one draft
 * token per target batch (3.21.1 and 3.22.1). Contexts run on one thread (tiny models are ~1000×
 * slower with the default 4 on 2 cores) with F32 KV caches and flash attention off, so that the
 * batched verification computes the same logits as one-token decoding and the output equals plain
 * greedy decoding token for token.
 *
 * Counting matches acceptance.ts: a step is one target evaluation; drafts never go past the token
 * budget (`maxTokens`); τ = tokens / steps.
 */
import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';
import { startLlama } from '../util/llama-runtime.js';

export interface LlamaCppSpeculatorOptions {
  targetModel: string;
  /** Draft GGUF (same tokenizer as the target). */
  draftModel: string;
  contextSize?: number;
  /** Threads per context (1 for tiny models on few cores). */
  threads?: number;
}

export interface SpeculativeRun {
  tokens: number[];
  finishReason: 'stop' | 'length';
  /** Target evaluations. */
  steps: number;
  drafted: number;
  accepted: number;
  /** Draft evaluations (one token each). */
  draftEvaluations: number;
  draftMs: number;
  targetMs: number;
  wallMs: number;
}

export interface GreedyRun {
  tokens: number[];
  finishReason: 'stop' | 'length';
  wallMs: number;
}

interface Loaded {
  model: LlamaModel;
  context: LlamaContext;
  sequence: LlamaContextSequence;
}

/** A target and a draft loaded side by side; `decode` runs speculative decoding, `greedy` the plain loop. */
export class LlamaCppSpeculator {
  private constructor(
    private readonly llama: Llama,
    private readonly target: Loaded,
    private readonly draft: Loaded,
  ) {}

  static async open(options: LlamaCppSpeculatorOptions): Promise<LlamaCppSpeculator> {
    const llama = await startLlama();
    const load = async (modelPath: string): Promise<Loaded> => {
      const model = await llama.loadModel({ modelPath });
      const context = await model.createContext({
        contextSize: options.contextSize ?? 1024,
        threads: options.threads ?? 1,
        sequences: 1,
        flashAttention: false,
        experimentalKvCacheKeyType: 'F32',
        experimentalKvCacheValueType: 'F32',
      });
      return { model, context, sequence: context.getSequence() };
    };
    try {
      return new LlamaCppSpeculator(llama, await load(options.targetModel), await load(options.draftModel));
    } catch (error) {
      await llama.dispose();
      throw error;
    }
  }

  /** Speculative greedy decoding with up to k draft tokens per target step. */
  async decode(promptIds: readonly number[], options: { k: number; maxTokens: number }): Promise<SpeculativeRun> {
    const { k, maxTokens } = options;
    const target = this.target.sequence;
    const draft = this.draft.sequence;
    const started = performance.now();
    await this.reset(promptIds);
    const run: SpeculativeRun = {
      tokens: [],
      finishReason: 'length',
      steps: 0,
      drafted: 0,
      accepted: 0,
      draftEvaluations: 0,
      draftMs: 0,
      targetMs: 0,
      wallMs: 0,
    };
    // Tokens each sequence has yet to evaluate (they are in the output or the prompt, not the cache).
    let targetPending: Token[] = [promptIds[promptIds.length - 1] as Token];
    let draftPending: Token[] = [promptIds[promptIds.length - 1] as Token];
    while (run.tokens.length < maxTokens) {
      const budget = maxTokens - run.tokens.length;
      const draftCount = Math.min(k, budget - 1);
      // Draft: k greedy tokens, one evaluation each; the last proposal is not evaluated.
      const drafts: Token[] = [];
      const draftStart = performance.now();
      while (drafts.length < draftCount) {
        const input = drafts.length === 0 ? draftPending : [drafts[drafts.length - 1]];
        const next = await this.nextGreedy(draft, input);
        run.draftEvaluations++;
        drafts.push(next);
        // After an end-of-generation draft nothing more can be accepted.
        if (this.target.model.isEogToken(next)) break;
      }
      run.draftMs += performance.now() - draftStart;
      const draftCacheEnd = draft.nextTokenIndex; // holds the context and drafts[0..n−2]
      // Target: the pending token and every draft in one batch; greedy next token after each.
      const targetStart = performance.now();
      const verifyInput = [...targetPending, ...drafts];
      const firstOutput = targetPending.length - 1;
      const outputs = await target.controlledEvaluate(
        verifyInput.map((token, i) =>
          i >= firstOutput ? [token, { generateNext: { token: true, options: { temperature: 0 } } }] : token,
        ),
      );
      run.targetMs += performance.now() - targetStart;
      run.steps++;
      run.drafted += drafts.length;
      const targetTokens = outputs.slice(firstOutput).map((output, i) => {
        const token = output?.next.token;
        if (token === undefined || token === null)
          throw new Error(`llama.cpp gave no token at verification position ${i}`);
        return token;
      });
      let accepted = 0;
      while (accepted < drafts.length && drafts[accepted] === targetTokens[accepted]) accepted++;
      run.accepted += accepted;
      const emitted = [...drafts.slice(0, accepted), targetTokens[accepted]];
      let stopped = false;
      for (const token of emitted) {
        run.tokens.push(token);
        if (this.target.model.isEogToken(token)) {
          stopped = true;
          break;
        }
        if (run.tokens.length >= maxTokens) break;
      }
      if (stopped) {
        run.finishReason = 'stop';
        break;
      }
      // Roll back what was rejected: the target keeps pending + accepted drafts.
      const targetKeep = target.nextTokenIndex - (drafts.length - accepted);
      if (targetKeep < target.nextTokenIndex)
        await target.eraseContextTokenRanges([{ start: targetKeep, end: target.nextTokenIndex }]);
      targetPending = [targetTokens[accepted]];
      // The draft cache holds drafts[0..n−2]; keep the accepted ones.
      const draftKeep = draftCacheEnd - Math.max(0, drafts.length - 1 - accepted);
      if (draftKeep < draft.nextTokenIndex)
        await draft.eraseContextTokenRanges([{ start: draftKeep, end: draft.nextTokenIndex }]);
      if (drafts.length === 0)
        draftPending = [...draftPending, targetTokens[0]]; // nothing was evaluated on the draft
      else if (accepted === drafts.length) draftPending = [drafts[drafts.length - 1], targetTokens[accepted]];
      else draftPending = [targetTokens[accepted]];
    }
    run.wallMs = performance.now() - started;
    return run;
  }

  /** Plain greedy decoding of the target alone (node-llama-cpp's own evaluation loop). */
  async greedy(promptIds: readonly number[], options: { maxTokens: number }): Promise<GreedyRun> {
    const started = performance.now();
    await this.reset(promptIds);
    const tokens: number[] = [];
    let finishReason: GreedyRun['finishReason'] = 'length';
    if (options.maxTokens > 0) {
      for await (const token of this.target.sequence.evaluate([promptIds[promptIds.length - 1] as Token], {
        temperature: 0,
      })) {
        tokens.push(token);
        if (this.target.model.isEogToken(token)) {
          finishReason = 'stop';
          break;
        }
        if (tokens.length >= options.maxTokens) break;
      }
    }
    return { tokens, finishReason, wallMs: performance.now() - started };
  }

  async close(): Promise<void> {
    for (const loaded of [this.draft, this.target]) {
      await loaded.context.dispose();
      await loaded.model.dispose();
    }
    await this.llama.dispose();
  }

  /** Clear both caches and evaluate the prompt but its last token on each. */
  private async reset(promptIds: readonly number[]): Promise<void> {
    if (promptIds.length === 0) throw new Error('speculative decoding needs a non-empty prompt (BOS at least)');
    for (const { sequence } of [this.target, this.draft]) {
      await sequence.clearHistory();
      if (promptIds.length > 1) await sequence.evaluateWithoutGeneratingNewTokens(promptIds.slice(0, -1) as Token[]);
    }
  }

  private async nextGreedy(sequence: LlamaContextSequence, input: readonly Token[]): Promise<Token> {
    const outputs = await sequence.controlledEvaluate(
      input.map((token, i) =>
        i === input.length - 1 ? [token, { generateNext: { token: true, options: { temperature: 0 } } }] : token,
      ),
    );
    const token = outputs[input.length - 1]?.next.token;
    if (token === undefined || token === null) throw new Error('llama.cpp gave no draft token');
    return token;
  }
}
