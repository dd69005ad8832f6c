/**
 * Prompt-lookup decoding (Saxena 2023; vLLM's `ngram` method): find the last n tokens of the
 * context earlier in the context (n from `maxNgram` down to `minNgram`) and propose the tokens that
 * followed that earlier occurrence. This one uses the most recent earlier occurrence, kept in a
 * hash index that grows with the context (O(1) per token instead of a scan per proposal).
 */
import type { Proposer, ProposerSession } from './proposer.js';

export interface PromptLookupOptions {
  /** Longest n-gram matched first (vLLM's prompt_lookup_max). */
  maxNgram: number;
  /** Shortest n-gram tried (vLLM's prompt_lookup_min). */
  minNgram: number;
}

export const DEFAULT_PROMPT_LOOKUP: PromptLookupOptions = { maxNgram: 3, minNgram: 1 };

export class PromptLookupProposer implements Proposer {
  readonly name = 'prompt-lookup';
  constructor(readonly options: PromptLookupOptions = DEFAULT_PROMPT_LOOKUP) {
    if (!(options.minNgram >= 1 && options.maxNgram >= options.minNgram))
      throw new Error(`prompt lookup needs 1 ≤ min_ngram ≤ max_ngram, got ${options.minNgram}, ${options.maxNgram}`);
  }

  async open(promptIds: readonly number[]): Promise<ProposerSession> {
    const index = new NgramIndex(promptIds, this.options);
    return {
      propose: async (k) => index.proposeWithMatch(k).tokens,
      append: async (tokenIds) => index.append(tokenIds),
      dispose: () => {},
    };
  }
}

/** n-gram → the position just after its most recent occurrence that is not the context's end. */
export class NgramIndex {
  private readonly context: number[] = [];
  private readonly indexes: Array<Map<string, number>>;

  constructor(
    promptIds: readonly number[],
    private readonly options: PromptLookupOptions,
  ) {
    this.indexes = Array.from({ length: options.maxNgram + 1 }, () => new Map<string, number>());
    this.append(promptIds);
  }

  /** The proposal and the length of the n-gram it matched (0: none). */
  proposeWithMatch(k: number): { tokens: number[]; matched: number } {
    const length = this.context.length;
    for (let n = Math.min(this.options.maxNgram, length); n >= this.options.minNgram; n--) {
      const follower = this.indexes[n].get(this.key(length - n, n));
      if (follower !== undefined) return { tokens: this.context.slice(follower, follower + k), matched: n };
    }
    return { tokens: [], matched: 0 };
  }

  append(tokenIds: readonly number[]): void {
    for (const token of tokenIds) {
      // Before the context grows, every n-gram ending at its current end gains a follower: the new token.
      const length = this.context.length;
      for (let n = this.options.minNgram; n <= Math.min(this.options.maxNgram, length); n++) {
        this.indexes[n].set(this.key(length - n, n), length);
      }
      this.context.push(token);
    }
  }

  private key(start: number, n: number): string {
    let key = '';
    for (let i = start; i < start + n; i++) key += `${this.context[i]},`;
    return key;
  }
}
