/** Log-probabilities of one row of logits: the raw (temperature 1) distribution and its top k. */
import type { PositionLogprobs } from '../engine.js';

/**
 * `log softmax(logits)` at `token` and the `topLogprobs` most likely ids, most likely first (ties
 * to the lower id, as llama.cpp's sort). The row is `logits[offset .. offset + vocabSize)`;
 * the normaliser is summed in float64 so that log-probabilities of a 32k vocabulary stay exact
 * to float32.
 */
export function positionLogprobs(
  logits: Float32Array,
  offset: number,
  vocabSize: number,
  token: number,
  topLogprobs: number,
): PositionLogprobs {
  let max = -Infinity;
  for (let i = 0; i < vocabSize; i++) max = Math.max(max, logits[offset + i]);
  let sum = 0;
  for (let i = 0; i < vocabSize; i++) sum += Math.exp(logits[offset + i] - max);
  const logNormaliser = max + Math.log(sum);
  const topIds = topIndices(logits, offset, vocabSize, Math.min(topLogprobs, vocabSize));
  return {
    tokenLogprob: logits[offset + token] - logNormaliser,
    topIds,
    topLogprobs: topIds.map((id) => logits[offset + id] - logNormaliser),
  };
}

/** Indices of the k largest values of a row, largest first, ties to the lower index. */
export function topIndices(values: Float32Array, offset: number, length: number, k: number): number[] {
  if (k <= 0) return [];
  const before = (a: number, b: number): boolean =>
    values[offset + a] > values[offset + b] || (values[offset + a] === values[offset + b] && a < b);
  if (k * 8 >= length) {
    return Array.from({ length }, (_, i) => i)
      .sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0))
      .slice(0, k);
  }
  // Small k: keep a sorted list of the best k seen (k insertions at most per improving value).
  const best: number[] = [];
  for (let i = 0; i < length; i++) {
    if (best.length === k && !before(i, best[k - 1])) continue;
    let at = best.length === k ? k - 1 : best.length;
    if (best.length < k) best.push(i);
    while (at > 0 && before(i, best[at - 1])) {
      best[at] = best[at - 1];
      at--;
    }
    best[at] = i;
  }
  return best;
}
