/** Shared pieces of the format tests: the real stories260K model, temp folders, tensor comparisons. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readLlama2cCheckpoint } from '../../src/formats/llama2c.js';
import { readLlama2cTokenizer } from '../../src/formats/llama2c-tokenizer.js';
import { tensorsByKey } from '../../src/formats/llama-tensors.js';
import type { LlamaWeights } from '../../src/model/weights.js';
import type { Vocabulary } from '../../src/tokenizer/vocabulary.js';
import { stories260K, tok512 } from '../helpers/shared.js';

export function loadStories260K(): { weights: LlamaWeights; vocabulary: Vocabulary } {
  const weights = readLlama2cCheckpoint(stories260K());
  return { weights, vocabulary: readLlama2cTokenizer(tok512(), weights.config.vocabSize) };
}

/** A fresh temp folder and its cleanup. */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `fireopt-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Keys whose tensors are not bit-identical (shape or any bit differs). */
export function bitDifferences(a: LlamaWeights, b: LlamaWeights): string[] {
  const left = tensorsByKey(a);
  const right = tensorsByKey(b);
  const keys = new Set([...left.keys(), ...right.keys()]);
  const differing: string[] = [];
  for (const key of keys) {
    const x = left.get(key);
    const y = right.get(key);
    if (!x || !y || x.shape.join() !== y.shape.join()) {
      differing.push(key);
      continue;
    }
    const xb = new Uint32Array(x.data.buffer, x.data.byteOffset, x.data.length);
    const yb = new Uint32Array(y.data.buffer, y.data.byteOffset, y.data.length);
    if (xb.some((bits, i) => bits !== yb[i])) differing.push(key);
  }
  return differing;
}

/**
 * Largest error of `approx` against `exact` over all tensors: relative error for values in the
 * format's normal range (|x| ≥ minNormal), absolute error below it.
 */
export function roundingError(
  exact: LlamaWeights,
  approx: LlamaWeights,
  minNormal: number,
): { maxRelative: number; maxAbsoluteBelowNormal: number; compared: number } {
  const left = tensorsByKey(exact);
  const right = tensorsByKey(approx);
  let maxRelative = 0;
  let maxAbsoluteBelowNormal = 0;
  let compared = 0;
  for (const [key, x] of left) {
    const y = right.get(key);
    if (!y || y.data.length !== x.data.length) throw new Error(`tensor ${key} missing or resized`);
    for (let i = 0; i < x.data.length; i++) {
      const error = Math.abs(x.data[i] - y.data[i]);
      if (Math.abs(x.data[i]) >= minNormal) maxRelative = Math.max(maxRelative, error / Math.abs(x.data[i]));
      else maxAbsoluteBelowNormal = Math.max(maxAbsoluteBelowNormal, error);
      compared++;
    }
  }
  return { maxRelative, maxAbsoluteBelowNormal, compared };
}
