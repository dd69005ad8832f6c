/**
 * Model weights in memory, independent of file format and of TensorFlow.js.
 *
 * Conventions (the same as llama2.c, Meta's checkpoints and GGUF):
 * - every matrix is row-major [out, in] (PyTorch nn.Linear layout);
 * - the rows of wq and wk are in the *interleaved* RoPE layout: each head's rotation pairs are
 *   adjacent (2i, 2i+1). Hugging Face safetensors use rotate-half (i, i + headDim/2); the
 *   safetensors reader/writer permutes between the two (see formats/safetensors.ts).
 */
import { hasAttentionBias, hasQkNorm, headDim, type LlamaConfig } from './config.js';

export interface DenseTensor {
  shape: number[];
  data: Float32Array;
}

export interface LayerWeights {
  attnNorm: DenseTensor; // [dim]
  wq: DenseTensor; // [nHeads * headDim, dim]
  wk: DenseTensor; // [nKvHeads * headDim, dim]
  wv: DenseTensor; // [nKvHeads * headDim, dim]
  wo: DenseTensor; // [dim, nHeads * headDim]
  ffnNorm: DenseTensor; // [dim]
  w1: DenseTensor; // gate [hiddenDim, dim]
  w2: DenseTensor; // down [dim, hiddenDim]
  w3: DenseTensor; // up [hiddenDim, dim]
  // Qwen2 only: q/k/v projection biases (bq, bk in the interleaved RoPE order, like wq / wk's rows).
  bq?: DenseTensor; // [nHeads * headDim]
  bk?: DenseTensor; // [nKvHeads * headDim]
  bv?: DenseTensor; // [nKvHeads * headDim]
  // Qwen3 only: RMSNorm gains applied to each head of q and of k (interleaved RoPE order).
  qNorm?: DenseTensor; // [headDim]
  kNorm?: DenseTensor; // [headDim]
}

export interface LlamaWeights {
  config: LlamaConfig;
  tokenEmbedding: DenseTensor; // [vocabSize, dim]
  layers: LayerWeights[];
  finalNorm: DenseTensor; // [dim]
  /** Output head [vocabSize, dim]; absent when config.tiedEmbeddings. */
  output?: DenseTensor;
}

export function dense(shape: number[], data?: Float32Array): DenseTensor {
  const size = shape.reduce((a, b) => a * b, 1);
  if (data && data.length !== size)
    throw new Error(`tensor data has ${data.length} values, shape [${shape}] needs ${size}`);
  return { shape, data: data ?? new Float32Array(size) };
}

/** Expected shape of every tensor, by a stable name (used by format readers to check files). */
export function expectedShapes(config: LlamaConfig): Map<string, number[]> {
  const hd = headDim(config);
  const shapes = new Map<string, number[]>();
  shapes.set('tokenEmbedding', [config.vocabSize, config.dim]);
  for (let l = 0; l < config.nLayers; l++) {
    shapes.set(`layers.${l}.attnNorm`, [config.dim]);
    shapes.set(`layers.${l}.wq`, [config.nHeads * hd, config.dim]);
    shapes.set(`layers.${l}.wk`, [config.nKvHeads * hd, config.dim]);
    shapes.set(`layers.${l}.wv`, [config.nKvHeads * hd, config.dim]);
    shapes.set(`layers.${l}.wo`, [config.dim, config.nHeads * hd]);
    shapes.set(`layers.${l}.ffnNorm`, [config.dim]);
    shapes.set(`layers.${l}.w1`, [config.hiddenDim, config.dim]);
    shapes.set(`layers.${l}.w2`, [config.dim, config.hiddenDim]);
    shapes.set(`layers.${l}.w3`, [config.hiddenDim, config.dim]);
    if (hasAttentionBias(config)) {
      shapes.set(`layers.${l}.bq`, [config.nHeads * hd]);
      shapes.set(`layers.${l}.bk`, [config.nKvHeads * hd]);
      shapes.set(`layers.${l}.bv`, [config.nKvHeads * hd]);
    }
    if (hasQkNorm(config)) {
      shapes.set(`layers.${l}.qNorm`, [hd]);
      shapes.set(`layers.${l}.kNorm`, [hd]);
    }
  }
  shapes.set('finalNorm', [config.dim]);
  if (!config.tiedEmbeddings) shapes.set('output', [config.vocabSize, config.dim]);
  return shapes;
}
