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
 * Proposals come from a draft GGUF, or from a model-free `Proposer` (prompt lookup, suffix): the same loop,
 * the same verification, with the proposer's tokens in place of the draft model's.
 *
 * Counting matches acceptance.ts: a step is one target evaluation; drafts never go past the token
 * budget (`maxTokens`); τ = tokens / steps.
 */
import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';
import { startLlama } from '../util/llama-runtime.js';
import type { Proposer, ProposerSession } from './proposer.js';

export interface LlamaCppSpeculatorOptions {
  targetModel: string;
  /** A draft GGUF (same tokenizer as the target): draft #0. */
  draftModel?: string;
  /** More draft GGUFs (after `draftModel`); `decode` picks one by index. None: model-free proposers only. */
  draftModels?: readonly string[];
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
  /** Draft evaluations (one token each; 0 for a model-free proposer). */
  draftEvaluations: number;
  /** Time inside the drafter: draft-model evaluations, or a model-free proposer's own work. */
  draftMs: number;
  /** Time in target verification passes (prefill excluded). */
  targetMs: number;
  /** [d] = ms / calls of the target's verification passes that checked d drafts (d + 1 tokens), d = 0..k. */
  verifyMsByDrafted: number[];
  verifyCallsByDrafted: number[];
  /** The target's prompt prefill (cache cleared, prompt but its last token evaluated). */
  targetPrefillMs: number;
  /** The draft model's prompt prefill (0 for a model-free proposer). */
  draftPrefillMs: number;
  wallMs: number;
}

export interface GreedyRun {
  tokens: number[];
  finishReason: 'stop' | 'length';
  /** The prompt prefill, as in `SpeculativeRun`. */
  prefillMs: number;
  wallMs: number;
}

interface Loaded {
  model: LlamaModel;
  context: LlamaContext;
  sequence: LlamaContextSequence;
}

/** What proposes the draft tokens of a `decode`: a loaded draft GGUF (by index) or a model-free proposer. */
export type DraftSource = { draftIndex: number } | { proposer: Proposer };

