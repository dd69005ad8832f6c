/**
 * A cost-realistic benchmark target: a real model padded with compute that cannot change its outputs,
 * so that llama.cpp does a bigger model's work per step while every output stays the real model's.
 * No pretrained model above ~1 MB can be had on these machines, and with a 260K-parameter target a
 * draft step costs about what a target step costs (c ≈ 1), so speculation can never win there.
 *
 * Two paddings, both exact up to float summation order:
 * - a wider feed-forward: `w1` / `w3` get extra random rows (computed, SiLU and all) and `w2` extra
 *   zero columns, so the extra hidden units add exactly 0 to the residual stream;
 * - extra transformer blocks after the real ones whose output projections `wo` and `w2` are zero:
 *   attention and the feed-forward run in full (random q, k, v, gate, up; the KV cache grows), and
 *   each block adds 0 to the residual stream.
 * Random (not zero) weights where the result is discarded keep the work honest: no engine can skip a
 * product whose inputs are all zero, and the values are ordinary floats (no denormals).
 * Only the summation order of the wider `w2` products can differ (zeros added in another lane), so
 * logits agree within float rounding, not bit for bit: tests and the benchmark check 1e-4.
 */
import type { LlamaContextSequence, Token } from 'node-llama-cpp';
import type { LayerWeights, LlamaWeights } from '../model/weights.js';
import { SeededRandom } from '../model/random.js';
import { startLlama } from '../util/llama-runtime.js';

export interface TargetPadding {
  /** Feed-forward width of every block (≥ the model's own). */
  hiddenDim: number;
  /** Blocks added after the real ones. */
  extraLayers: number;
  /** Seed of the discarded weights. */
  seed?: number;
}

/** Parameters of a model (every tensor, the output head when untied). */
export function parameterCount(weights: LlamaWeights): number {
  const layer = (l: LayerWeights): number => Object.values(l).reduce((n, t) => n + t.data.length, 0);
  return (
    weights.tokenEmbedding.data.length +
    weights.finalNorm.data.length +
    (weights.output?.data.length ?? 0) +
    weights.layers.reduce((n, l) => n + layer(l), 0)
  );
}

/** `weights` padded with output-neutral compute (see the file comment); the input is not modified. */
export function padTarget(weights: LlamaWeights, padding: TargetPadding): LlamaWeights {
  const { dim, hiddenDim } = weights.config;
  const width = padding.hiddenDim;
  if (!Number.isInteger(width) || width < hiddenDim)
    throw new RangeError(`padding: hiddenDim ${width} must be an integer ≥ the model's ${hiddenDim}`);
  if (!Number.isInteger(padding.extraLayers) || padding.extraLayers < 0)
    throw new RangeError(`padding: extraLayers ${padding.extraLayers} must be a non-negative integer`);
  const random = new SeededRandom(padding.seed ?? 1);
  // Scale of the discarded weights: like a fresh init, so activations stay ordinary floats.
  const randomMatrix = (rows: number, cols: number): Float32Array =>
    Float32Array.from({ length: rows * cols }, () => random.nextNormal() / Math.sqrt(cols));
  /** [rows, dim] → [width, dim]: the real rows first, then random ones (their units are discarded by w2). */
  const widenRows = (data: Float32Array): Float32Array => {
    const out = new Float32Array(width * dim);
    out.set(data);
    out.set(randomMatrix(width - hiddenDim, dim), hiddenDim * dim);
    return out;
  };
  /** [dim, hiddenDim] → [dim, width] with zero extra columns: the extra units contribute nothing. */
  const widenColumns = (data: Float32Array): Float32Array => {
    const out = new Float32Array(dim * width);
    for (let r = 0; r < dim; r++) out.set(data.subarray(r * hiddenDim, (r + 1) * hiddenDim), r * width);
    return out;
  };
  const real = weights.layers.map(
    (layer): LayerWeights => ({
      ...layer,
      w1: { shape: [width, dim], data: widenRows(layer.w1.data) },
      w2: { shape: [dim, width], data: widenColumns(layer.w2.data) },
      w3: { shape: [width, dim], data: widenRows(layer.w3.data) },
    }),
  );
  const template = weights.layers[weights.layers.length - 1];
  const extra = Array.from(
    { length: padding.extraLayers },
    (): LayerWeights => ({
      attnNorm: template.attnNorm,
      wq: { shape: [...template.wq.shape], data: randomMatrix(template.wq.shape[0], dim) },
      wk: { shape: [...template.wk.shape], data: randomMatrix(template.wk.shape[0], dim) },
      wv: { shape: [...template.wv.shape], data: randomMatrix(template.wv.shape[0], dim) },
      wo: { shape: [...template.wo.shape], data: new Float32Array(template.wo.data.length) },
      ffnNorm: template.ffnNorm,
      w1: { shape: [width, dim], data: randomMatrix(width, dim) },
      w2: { shape: [dim, width], data: new Float32Array(dim * width) },
      w3: { shape: [width, dim], data: randomMatrix(width, dim) },
    }),
  );
  return {
    ...weights,
    config: { ...weights.config, hiddenDim: width, nLayers: weights.config.nLayers + padding.extraLayers },
    layers: [...real, ...extra],
  };
}

