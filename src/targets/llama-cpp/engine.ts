/**
 * The `llama-cpp` target engine: a local GGUF model through node-llama-cpp.
 *
 * node-llama-cpp quirks normalised here:
 * - Its next-token probability maps are the distribution *after* the sampling options; they are
 *   the raw softmax only at temperature 0 (or topK 0, topP 1, minP 0). So greedy generation reads
 *   them as it decodes, and sampled generation samples natively and then scores its own completion
 *   by teacher forcing (one batched pass) to report the raw distribution.
 * - Its defaults (topK 40, topP 0.95, minP 0.05 …) are never relied on: every option is passed.
 * - A sequence keeps its KV cache between requests; each request first aligns the cache with its
 *   prompt (`adaptStateToTokens`), so a shared prefix (and the n samples of one prompt) is
 *   evaluated once.
 */
import { basename } from 'node:path';
import { existsSync } from 'node:fs';
import PQueue from 'p-queue';
import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';
import { InputError, RunError, describeError } from '../../errors.js';
import { sha256File } from '../../util/hash.js';
import {
  checkedPromptIds,
  checkedTokenIds,
  checkSampling,
  checkScoreFits,
  sampleCompletions,
  type LocalLimits,
} from '../engine.js';
import type {
  Completion,
  PositionLogprobs,
  SamplingOptions,
  TargetEngine,
  TargetIdentity,
  TargetPrompt,
} from '../engine.js';
import { startLlama } from '../../util/llama-runtime.js';

export interface LlamaCppEngineOptions {
  /** GGUF model path. */
  model: string;
  contextSize: number;
  /** CPU threads per evaluation; 0 = all cores. */
  threads: number;
  /** Requests evaluated concurrently in one context. */
  sequences: number;
  batchSize: number;
  /** KV cache precision. */
  kvCacheType?: 'f16' | 'f32';
}

/** Positions scored per `controlledEvaluate` call: bounds the full-vocabulary maps held at once. */
const SCORE_CHUNK = 64;

export class LlamaCppEngine implements TargetEngine {
  readonly identity: TargetIdentity;
  /** Each request takes one free sequence; the queue keeps at most `sequences` running. */
  private readonly queue: PQueue;
  private readonly freeSequences: LlamaContextSequence[];
  private closed = false;

  private constructor(
    private readonly llama: Llama,
    /** The loaded model: `fireopt serve` uses it for text, chat templates and token strings. */
    readonly model: LlamaModel,
    private readonly context: LlamaContext,
    identity: TargetIdentity,
  ) {
    this.identity = identity;
    this.freeSequences = [];
    while (context.sequencesLeft > 0) this.freeSequences.push(context.getSequence());
    this.queue = new PQueue({ concurrency: this.freeSequences.length });
  }

  /** Load the model and create its context. */
  static async open(options: LlamaCppEngineOptions): Promise<LlamaCppEngine> {
    if (!existsSync(options.model))
      throw new InputError(`${options.model}: model file not found`, 'target.model must name a GGUF file');
    const modelSha256 = await sha256File(options.model);
    const llama = await startLlama();
    let model: LlamaModel;
    try {
      model = await llama.loadModel({ modelPath: options.model });
    } catch (error) {
      await llama.dispose();
      throw new InputError(`${options.model}: llama.cpp cannot load this GGUF (${describeError(error)})`);
    }
    let context: LlamaContext;
    try {
      context = await model.createContext({
        contextSize: options.contextSize,
        threads: options.threads,
        sequences: options.sequences,
        batchSize: Math.min(options.batchSize, options.contextSize),
        // F16 is llama.cpp's default (and how targets are usually served); F32 makes the batched
        // (scoring) and one-token (generation) passes agree to ~1e-6 instead of ~1e-3. Flash attention
        // computes in F16 on the CPU whatever the cache type, so exactness turns it off (measured).
        ...(options.kvCacheType === 'f32' ? { flashAttention: false } : {}),
        experimentalKvCacheKeyType: options.kvCacheType === 'f32' ? 'F32' : 'F16',
        experimentalKvCacheValueType: options.kvCacheType === 'f32' ? 'F32' : 'F16',
      });
    } catch (error) {
      await model.dispose();
      await llama.dispose();
      throw new RunError(
        `${options.model}: cannot create a ${options.contextSize}-token context (${describeError(error)})`,
      );
    }
    return new LlamaCppEngine(llama, model, context, {
      engine: 'llama-cpp',
      model: basename(options.model),
      modelSha256,
      vocabSize: vocabularySizeOf(model),
    });
  }

