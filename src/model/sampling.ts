/** Choosing the next token from logits (plain JavaScript on one row of logits). */
import type { SeededRandom } from './random.js';

export interface SamplingOptions {
  /** 0 (default) = greedy; otherwise logits are divided by it before softmax. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = all). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 = all). */
  topP?: number;
}

/** Index of the largest value; ties go to the lowest index (as llama.cpp's greedy sampler). */
export function argmax(values: ArrayLike<number>, offset = 0, length = values.length - offset): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < length; i++) {
    const value = values[offset + i];
    if (value > bestValue) {
      bestValue = value;
      best = i;
    }
  }
  return best;
}

/**
 * Draw a token from one row of logits: temperature, then top-k, then top-p (the Hugging Face
 * order), renormalise, draw with `random`. Temperature 0 is greedy and draws nothing.
 */
export function sampleToken(
  logits: ArrayLike<number>,
  options: SamplingOptions,
  random: SeededRandom,
  offset = 0,
  length = logits.length - offset,
): number {
  const temperature = options.temperature ?? 0;
  if (!(temperature > 0)) return argmax(logits, offset, length);
  const topK = options.topK && options.topK > 0 ? Math.min(options.topK, length) : length;
  const topP = options.topP ?? 1;
  // Probabilities in float64, most likely first.
  let max = -Infinity;
  for (let i = 0; i < length; i++) max = Math.max(max, logits[offset + i]);
  const probs = new Float64Array(length);
  for (let i = 0; i < length; i++) probs[i] = Math.exp((logits[offset + i] - max) / temperature);
  const order = Array.from({ length }, (_, i) => i).sort((a, b) => probs[b] - probs[a] || a - b);
  let kept = topK;
  let mass = 0;
  for (let i = 0; i < topK; i++) mass += probs[order[i]];
  if (topP < 1) {
    let cumulative = 0;
    for (let i = 0; i < topK; i++) {
      cumulative += probs[order[i]] / mass;
      if (cumulative >= topP) {
        kept = i + 1;
        break;
      }
    }
    mass = 0;
    for (let i = 0; i < kept; i++) mass += probs[order[i]];
  }
  let draw = random.nextFloat() * mass;
  for (let i = 0; i < kept; i++) {
    draw -= probs[order[i]];
    if (draw < 0) return order[i];
  }
  return order[kept - 1]; // rounding left a sliver of mass: take the last kept token
}