export interface TargetAgreement {
  /** Prompts whose greedy continuations were token-for-token equal. */
  equalPrompts: number;
  prompts: number;
  /** Positions compared (along the reference's greedy path). */
  positions: number;
  /** Largest |p_reference − p_padded| over every position and vocabulary token (temperature 1). */
  maxProbabilityDiff: number;
}

/**
 * How far a padded GGUF agrees with its reference in llama.cpp: both decode every prompt greedily for
 * `maxTokens` (F32 KV caches, flash attention off, as the speculative loop runs them), the tokens are
 * compared, and the full next-token distributions along the reference's path are compared too.
 */
export async function llamaCppAgreement(
  referenceGguf: string,
  paddedGguf: string,
  prompts: readonly (readonly number[])[],
  options: { maxTokens: number; threads?: number },
): Promise<TargetAgreement> {
  const llama = await startLlama();
  const loaded: Array<{ dispose(): Promise<void> }> = [];
  try {
    const open = async (modelPath: string): Promise<LlamaContextSequence> => {
      const model = await llama.loadModel({ modelPath });
      loaded.push(model);
      const longest = Math.max(...prompts.map((p) => p.length));
      const context = await model.createContext({
        contextSize: longest + options.maxTokens + 8,
        threads: options.threads ?? 1,
        sequences: 1,
        flashAttention: false,
        experimentalKvCacheKeyType: 'F32',
        experimentalKvCacheValueType: 'F32',
      });
      loaded.push(context);
      return context.getSequence();
    };
    /** The distribution at each greedy position (the greedy token is its argmax). */
    const decode = async (sequence: LlamaContextSequence, prompt: readonly number[]): Promise<Distribution[]> => {
      await sequence.clearHistory();
      const distributions: Distribution[] = [];
      let input = [...prompt] as Token[];
      for (let t = 0; t < options.maxTokens; t++) {
        const outputs = await sequence.controlledEvaluate(
          input.map((token, i) =>
            i === input.length - 1
              ? [token, { generateNext: { token: true, probabilities: true, options: { temperature: 1, topK: 0 } } }]
              : token,
          ),
        );
        const next = outputs[input.length - 1]?.next;
        if (!next?.probabilities) throw new Error('llama.cpp gave no distribution');
        distributions.push(next.probabilities);
        input = [argmaxToken(next.probabilities)];
      }
      return distributions;
    };
    const referenceSequence = await open(referenceGguf);
    const paddedSequence = await open(paddedGguf);
    const agreement: TargetAgreement = {
      equalPrompts: 0,
      prompts: prompts.length,
      positions: 0,
      maxProbabilityDiff: 0,
    };
    for (const prompt of prompts) {
      const reference = await decode(referenceSequence, prompt);
      const padded = await decode(paddedSequence, prompt);
      let equal = true;
      for (let t = 0; t < reference.length; t++) {
        if (argmaxToken(reference[t]) !== argmaxToken(padded[t])) {
          equal = false;
          break; // the paths part here: later distributions are of different contexts
        }
        agreement.positions++;
        for (const [token, p] of reference[t]) {
          const diff = Math.abs(p - (padded[t].get(token) ?? 0));
          if (diff > agreement.maxProbabilityDiff) agreement.maxProbabilityDiff = diff;
        }
      }
      if (equal) agreement.equalPrompts++;
    }
    return agreement;
  } finally {
    for (const resource of loaded.reverse()) await resource.dispose();
    await llama.dispose();
  }
}

type Distribution = ReadonlyMap<Token, number>;

/** The most probable token of a distribution (the lowest id on a tie, as greedy decoding picks). */
function argmaxToken(distribution: Distribution): Token {
  let best: Token | undefined;
  let bestP = -1;
  for (const [token, p] of distribution)
    if (p > bestP || (p === bestP && best !== undefined && token < best)) {
      best = token;
      bestP = p;
    }
  if (best === undefined) throw new Error('empty distribution');
  return best;
}
