/** Random initialisation of a Llama model, as LlamaWeights (format- and backend-independent). */
import { configProblems, hasAttentionBias, hasQkNorm, headDim, type LlamaConfig } from './config.js';
import { dense, type DenseTensor, type LlamaWeights } from './weights.js';
import { SeededRandom } from './random.js';

export interface InitOptions {
  seed: number;
  /** Standard deviation of every matrix (GPT-2 / nanoGPT use 0.02). */
  std?: number;
}

/**
 * Normal(0, std) matrices, unit RMSNorm gains; the two projections that write into the residual
 * stream (wo, w2) are scaled by 1/sqrt(2·nLayers) so the residual's variance does not grow with
 * depth (GPT-2's scheme). Qwen2's q/k/v biases start at zero and Qwen3's q/k norm gains at one,
 * as transformers initialises them.
 */
export function randomWeights(config: LlamaConfig, options: InitOptions): LlamaWeights {
  const problems = configProblems(config);
  if (problems.length) throw new Error(`invalid model config: ${problems.join('; ')}`);
  const random = new SeededRandom(options.seed);
  const std = options.std ?? 0.02;
  const residualStd = std / Math.sqrt(2 * config.nLayers);
  const normal = (shape: number[], scale: number): DenseTensor => {
    const tensor = dense(shape);
    for (let i = 0; i < tensor.data.length; i++) tensor.data[i] = random.nextNormal() * scale;
    return tensor;
  };
  const ones = (n: number): DenseTensor => dense([n], new Float32Array(n).fill(1));
  const qDim = config.nHeads * headDim(config);
  const kvDim = config.nKvHeads * headDim(config);
  return {
    config: { ...config },
    tokenEmbedding: normal([config.vocabSize, config.dim], std),
    layers: Array.from({ length: config.nLayers }, () => ({
      attnNorm: ones(config.dim),
      wq: normal([qDim, config.dim], std),
      wk: normal([kvDim, config.dim], std),
      wv: normal([kvDim, config.dim], std),
      wo: normal([config.dim, qDim], residualStd),
      ffnNorm: ones(config.dim),
      w1: normal([config.hiddenDim, config.dim], std),
      w2: normal([config.dim, config.hiddenDim], residualStd),
      w3: normal([config.hiddenDim, config.dim], std),
      ...(hasAttentionBias(config) && { bq: dense([qDim]), bk: dense([kvDim]), bv: dense([kvDim]) }),
      ...(hasQkNorm(config) && { qNorm: ones(headDim(config)), kNorm: ones(headDim(config)) }),
    })),
    finalNorm: ones(config.dim),
    output: config.tiedEmbeddings ? undefined : normal([config.vocabSize, config.dim], std),
  };
}