  get contextSize(): number {
    return this.context.contextSize;
  }

  get vocabularySize(): number {
    return vocabularySizeOf(this.model);
  }

  private get limits(): LocalLimits {
    return {
      vocabSize: this.vocabularySize,
      contextSize: this.contextSize,
      contextOwner: 'the',
      contextHint: 'raise target.context_size',
    };
  }

  /** Token ids of `text` (llama.cpp's tokenizer; `specialTokens` parses `<s>`-style text as those tokens). */
  tokenize(text: string, specialTokens = false): number[] {
    return [...this.model.tokenize(text, specialTokens)];
  }

  /**
   * Text of `tokenIds` (control tokens decode to nothing); `precedingIds` (the prompt) lets
   * SentencePiece decide whether the first token's leading space is text.
   */
  detokenize(tokenIds: readonly number[], precedingIds?: readonly number[]): string {
    return this.model.detokenize(tokenIds as readonly Token[], false, precedingIds as readonly Token[] | undefined);
  }

  /** True for the model's end-of-generation tokens (EOS, EOT, …). */
  isEndOfGeneration(tokenId: number): boolean {
    return this.model.isEogToken(tokenId as Token);
  }

  async generate(prompt: TargetPrompt, sampling: SamplingOptions): Promise<Completion[]> {
    const promptIds = checkedPromptIds(prompt.tokenIds, this.limits) as Token[];
    checkSampling(sampling);
    const budget = Math.min(sampling.maxTokens, this.contextSize - promptIds.length);
    return this.withSequence(async (sequence) => {
      return sampleCompletions(sampling, (seed) => this.generateOne(sequence, promptIds, sampling, seed, budget));
    });
  }

  async score(
    prompt: TargetPrompt,
    completionTokenIds: readonly number[],
    options: { topLogprobs: number },
  ): Promise<PositionLogprobs[]> {
    const promptIds = checkedPromptIds(prompt.tokenIds, this.limits) as Token[];
    const completion = checkedTokenIds(completionTokenIds, 'completion', this.limits) as Token[];
    if (completion.length === 0) return [];
    checkScoreFits(promptIds.length, completion.length, this.limits);
    return this.withSequence((sequence) => this.scoreOnSequence(sequence, promptIds, completion, options.topLogprobs));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.clear();
    await this.queue.onIdle();
    await this.context.dispose();
    await this.model.dispose();
    await this.llama.dispose();
  }

  private async withSequence<T>(run: (sequence: LlamaContextSequence) => Promise<T>): Promise<T> {
    if (this.closed) throw new RunError('the llama-cpp target engine is closed');
    const result = await this.queue.add(async () => {
      const sequence = this.freeSequences.pop();
      if (!sequence) throw new Error('llama-cpp engine: no free sequence although the queue admitted a request');
      try {
        return await run(sequence);
      } finally {
        this.freeSequences.push(sequence);
      }
    });
    return result as T;
  }

