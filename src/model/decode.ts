/**
 * Inference on one sequence: a key/value-cached decoding session, generation (greedy or sampled,
 * with stop ids) and teacher-forced next-token distributions at every position.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerCache, LlamaModel } from './llama.js';
import { SeededRandom } from './random.js';
import { sampleToken, type SamplingOptions } from './sampling.js';

/**
 * A growing key/value cache over one sequence. `feed` runs new tokens through the model and
 * returns their logits; `truncate` drops the tail (e.g. rejected draft tokens). Call dispose().
 * Logits are read with `await data()`, the only read the webgpu backend has under Node.
 */
export class DecodeSession {
  private caches: Array<LayerCache | null>;
  private headT: tf.Tensor2D;
  private position = 0;

  constructor(readonly model: LlamaModel) {
    this.caches = model.params.layers.map(() => null);
    // [C, V], once per session: a tied head would otherwise be transposed on every token. Kept
    // (like the caches) so that a session made or fed inside a caller's tf.tidy outlives it.
    this.headT = tf.keep(model.headMatrix());
  }

  /** Tokens in the cache. */
  get length(): number {
    return this.position;
  }

  /** Append tokens; resolves to their logits, row-major [tokens.length, V]. */
  async feed(tokens: number[]): Promise<Float32Array> {
    if (tokens.length === 0) return new Float32Array(0);
    const vocabSize = this.model.config.vocabSize;
    for (const token of tokens) {
      if (!Number.isInteger(token) || token < 0 || token >= vocabSize)
        throw new Error(`token id ${token} is outside the vocabulary [0, ${vocabSize})`);
    }
    const { logits, caches } = this.model.step(tokens, this.position, this.caches, this.headT);
    for (const cache of caches) {
      tf.keep(cache.keysT);
      tf.keep(cache.values);
    }
    // Kept too: a caller's scope may close before the read resolves.
    tf.keep(logits);
    // The cache is the session's state before the read resolves: a later call sees these tokens.
    this.replaceCaches(caches);
    this.position += tokens.length;
    try {
      return await logits.data<'float32'>();
    } finally {
      logits.dispose();
    }
  }

  /** Keep only the first `length` tokens of the cache. */
  truncate(length: number): void {
    if (!Number.isInteger(length) || length < 0 || length > this.position)
      throw new Error(`cannot truncate a ${this.position}-token cache to ${length}`);
    if (length === this.position) return;
    const caches =
      length === 0
        ? this.caches.map(() => null)
        : this.caches.map((cache) => {
            if (!cache) return null;
            const [KV, D] = cache.keysT.shape;
            return {
              keysT: tf.keep(tf.slice(cache.keysT, [0, 0, 0], [KV, D, length])),
              values: tf.keep(tf.slice(cache.values, [0, 0, 0], [KV, length, D])),
            };
          });
    this.replaceCaches(caches);
    this.position = length;
  }

  dispose(): void {
    this.replaceCaches(this.caches.map(() => null));
    this.headT.dispose();
  }

  private replaceCaches(caches: Array<LayerCache | null>): void {
    for (const cache of this.caches) {
      if (cache) {
        cache.keysT.dispose();
        cache.values.dispose();
      }
    }
    this.caches = caches;
  }
}

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  /** Seed of the sampling RNG (ignored when greedy). */
  seed?: number;
  /** Generation ends after any of these ids (which is included in the output). */
  stopIds?: number[];
}

export interface GenerateResult {
  /** The new tokens (not the prompt), ending with the stop id when one was produced. */
  tokens: number[];
  stopReason: 'stop-id' | 'max-new-tokens' | 'context-full';
}

/** Generate after `prompt` (at least one token, e.g. BOS) with the KV cache. */
export async function generate(model: LlamaModel, prompt: number[], options: GenerateOptions): Promise<GenerateResult> {
  if (prompt.length === 0) throw new Error('generate needs a non-empty prompt (start with BOS)');
  const vocabSize = model.config.vocabSize;
  const random = new SeededRandom(options.seed ?? 0);
  const stopIds = new Set(options.stopIds ?? []);
  const session = new DecodeSession(model);
  const tokens: number[] = [];
  try {
    let logits = await session.feed(prompt);
    let offset = (prompt.length - 1) * vocabSize; // the last row predicts the next token
    while (tokens.length < options.maxNewTokens) {
      if (session.length >= model.config.maxSeqLen) return { tokens, stopReason: 'context-full' };
      const next = sampleToken(logits, options, random, offset, vocabSize);
      tokens.push(next);
      if (stopIds.has(next)) return { tokens, stopReason: 'stop-id' };
      if (tokens.length === options.maxNewTokens) break;
      logits = await session.feed([next]);
      offset = 0;
    }
    return { tokens, stopReason: 'max-new-tokens' };
  } finally {
    session.dispose();
  }
}

/**
 * Teacher-forced next-token distributions: row t (of tokens.length rows × V) is the model's
 * distribution for the token after tokens[0..t], as natural-log probabilities or probabilities.
 * One full forward pass (no cache).
 */
export async function nextTokenDistributions(
  model: LlamaModel,
  tokens: number[],
  kind: 'logprobs' | 'probs' = 'logprobs',
): Promise<Float32Array> {
  if (tokens.length === 0) return new Float32Array(0);
  const result = tf.tidy(() => {
    const logits = model.forward(tf.tensor2d(tokens, [1, tokens.length], 'int32')); // [1, T, V]
    const logProbs = tf.logSoftmax(logits);
    return kind === 'probs' ? tf.exp(logProbs) : logProbs;
  });
  try {
    return await result.data<'float32'>();
  } finally {
    result.dispose();
  }
}
