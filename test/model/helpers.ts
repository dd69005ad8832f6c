/** Small helpers shared by the model tests. */
import type * as tf from '@tensorflow/tfjs-core';

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

export function maxAbs(a: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]));
  return max;
}

/** Read a tensor into a plain Float32Array and dispose it. */
export function take(t: tf.Tensor): Float32Array {
  try {
    return Float32Array.from(t.dataSync() as Float32Array);
  } finally {
    t.dispose();
  }
}

/** Token pieces to text as stories260K's tok512 spells them ('▁' → ' ', <0x0A> → newline). */
export function piecesToText(tokens: string[], ids: number[]): string {
  return ids.map((id) => (tokens[id] === '<0x0A>' ? '\n' : tokens[id].replaceAll('\u2581', ' '))).join('');
}
