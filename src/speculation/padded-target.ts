/**
 * A cost-realistic benchmark target: a real model padded with compute that cannot change its outputs,
 * so that llama.cpp does a bigger model's work per step while every output stays the real model's.
 * No pretrained model above ~1 MB can be had on these machines, and with a 260K-parameter target a
 * draft step costs about what a target step costs (c ≈ 1), so speculation can never win there.
 *
 * Three paddings, each exact up to float summation order:
 * - a wider residual stream (`dim`): the extra dimensions hold 0 at every layer. The embedding's extra
 *   columns are 0, and nothing writes to them (`wo`, `w2` extra rows are 0). RMSNorm then sees
 *   mean(x²) scaled by d/D, which the norm weights (× √(d/D)) and ε (× d/D) undo exactly:
 *   x·g√(d/D) / √(m·d/D + ε·d/D) = x·g / √(m + ε). The head size is kept, so the extra width is extra
 *   heads (query and key/value in the model's grouping) whose `wo` columns are 0;
 * - a wider feed-forward (`hiddenDim`): extra `w1` / `w3` rows are computed, extra `w2` columns are 0;
 * - extra blocks after the real ones whose output projections `wo` and `w2` are zero: attention and
 *   the feed-forward run in full (the KV cache grows), and each block adds 0 to the residual stream.
 * Weights whose products are discarded are random, not zero, so the work is honest (no engine can
 * skip it) and the values are ordinary floats (no denormals). A wide residual stream also gives the
 * target a realistic shape: its matrix products are square enough that verifying k + 1 tokens in one
 * batch costs little more than one token, as in a real 20–50M-parameter model, which a 64-wide
 * stream with a huge feed-forward would not.
 * Only summation order differs (zeros added in other lanes), so logits agree within float rounding,
 * not bit for bit: tests and the benchmark check 1e-4.
 */
import type { LlamaContextSequence, Token } from 'node-llama-cpp';
import type { LayerWeights, LlamaWeights } from '../model/weights.js';
import { SeededRandom } from '../model/random.js';
import { startLlama } from '../util/llama-runtime.js';

export interface TargetPadding {
  /** Width of the residual stream (≥ the model's own; a multiple of head size × query heads per KV head). */
  dim?: number;
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
  const { dim, hiddenDim, nHeads, nKvHeads, normEps } = weights.config;
  const headSize = dim / nHeads;
  const group = nHeads / nKvHeads;
  const width = padding.dim ?? dim;
  const ffn = padding.hiddenDim;
  if (!Number.isInteger(width) || width < dim || width % (headSize * group) !== 0)
    throw new RangeError(
      `padding: dim ${width} must be an integer ≥ the model's ${dim} and a multiple of ${headSize * group} ` +
        `(head size ${headSize} × ${group} query heads per KV head)`,
    );
  if (!Number.isInteger(ffn) || ffn < hiddenDim)
    throw new RangeError(`padding: hiddenDim ${ffn} must be an integer ≥ the model's ${hiddenDim}`);
  if (!Number.isInteger(padding.extraLayers) || padding.extraLayers < 0)
    throw new RangeError(`padding: extraLayers ${padding.extraLayers} must be a non-negative integer`);
  const heads = width / headSize;
  const kvHeads = heads / group;
  const random = new SeededRandom(padding.seed ?? 1);
  /**
   * A [rows, cols] matrix holding `original` ([r, c], row-major) in its top-left corner; the rest random
   * (scaled like a fresh init, so activations stay ordinary floats) or zero.
   */
  const embed = (
    original: Float32Array | undefined,
    [r, c]: readonly number[],
    [rows, cols]: readonly number[],
    rest: 'random' | 'zero',
  ): { shape: number[]; data: Float32Array } => {
    const data = new Float32Array(rows * cols);
    if (rest === 'random') for (let i = 0; i < data.length; i++) data[i] = random.nextNormal() / Math.sqrt(cols);
    if (original) for (let i = 0; i < r; i++) data.set(original.subarray(i * c, (i + 1) * c), i * cols);
    return { shape: [rows, cols], data };
  };
  // RMSNorm over the wider stream: weights × √(d/D), ε × d/D (see the file comment).
  const normScale = Math.sqrt(dim / width);
  const norm = (g: Float32Array): { shape: number[]; data: Float32Array } => {
    const data = new Float32Array(width).fill(1);
    for (let i = 0; i < dim; i++) data[i] = g[i] * normScale;
    return { shape: [width], data };
  };
  const q = [nHeads * headSize, dim];
  const kv = [nKvHeads * headSize, dim];
  const layer = (real: LayerWeights | undefined, template: LayerWeights): LayerWeights => ({
    attnNorm: norm(template.attnNorm.data),
    wq: embed(real?.wq.data, q, [heads * headSize, width], 'random'),
    wk: embed(real?.wk.data, kv, [kvHeads * headSize, width], 'random'),
    wv: embed(real?.wv.data, kv, [kvHeads * headSize, width], 'random'),
    // Zero outside the real block: nothing reaches the extra dimensions, extra heads add nothing.
    wo: embed(real?.wo.data, [dim, nHeads * headSize], [width, heads * headSize], 'zero'),
    ffnNorm: norm(template.ffnNorm.data),
    w1: embed(real?.w1.data, [hiddenDim, dim], [ffn, width], 'random'),
    // Zero outside the real block: extra hidden units and extra dimensions add nothing.
    w2: embed(real?.w2.data, [dim, hiddenDim], [width, ffn], 'zero'),
    w3: embed(real?.w3.data, [hiddenDim, dim], [ffn, width], 'random'),
  });
  const last = weights.layers[weights.layers.length - 1];
  return {
    config: {
      ...weights.config,
      dim: width,
      hiddenDim: ffn,
      nHeads: heads,
      nKvHeads: kvHeads,
      nLayers: weights.config.nLayers + padding.extraLayers,
      normEps: (normEps * dim) / width,
    },
    tokenEmbedding: embed(
      weights.tokenEmbedding.data,
      weights.tokenEmbedding.shape,
      [weights.config.vocabSize, width],
      'zero',
    ),
    layers: [
      ...weights.layers.map((real) => layer(real, real)),
      ...Array.from({ length: padding.extraLayers }, () => layer(undefined, last)),
    ],
    finalNorm: norm(weights.finalNorm.data),
    ...(weights.output
      ? { output: embed(weights.output.data, weights.output.shape, [weights.config.vocabSize, width], 'zero') }
      : {}),
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
