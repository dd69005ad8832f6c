/**
 * fireopt's logits against llama.cpp's (node-llama-cpp) on the same GGUF and the same token ids.
 * node-llama-cpp returns next-token probabilities, which are llama.cpp's logits up to one constant
 * per position; the mean difference removes that constant.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LlamaContext, Token } from 'node-llama-cpp';
import type { LlamaModel } from '../../src/model/index.js';

/** Exactness settings: llama.cpp's defaults (F16 KV cache, flash attention) round to F16. */
export const EXACT_CONTEXT = {
  threads: 1,
  flashAttention: false,
  experimentalKvCacheKeyType: 'F32',
  experimentalKvCacheValueType: 'F32',
} as const;

/**
 * Teacher-forced logits of `model` and of the context's engine at every position of `ids`:
 * the largest |logit| of fireopt's and the worst difference after removing each position's constant.
 */
export async function logitGap(
  context: LlamaContext,
  model: LlamaModel,
  ids: number[],
): Promise<{ largest: number; worst: number }> {
  const logits = tf.tidy(() => model.forward(tf.tensor2d(ids, [1, ids.length], 'int32')));
  const fireoptLogits = await logits.data<'float32'>();
  logits.dispose();
  const sequence = context.getSequence();
  try {
    const outputs = await sequence.controlledEvaluate(
      ids.map((token) => [token as Token, { generateNext: { probabilities: true } }]),
    );
    let largest = 0;
    let worst = 0;
    const V = model.config.vocabSize;
    for (let t = 0; t < ids.length; t++) {
      const row = fireoptLogits.subarray(t * V, (t + 1) * V);
      const engineLog = new Float64Array(V);
      const probabilities = outputs[t]?.next.probabilities;
      if (probabilities?.size !== V) throw new Error(`llama.cpp gave ${probabilities?.size} probabilities, not ${V}`);
      for (const [token, p] of probabilities) engineLog[token] = Math.log(p);
      let shift = 0;
      for (let v = 0; v < V; v++) shift += (row[v] - engineLog[v]) / V;
      for (let v = 0; v < V; v++) {
        largest = Math.max(largest, Math.abs(row[v]));
        worst = Math.max(worst, Math.abs(row[v] - engineLog[v] - shift));
      }
    }
    return { largest, worst };
  } finally {
    sequence.dispose();
  }
}

/** llama.cpp's greedy continuation of `prompt`: `count` token ids. */
export async function engineGreedy(context: LlamaContext, prompt: number[], count: number): Promise<number[]> {
  const sequence = context.getSequence();
  const tokens: number[] = [];
  try {
    for await (const token of sequence.evaluate(prompt as Token[], { temperature: 0 })) {
      tokens.push(token);
      if (tokens.length === count) break;
    }
  } finally {
    sequence.dispose();
  }
  return tokens;
}
