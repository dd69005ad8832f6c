/**
 * The one interface every target engine implements (STYLE principle 9). A target engine is the
 * model a draft is distilled from; each engine lives in its own folder (`llama-cpp/`, `openai/`)
 * and normalises its vendor's quirks there, so the distill stage sees only token ids and
 * log-probabilities.
 *
 * Conventions shared by every engine:
 * - Token ids are the target tokenizer's ids, exact (never re-tokenized text).
 * - Log-probabilities are natural logs of the target's *raw* next-token distribution (softmax of
 *   the logits at temperature 1, before temperature, top-k or top-p are applied), whatever
 *   sampling parameters chose the token. This is the distribution a draft is trained to match.
 * - A completion includes the stop token that ended it (an end-of-generation token or one of
 *   `stopTokenIds`) when the engine knows it, so its position carries log-probabilities too.
 */

import { InputError } from '../errors.js';

/** What the manifest records about the target. */
export interface TargetIdentity {
  engine: 'llama-cpp' | 'openai' | 'tfjs';
  /** Model file name (local engines) or the server's model name. */
  model: string;
  /** SHA-256 of the model file (local engines). */
  modelSha256?: string;
  /** Server base URL (openai engine; a fleet's first replica). */
  baseUrl?: string;
  /** Every replica's base URL, when the openai engine drives a fleet (`target.base_urls`). */
  baseUrls?: string[];
  /** Vocabulary size of the target, when the engine knows it. */
  vocabSize?: number;
}

/** A chat message, for engines that talk to a chat API. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
}

/**
 * A prompt. `tokenIds` is always present (rendered with the target's chat template by the caller);
 * `messages` is used by engines configured for a chat API, and `text` by completion APIs that
 * cannot take token ids.
 */
export interface TargetPrompt {
  tokenIds: readonly number[];
  text?: string;
  messages?: readonly ChatMessage[];
}

export interface SamplingOptions {
  /** Most tokens to generate per completion (the stop token counts). */
  maxTokens: number;
  /** 0 = greedy. */
  temperature: number;
  /** Nucleus sampling threshold; 1 = off. */
  topP: number;
  /** Keep only the k most likely tokens when sampling; 0 = off. */
  topK: number;
  /** Sample i of n uses seed + i. */
  seed: number;
  /** Extra token ids that end a completion, besides the model's own end-of-generation tokens. */
  stopTokenIds: readonly number[];
  /** Completions per prompt. */
  n: number;
  /** Alternatives to report per position (0 = no log-probabilities at all). */
  topLogprobs: number;
}

/** Log-probabilities at one completion position. */
export interface PositionLogprobs {
  /** log p(token actually at this position). */
  tokenLogprob: number;
  /** The `topLogprobs` most likely ids, most likely first (`topIds.length <= topLogprobs`). */
  topIds: number[];
  /** log p of each of `topIds`. */
  topLogprobs: number[];
}

export type FinishReason = 'stop' | 'length';

export interface Completion {
  /** Generated ids, including the stop token that ended the completion when the engine knows it. */
  tokenIds: number[];
  /** One entry per token of `tokenIds` when `topLogprobs > 0`, else absent. */
  logprobs?: PositionLogprobs[];
  /** `stop`: an end-of-generation or stop token; `length`: maxTokens or the context was reached. */
  finishReason: FinishReason;
}

export interface TargetEngine {
  readonly identity: TargetIdentity;
  /** Generate `sampling.n` completions of one prompt. */
  generate(prompt: TargetPrompt, sampling: SamplingOptions): Promise<Completion[]>;
  /**
   * Teacher forcing: the log-probabilities the target assigns to each token of a given
   * completion after the prompt (one entry per completion token).
   */
  score(
    prompt: TargetPrompt,
    completionTokenIds: readonly number[],
    options: { topLogprobs: number },
  ): Promise<PositionLogprobs[]>;
  /** Release the model, the connections and every pending timer. */
  close(): Promise<void>;
  /** Engines that spread requests over replicas (openai): what each replica served so far. */
  replicaStats?(): ReplicaStats[];
}