  private async generateOne(
    sequence: LlamaContextSequence,
    promptIds: Token[],
    sampling: SamplingOptions,
    seed: number,
    budget: number,
  ): Promise<Completion> {
    const greedy = sampling.temperature === 0;
    const wantLogprobs = sampling.topLogprobs > 0;
    const stopIds = new Set(sampling.stopTokenIds);
    const tokenIds: number[] = [];
    const logprobs: PositionLogprobs[] = [];
    let finishReason: Completion['finishReason'] = 'length';
    const pending = await this.alignSequence(sequence, promptIds);
    if (budget > 0) {
      // yieldEogToken: node-llama-cpp otherwise ends the stream *before* an end-of-generation token,
      // so the completion would lose the token the draft must learn to predict (and look cut by length).
      const steps = greedy
        ? sequence.evaluateWithMetadata(
            pending,
            { probabilities: wantLogprobs },
            { temperature: 0, yieldEogToken: true },
          )
        : sequence.evaluateWithMetadata(
            pending,
            {},
            {
              temperature: sampling.temperature,
              topK: sampling.topK,
              topP: sampling.topP,
              minP: 0,
              seed,
              yieldEogToken: true,
            },
          );
      for await (const step of steps) {
        tokenIds.push(step.token);
        if (greedy && wantLogprobs && 'probabilities' in step) {
          logprobs.push(
            logprobsFromProbabilities(step.probabilities as Map<Token, number>, step.token, sampling.topLogprobs),
          );
        }
        if (this.isEndOfGeneration(step.token) || stopIds.has(step.token)) {
          finishReason = 'stop';
          break;
        }
        if (tokenIds.length >= budget) break;
      }
      if (finishReason === 'length' && tokenIds.length < budget) {
        const said = `${tokenIds.length} of ${budget} tokens`;
        throw new RunError(`llama.cpp stopped generating after ${said} without an end-of-generation token`);
      }
    }
    const completion: Completion = { tokenIds, finishReason };
    if (wantLogprobs) {
      completion.logprobs = greedy
        ? logprobs
        : await this.scoreOnSequence(sequence, promptIds, tokenIds, sampling.topLogprobs);
    }
    return completion;
  }

  /** Teacher-forced log-probabilities of `completion` after `promptIds`, in chunks of positions. */
  private async scoreOnSequence(
    sequence: LlamaContextSequence,
    promptIds: Token[],
    completion: readonly number[],
    topLogprobs: number,
  ): Promise<PositionLogprobs[]> {
    if (completion.length === 0) return [];
    const pending = await this.alignSequence(sequence, promptIds);
    // The distribution for completion[j] comes out of the token before it: the last prompt token
    // for j = 0, completion[j - 1] after that.
    const inputs: Token[] = [...pending, ...(completion.slice(0, -1) as Token[])];
    const firstScored = pending.length - 1;
    const result: PositionLogprobs[] = [];
    for (let start = 0; start < inputs.length; start += SCORE_CHUNK) {
      const chunk = inputs.slice(start, start + SCORE_CHUNK);
      const outputs = await sequence.controlledEvaluate(
        chunk.map((token, offset) =>
          start + offset >= firstScored ? [token, { generateNext: { probabilities: true } }] : token,
        ),
      );
      for (let offset = 0; offset < chunk.length; offset++) {
        const position = start + offset - firstScored;
        if (position < 0) continue;
        const probabilities = outputs[offset]?.next.probabilities;
        if (!probabilities)
          throw new RunError(`llama.cpp returned no probabilities for completion position ${position}`);
        result.push(logprobsFromProbabilities(probabilities, completion[position], topLogprobs));
      }
    }
    return result;
  }

  /**
   * Reuse the KV cache for the longest common prefix with `promptIds` and return the tokens still
   * to evaluate (at least the last prompt token, whose logits give the first completion position).
   */
  private async alignSequence(sequence: LlamaContextSequence, promptIds: Token[]): Promise<Token[]> {
    await sequence.adaptStateToTokens(promptIds.slice(0, -1), false);
    return promptIds.slice(sequence.nextTokenIndex);
  }
}

/** node-llama-cpp exposes no vocabulary size; the GGUF token list is the vocabulary. */
function vocabularySizeOf(model: LlamaModel): number {
  return model.fileInfo.metadata.tokenizer.ggml.tokens.length;
}

/** Top-k of a probability map that node-llama-cpp sorts most likely first, as natural logs. */
function logprobsFromProbabilities(
  probabilities: ReadonlyMap<number, number>,
  token: number,
  topLogprobs: number,
): PositionLogprobs {
  const topIds: number[] = [];
  const topValues: number[] = [];
  if (topLogprobs > 0) {
    for (const [id, probability] of probabilities) {
      topIds.push(id);
      topValues.push(Math.log(probability));
      if (topIds.length >= topLogprobs) break;
    }
  }
  return { tokenLogprob: Math.log(probabilities.get(token) ?? 0), topIds, topLogprobs: topValues };
}