/** A target and its drafts loaded side by side; `decode` runs speculative decoding, `greedy` the plain loop. */
export class LlamaCppSpeculator {
  private constructor(
    private readonly llama: Llama,
    private readonly target: Loaded,
    private readonly drafts: readonly Loaded[],
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
      const target = await load(options.targetModel);
      const drafts: Loaded[] = [];
      for (const path of [...(options.draftModel ? [options.draftModel] : []), ...(options.draftModels ?? [])])
        drafts.push(await load(path));
      return new LlamaCppSpeculator(llama, target, drafts);
    } catch (error) {
      await llama.dispose();
      throw error;
    }
  }

  /** Speculative greedy decoding with up to k draft tokens per target step (the first draft GGUF by default). */
  async decode(
    promptIds: readonly number[],
    options: { k: number; maxTokens: number; source?: DraftSource },
  ): Promise<SpeculativeRun> {
    const { k, maxTokens } = options;
    const source = options.source ?? { draftIndex: 0 };
    const started = performance.now();
    const targetPrefillMs = await this.reset(promptIds);
    if ('proposer' in source) {
      const session = await source.proposer.open(promptIds);
      try {
        const propose = modelFreeDrafter(session);
        return await this.decodeWith(promptIds, { k, maxTokens, started, targetPrefillMs, propose });
      } finally {
        session.dispose();
      }
    }
    const loaded = this.drafts[source.draftIndex];
    if (!loaded) throw new RangeError(`no draft GGUF #${source.draftIndex} (${this.drafts.length} loaded)`);
    const draftPrefillMs = await prefill(loaded.sequence, promptIds);
    return this.decodeWith(promptIds, {
      k,
      maxTokens,
      started,
      targetPrefillMs,
      draftPrefillMs,
      propose: this.modelDrafter(loaded, promptIds),
    });
  }

  /** The loop itself: draft (through `propose`), verify in one batch, keep the agreeing prefix, roll back. */
  private async decodeWith(
    promptIds: readonly number[],
    options: {
      k: number;
      maxTokens: number;
      started: number;
      targetPrefillMs: number;
      draftPrefillMs?: number;
      propose: Drafter;
    },
  ): Promise<SpeculativeRun> {
    const { k, maxTokens, started, propose } = options;
    const target = this.target.sequence;
    const run: SpeculativeRun = {
      tokens: [],
      finishReason: 'length',
      steps: 0,
      drafted: 0,
      accepted: 0,
      draftEvaluations: 0,
      draftMs: 0,
      targetMs: 0,
      verifyMsByDrafted: new Array(k + 1).fill(0),
      verifyCallsByDrafted: new Array(k + 1).fill(0),
      targetPrefillMs: options.targetPrefillMs,
      draftPrefillMs: options.draftPrefillMs ?? 0,
      wallMs: 0,
    };
    // Tokens the target has yet to evaluate (they are in the output or the prompt, not the cache).
    let targetPending: Token[] = [promptIds[promptIds.length - 1] as Token];
    while (run.tokens.length < maxTokens) {
      const budget = maxTokens - run.tokens.length;
      const draftStart = performance.now();
      const drafts = await propose.draft(Math.min(k, budget - 1), run);
      run.draftMs += performance.now() - draftStart;
      // Target: the pending token and every draft in one batch; greedy next token after each.
      const targetStart = performance.now();
      const verifyInput = [...targetPending, ...drafts];
      const firstOutput = targetPending.length - 1;
      const outputs = await target.controlledEvaluate(
        verifyInput.map((token, i) =>
          i >= firstOutput ? [token, { generateNext: { token: true, options: { temperature: 0 } } }] : token,
        ),
      );
      const verifyMs = performance.now() - targetStart;
      run.targetMs += verifyMs;
      run.verifyMsByDrafted[drafts.length] += verifyMs;
      run.verifyCallsByDrafted[drafts.length]++;
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
      await propose.commit(drafts, accepted, targetTokens[accepted]);
    }
    run.wallMs = performance.now() - started;
    return run;
  }

  /** Plain greedy decoding of the target alone (node-llama-cpp's own evaluation loop). */
  async greedy(promptIds: readonly number[], options: { maxTokens: number }): Promise<GreedyRun> {
    const started = performance.now();
    const prefillMs = await this.reset(promptIds);
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
    return { tokens, finishReason, prefillMs, wallMs: performance.now() - started };
  }

  /** The engine's version, for reports: the llama.cpp release and how it was built. */
  get engineVersion(): string {
    const { repo, release } = this.llama.llamaCppRelease;
    return `llama.cpp ${release} (${repo}, ${this.llama.buildType}, CPU)`;
  }

  async close(): Promise<void> {
    for (const loaded of [...this.drafts, this.target]) {
      await loaded.context.dispose();
      await loaded.model.dispose();
    }
    await this.llama.dispose();
  }

  /** Clear the target's cache and evaluate the prompt but its last token; returns the ms it took. */
  private async reset(promptIds: readonly number[]): Promise<number> {
    if (promptIds.length === 0) throw new Error('speculative decoding needs a non-empty prompt (BOS at least)');
    return prefill(this.target.sequence, promptIds);
  }

  /** A draft GGUF as a drafter: k greedy tokens, one evaluation each; its cache rolled back like the target's. */
  private modelDrafter(loaded: Loaded, promptIds: readonly number[]): Drafter {
    const draft = loaded.sequence;
    // Tokens the draft has yet to evaluate (they are in the output or the prompt, not its cache).
    let draftPending: Token[] = [promptIds[promptIds.length - 1] as Token];
    let draftCacheEnd = 0;
    return {
      draft: async (count, run) => {
        // The last proposal is not evaluated.
        const drafts: Token[] = [];
        while (drafts.length < count) {
          const input = drafts.length === 0 ? draftPending : [drafts[drafts.length - 1]];
          const next = await this.nextGreedy(draft, input);
          run.draftEvaluations++;
          drafts.push(next);
          // After an end-of-generation draft nothing more can be accepted.
          if (this.target.model.isEogToken(next)) break;
        }
        draftCacheEnd = draft.nextTokenIndex; // holds the context and drafts[0..n−2]
        return drafts;
      },
      commit: async (drafts, accepted, next) => {
        // The draft cache holds drafts[0..n−2]; keep the accepted ones.
        const draftKeep = draftCacheEnd - Math.max(0, drafts.length - 1 - accepted);
        if (draftKeep < draft.nextTokenIndex)
          await draft.eraseContextTokenRanges([{ start: draftKeep, end: draft.nextTokenIndex }]);
        if (drafts.length === 0)
          draftPending = [...draftPending, next]; // nothing was evaluated on the draft
        else if (accepted === drafts.length) draftPending = [drafts[drafts.length - 1], next];
        else draftPending = [next];
      },
    };
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

/** Clear `sequence` and evaluate the prompt but its last token (the loop's first call feeds that one); ms taken. */
async function prefill(sequence: LlamaContextSequence, promptIds: readonly number[]): Promise<number> {
  const started = performance.now();
  await sequence.clearHistory();
  if (promptIds.length > 1) await sequence.evaluateWithoutGeneratingNewTokens(promptIds.slice(0, -1) as Token[]);
  return performance.now() - started;
}

/** Where a decode's draft tokens come from; told after each verification what the target kept. */
interface Drafter {
  /** Up to `count` draft tokens for the current context (draft evaluations are counted in `run`). */
  draft(count: number, run: SpeculativeRun): Promise<Token[]>;
  /** The target kept `drafts[0..accepted)` and then `next`. */
  commit(drafts: readonly Token[], accepted: number, next: Token): Promise<void>;
}

/** A model-free proposer as a drafter: its proposals, cut to the budget; the emitted tokens extend its context. */
function modelFreeDrafter(session: ProposerSession): Drafter {
  return {
    draft: async (count) => (count > 0 ? ((await session.propose(count)).slice(0, count) as Token[]) : []),
    commit: (drafts, accepted, next) => session.append([...drafts.slice(0, accepted), next]),
  };
}
