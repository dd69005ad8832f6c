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

/** What the manifest records about the target. */
export interface TargetIdentity {
  engine: 'llama-cpp' | 'openai' | 'tfjs';
  /** Model file name (local engines) or the server's model name. */
  model: string;
  /** SHA-256 of the model file (local engines). */
  modelSha256?: string;
  /** Server base URL (openai engine). */
  baseUrl?: string;
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
  score(prompt: TargetPrompt, completionTokenIds: readonly number[], options: { topLogprobs: number }): Promise<PositionLogprobs[]>;
  /** Release the model, the connections and every pending timer. */
  close(): Promise<void>;
}

/** Defaults for the sampling fields a caller leaves out. */
export function samplingOptions(partial: Partial<SamplingOptions> & Pick<SamplingOptions, 'maxTokens'>): SamplingOptions {
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