/** What one replica of a served target did: requests answered, their tokens, failed attempts. */
export interface ReplicaStats {
  baseUrl: string;
  requests: number;
  tokens: number;
  failedAttempts: number;
  timesTakenOut: number;
}

/** Defaults for the sampling fields a caller leaves out. */
export function samplingOptions(
  partial: Partial<SamplingOptions> & Pick<SamplingOptions, 'maxTokens'>,
): SamplingOptions {
  return {
    temperature: 0,
    topP: 1,
    topK: 0,
    seed: 0,
    stopTokenIds: [],
    n: 1,
    topLogprobs: 0,
    ...partial,
  };
}

// --- Checks and loops shared by the engines that run a model in this process (tfjs, llama-cpp) ---

/** A local engine's limits, and how its error messages name its context. */
export interface LocalLimits {
  vocabSize: number;
  contextSize: number;
  /** Words before "N-token context" in messages ("the model's", "the"). */
  contextOwner: string;
  /** The hint when something does not fit the context (e.g. which setting raises it). */
  contextHint?: string;
}

/** Throws an InputError naming every sampling option out of range. */
export function checkSampling(sampling: SamplingOptions): void {
  const problems: string[] = [];
  if (!(sampling.maxTokens >= 1)) problems.push(`maxTokens ${sampling.maxTokens} < 1`);
  if (!(sampling.temperature >= 0)) problems.push(`temperature ${sampling.temperature} < 0`);
  if (!(sampling.topP > 0 && sampling.topP <= 1)) problems.push(`topP ${sampling.topP} not in (0, 1]`);
  if (!(sampling.topK >= 0)) problems.push(`topK ${sampling.topK} < 0`);
  if (!(sampling.n >= 1)) problems.push(`n ${sampling.n} < 1`);
  if (!(sampling.topLogprobs >= 0)) problems.push(`topLogprobs ${sampling.topLogprobs} < 0`);
  if (problems.length) throw new InputError(`invalid sampling options: ${problems.join(', ')}`);
}

/** A copy of `ids`, each checked to be a token of the vocabulary. */
export function checkedTokenIds(ids: readonly number[], what: string, limits: LocalLimits): number[] {
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= limits.vocabSize) {
      throw new InputError(
        `${what} token id ${id} is outside the target's ${limits.vocabSize}-token vocabulary`,
        'the prompt was tokenized for another model',
      );
    }
  }
  return [...ids];
}

/** checkedTokenIds for a prompt, which must also be non-empty and leave room for one new token. */
export function checkedPromptIds(ids: readonly number[], limits: LocalLimits): number[] {
  const prompt = checkedTokenIds(ids, 'prompt', limits);
  if (prompt.length === 0) throw new InputError('empty prompt: a target needs at least one prompt token (usually BOS)');
  if (prompt.length >= limits.contextSize) {
    throw new InputError(
      `prompt of ${prompt.length} tokens does not fit ${limits.contextOwner} ${limits.contextSize}-token context`,
      limits.contextHint,
    );
  }
  return prompt;
}

/** Scoring feeds the prompt and all but the last completion token: they must fit the context. */
export function checkScoreFits(promptLength: number, completionLength: number, limits: LocalLimits): void {
  if (promptLength + completionLength - 1 > limits.contextSize) {
    throw new InputError(
      `prompt (${promptLength} tokens) plus completion (${completionLength}) ` +
        `is longer than ${limits.contextOwner} ${limits.contextSize}-token context`,
      limits.contextHint,
    );
  }
}

/** `sampling.n` completions, the i-th drawn with seed `sampling.seed + i`; greedy ones are drawn once and copied. */
export async function sampleCompletions(
  sampling: SamplingOptions,
  one: (seed: number) => Promise<Completion>,
): Promise<Completion[]> {
  const completions: Completion[] = [];
  for (let sample = 0; sample < sampling.n; sample++) {
    if (sampling.temperature === 0 && sample > 0) {
      completions.push(structuredClone(completions[0])); // greedy: every sample is the same
      continue;
    }
    completions.push(await one(sampling.seed + sample));
  }
  return completions;
}
