/** Small random-weight Qwen2 / Qwen3 models for the architecture tests (no pretrained Qwen weights here). */
import type { LlamaConfig } from '../../src/model/config.js';
import { randomWeights, SeededRandom } from '../../src/model/index.js';
import type { LlamaWeights } from '../../src/model/weights.js';

/**
 * One config per Qwen architecture: qwen2 ties the head to the embedding (as Qwen2.5's small models
 * do); qwen3 has head size 32 with 4 heads over width 64 (q wider than the residual stream, as
 * Qwen3's explicit head_dim allows) and an untied head. RoPE base 1e6, RMSNorm eps 1e-6.
 */
export function qwenCases(
  vocabSize: number,
  maxSeqLen: number,
): Array<{ name: 'qwen2' | 'qwen3'; config: LlamaConfig }> {
  const base = { dim: 64, hiddenDim: 96, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize, maxSeqLen };
  const numbers = { ...base, normEps: 1e-6, ropeTheta: 1_000_000 };
  return [
    { name: 'qwen2', config: { ...numbers, architecture: 'qwen2', tiedEmbeddings: true } },
    { name: 'qwen3', config: { ...numbers, architecture: 'qwen3', headDim: 32, tiedEmbeddings: false } },
  ];
}

/**
 * Random weights with every architecture-specific tensor away from its neutral value (biases
 * non-zero, norm gains not one), so a missing bias or norm, or one in the wrong row order, shows.
 * The embedding is small so that the blocks, not the input token, decide a tied head's argmax:
 * greedy decoding then moves instead of repeating the last token.
 */
export function qwenWeights(config: LlamaConfig, seed: number): LlamaWeights {
  const weights = randomWeights(config, { seed, std: 0.15 });
  const random = new SeededRandom(seed + 1);
  weights.tokenEmbedding.data.forEach((_, i, a) => (a[i] *= 0.2));
  for (const layer of weights.layers) {
    for (const bias of [layer.bq, layer.bk, layer.bv]) bias?.data.forEach((_, i, a) => (a[i] = random.nextNormal()));
    for (const gain of [layer.qNorm, layer.kNorm, layer.attnNorm, layer.ffnNorm])
      gain?.data.forEach((_, i, a) => (a[i] = 1 + 0.5 * random.nextNormal()));
  }
  return weights;
}
