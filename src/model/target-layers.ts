/**
 * A draft cut from its target (LayerSkip / self-speculative decoding; Minitron's width pruning): the
 * target's first n blocks, its final norm and output head (tied or not), optionally with a narrower
 * SwiGLU. Width, heads, head size, RoPE and norms stay the target's, so every engine that loads the
 * target loads the draft, and n = all layers at full width is the target itself.
 */
import type { LlamaConfig } from './config.js';
import { dense, type DenseTensor, type LayerWeights, type LlamaWeights } from './weights.js';

export interface TargetLayersShape {
  /** The target's first `layers` blocks are kept. */
  layers: number;
  /** SwiGLU channels kept per block (default: all of the target's). */
  hiddenDim?: number;
}

/** Why `shape` cannot be cut from a target of `target`'s size (empty when it can). */
export function targetLayersProblems(target: LlamaConfig, shape: TargetLayersShape): string[] {
  const problems: string[] = [];
  if (!Number.isInteger(shape.layers) || shape.layers < 1 || shape.layers > target.nLayers)
    problems.push(`n_layers ${shape.layers}: the target has ${target.nLayers} layers (keep 1 to ${target.nLayers})`);
  const hidden = shape.hiddenDim;
  if (hidden !== undefined && (!Number.isInteger(hidden) || hidden < 1 || hidden > target.hiddenDim))
    problems.push(`hidden_dim ${hidden}: the target's SwiGLU has ${target.hiddenDim} channels (keep 1 to that)`);
  return problems;
}

/** The config of the draft cut from `target` (`vocabSize` rows of the head). */
export function targetLayersConfig(target: LlamaConfig, shape: TargetLayersShape, vocabSize: number): LlamaConfig {
  return { ...target, nLayers: shape.layers, hiddenDim: shape.hiddenDim ?? target.hiddenDim, vocabSize };
}

/**
 * Importance of each SwiGLU channel i of a block, from weights alone: ‖gate_i‖·‖up_i‖·‖down_i‖ bounds
 * how much the channel can write into the residual stream for a unit-norm input (Minitron ranks by
 * activations; without data, the weight norms are the usual proxy).
 */
export function ffnChannelImportance(layer: LayerWeights): Float32Array {
  const [hidden, dim] = layer.w1.shape;
  const importance = new Float32Array(hidden);
  for (let i = 0; i < hidden; i++) {
    let gate = 0;
    let up = 0;
    let down = 0;
    for (let j = 0; j < dim; j++) {
      gate += layer.w1.data[i * dim + j] ** 2;
      up += layer.w3.data[i * dim + j] ** 2;
      down += layer.w2.data[j * hidden + i] ** 2; // w2 is [dim, hidden]: column i
    }
    importance[i] = Math.sqrt(gate * up * down);
  }
  return importance;
}

/** The `count` most important channels, in their original order (ties keep the lower index). */
function topChannels(importance: Float32Array, count: number): number[] {
  const order = Array.from(importance.keys()).sort((a, b) => importance[b] - importance[a] || a - b);
  return order.slice(0, count).sort((a, b) => a - b);
}

/** Rows `ids` of a [rows, width] matrix. */
function takeRows(matrix: DenseTensor, ids: ArrayLike<number>): DenseTensor {
  const width = matrix.shape[1];
  const out = dense([ids.length, width]);
  for (let r = 0; r < ids.length; r++)
    out.data.set(matrix.data.subarray(ids[r] * width, (ids[r] + 1) * width), r * width);
  return out;
}

/** Columns `ids` of a [rows, width] matrix. */
function takeColumns(matrix: DenseTensor, ids: number[]): DenseTensor {
  const [rows, width] = matrix.shape;
  const out = dense([rows, ids.length]);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < ids.length; c++) out.data[r * ids.length + c] = matrix.data[r * width + ids[c]];
  return out;
}

const copy = (tensor: DenseTensor): DenseTensor => dense([...tensor.shape], tensor.data.slice());

/**
 * Cut a draft from `target`: its first `shape.layers` blocks (SwiGLU narrowed to the
 * `shape.hiddenDim` most important channels), final norm and head. `vocabRows` (draft id → target
 * id) keeps those rows of the embedding and head, for a reduced draft vocabulary. Copies every tensor.
 */
export function targetLayerWeights(
  target: LlamaWeights,
  shape: TargetLayersShape,
  vocabRows?: ArrayLike<number>,
): LlamaWeights {
  const problems = targetLayersProblems(target.config, shape);
  if (problems.length) throw new Error(`cannot cut a draft from the target: ${problems.join('; ')}`);
  const rows = vocabRows ?? Array.from({ length: target.config.vocabSize }, (_, id) => id);
  const config = targetLayersConfig(target.config, shape, rows.length);
  const layers = target.layers.slice(0, shape.layers).map((layer): LayerWeights => {
    const kept =
      config.hiddenDim === target.config.hiddenDim
        ? undefined
        : topChannels(ffnChannelImportance(layer), config.hiddenDim);
    return {
      attnNorm: copy(layer.attnNorm),
      wq: copy(layer.wq),
      wk: copy(layer.wk),
      wv: copy(layer.wv),
      wo: copy(layer.wo),
      ffnNorm: copy(layer.ffnNorm),
      w1: kept ? takeRows(layer.w1, kept) : copy(layer.w1),
      w2: kept ? takeColumns(layer.w2, kept) : copy(layer.w2),
      w3: kept ? takeRows(layer.w3, kept) : copy(layer.w3),
    };
  });
  return {
    config,
    tokenEmbedding: takeRows(target.tokenEmbedding, rows),
    layers,
    finalNorm: copy(target.finalNorm),
    output: target.output ? takeRows(target.output, rows) : undefined,
  };
}
