/**
 * A draft cut from its target (LayerSkip / self-speculative decoding; Minitron's width pruning): the
 * target's first n blocks, its final norm and output head (tied or not), optionally with a narrower
 * SwiGLU and fewer attention heads (whole GQA groups). Width, head size, RoPE and norms stay the
 * target's, so a narrowed draft has dim ≠ n_heads · head_dim and carries its head size explicitly
 * (config `headDim`, HF `head_dim`, GGUF `attention.key_length`); n = all layers at full width is
 * the target itself.
 */
import { headDim, type LlamaConfig } from './config.js';
import { dense, type DenseTensor, type LayerWeights, type LlamaWeights } from './weights.js';

export interface TargetLayersShape {
  /** The target's first `layers` blocks are kept. */
  layers: number;
  /** SwiGLU channels kept per block (default: all of the target's). */
  hiddenDim?: number;
  /** Query heads kept per block (default: `kvHeads` × the target's query heads per KV head, else all). */
  heads?: number;
  /** Key/value heads kept per block (default: `heads` ÷ the target's query heads per KV head, else all). */
  kvHeads?: number;
}

/** The query and KV heads `shape` keeps: as given, else the target's heads per KV head fills the other in. */
function keptHeads(target: LlamaConfig, shape: TargetLayersShape): { heads: number; kvHeads: number } {
  const group = target.nHeads / target.nKvHeads;
  const heads = shape.heads ?? (shape.kvHeads !== undefined ? shape.kvHeads * group : target.nHeads);
  const kvHeads = shape.kvHeads ?? (shape.heads !== undefined ? shape.heads / group : target.nKvHeads);
  return { heads, kvHeads };
}

/** Why `shape` cannot be cut from a target of `target`'s size (empty when it can). */
export function targetLayersProblems(target: LlamaConfig, shape: TargetLayersShape): string[] {
  const problems: string[] = [];
  if (!Number.isInteger(shape.layers) || shape.layers < 1 || shape.layers > target.nLayers)
    problems.push(`n_layers ${shape.layers}: the target has ${target.nLayers} layers (keep 1 to ${target.nLayers})`);
  const hidden = shape.hiddenDim;
  if (hidden !== undefined && (!Number.isInteger(hidden) || hidden < 1 || hidden > target.hiddenDim))
    problems.push(`hidden_dim ${hidden}: the target's SwiGLU has ${target.hiddenDim} channels (keep 1 to that)`);
  const group = target.nHeads / target.nKvHeads;
  const { heads, kvHeads } = keptHeads(target, shape);
  const headCounts = `the target has ${target.nHeads} heads over ${target.nKvHeads} KV heads`;
  if (!Number.isInteger(kvHeads) || kvHeads < 1 || kvHeads > target.nKvHeads)
    problems.push(
      shape.kvHeads === undefined
        ? `n_heads ${heads}: not a whole number of the target's KV groups (${group} heads each; ${headCounts}); ` +
            'give n_kv_heads'
        : `n_kv_heads ${kvHeads}: ${headCounts} (keep 1 to ${target.nKvHeads})`,
    );
  else if (!Number.isInteger(heads) || heads < 1 || heads > target.nHeads)
    problems.push(`n_heads ${heads}: ${headCounts} (keep 1 to ${target.nHeads})`);
  else if (heads % kvHeads !== 0 || heads / kvHeads > group)
    problems.push(
      `n_heads ${heads} over n_kv_heads ${kvHeads}: every kept KV head serves the same number of the ` +
        `${group} query heads that read it in the target (${headCounts})`,
    );
  return problems;
}

/** The config of the draft cut from `target` (`vocabSize` rows of the head). */
export function targetLayersConfig(target: LlamaConfig, shape: TargetLayersShape, vocabSize: number): LlamaConfig {
  const { heads, kvHeads } = keptHeads(target, shape);
  // The target's own explicit head size (Qwen3) is dropped here and restated below only where it is needed.
  const { headDim: _explicit, ...rest } = target;
  const size = headDim(target);
  return {
    ...rest,
    nLayers: shape.layers,
    hiddenDim: shape.hiddenDim ?? target.hiddenDim,
    nHeads: heads,
    nKvHeads: kvHeads,
    vocabSize,
    // The head size is the target's; stated only where dim / n_heads no longer gives it (as readers store it).
    ...(size * heads !== target.dim && { headDim: size }),
  };
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

/** Squared norms of `count` consecutive blocks of `size` rows of a row-major [rows, width] matrix. */
function rowBlockNorms(matrix: DenseTensor, count: number, size: number): Float64Array {
  const width = matrix.shape[1];
  const norms = new Float64Array(count);
  for (let i = 0; i < count * size * width; i++) norms[Math.floor(i / (size * width))] += matrix.data[i] ** 2;
  return norms;
}

/** Squared norms of `count` consecutive blocks of `size` columns of a row-major [rows, width] matrix. */
function columnBlockNorms(matrix: DenseTensor, count: number, size: number): Float64Array {
  const norms = new Float64Array(count);
  matrix.data.forEach((x, i) => {
    norms[Math.floor((i % matrix.shape[1]) / size)] += x ** 2;
  });
  return norms;
}

/**
 * Importance of each attention head of a block, from weights alone (Frobenius norms of a head's rows or
 * columns). Query head h reading KV head g writes at most ‖wv_g‖·‖wo_h‖ into the residual stream per
 * unit of input (its attention weights sum to 1), and ‖wq_h‖·‖wk_g‖ bounds how far its attention
 * logits move from uniform; the proxy is the product of the four. A query head's score is
 * ‖wq_h‖·‖wo_h‖ (the KV factor is common to its group); a KV head's is the sum over the query heads
 * that read it: ‖wk_g‖·‖wv_g‖·Σ_h ‖wq_h‖·‖wo_h‖. Biases (Qwen2) are left out. Minitron ranks heads by
 * activations on calibration data; on stories260K this weight-only proxy picked heads no better than
 * other choices before training (bench/history/train.md, 2026-12-02), and training evens them out.
 */
export function attentionHeadImportance(
  layer: LayerWeights,
  config: LlamaConfig,
): { query: Float32Array; kv: Float32Array } {
  const size = headDim(config);
  const group = config.nHeads / config.nKvHeads;
  const wq = rowBlockNorms(layer.wq, config.nHeads, size);
  const wo = columnBlockNorms(layer.wo, config.nHeads, size);
  const wk = rowBlockNorms(layer.wk, config.nKvHeads, size);
  const wv = rowBlockNorms(layer.wv, config.nKvHeads, size);
  const query = Float32Array.from(wq, (q, h) => Math.sqrt(q * wo[h]));
  const kv = Float32Array.from(wk, (k, g) => {
    const readers = query.subarray(g * group, (g + 1) * group).reduce((sum, score) => sum + score, 0);
    return Math.sqrt(k * wv[g]) * readers;
  });
  return { query, kv };
}

/**
 * The heads a block keeps, in their original order: the `kvHeads` most important KV heads, then in
 * each of their groups the `heads / kvHeads` most important query heads, so every kept KV head serves
 * the same number of query heads (query head h reads KV head ⌊h / group⌋, as llama.cpp and HF group them).
 */
function keptHeadIds(
  layer: LayerWeights,
  config: LlamaConfig,
  heads: number,
  kvHeads: number,
): { query: number[]; kv: number[] } {
  const importance = attentionHeadImportance(layer, config);
  const group = config.nHeads / config.nKvHeads;
  const kv = topChannels(importance.kv, kvHeads);
  const query = kv.flatMap((g) =>
    topChannels(importance.query.subarray(g * group, (g + 1) * group), heads / kvHeads).map((r) => g * group + r),
  );
  return { query, kv };
}

/** The row (or bias entry) ids of `heads` whole heads of `size` rows each. */
function headRows(heads: number[], size: number): number[] {
  return heads.flatMap((h) => Array.from({ length: size }, (_, i) => h * size + i));
}

/** Entries `ids` of a vector. */
function takeEntries(vector: DenseTensor, ids: number[]): DenseTensor {
  return dense(
    [ids.length],
    Float32Array.from(ids, (i) => vector.data[i]),
  );
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

/** A copy of every tensor of a block, the optional ones (Qwen2's biases, Qwen3's q/k norms) included. */
function copyLayer(layer: LayerWeights): LayerWeights {
  const copied: Partial<Record<keyof LayerWeights, DenseTensor>> = {};
  for (const key of Object.keys(layer) as Array<keyof LayerWeights>) {
    const tensor = layer[key];
    if (tensor) copied[key] = copy(tensor);
  }
  return copied as LayerWeights;
}

/**
 * The attention of a block with only the heads `kept` (whole heads: each keeps its rows in the
 * interleaved RoPE layout, so rotary positions are unchanged); Qwen3's per-head norms are shared by all.
 */
function keepHeads(layer: LayerWeights, kept: { query: number[]; kv: number[] }, size: number): Partial<LayerWeights> {
  const queryRows = headRows(kept.query, size);
  const kvRows = headRows(kept.kv, size);
  return {
    wq: takeRows(layer.wq, queryRows),
    wk: takeRows(layer.wk, kvRows),
    wv: takeRows(layer.wv, kvRows),
    wo: takeColumns(layer.wo, queryRows),
    ...(layer.bq && { bq: takeEntries(layer.bq, queryRows) }),
    ...(layer.bk && { bk: takeEntries(layer.bk, kvRows) }),
    ...(layer.bv && { bv: takeEntries(layer.bv, kvRows) }),
  };
}

/**
 * Cut a draft from `target`: its first `shape.layers` blocks (SwiGLU narrowed to the
 * `shape.hiddenDim` most important channels, attention to the `shape.heads` / `shape.kvHeads` most
 * important heads), final norm and head. `vocabRows` (draft id → target id) keeps those rows of the
 * embedding and head, for a reduced draft vocabulary. Copies every tensor.
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
  const narrowHeads = config.nHeads !== target.config.nHeads || config.nKvHeads !== target.config.nKvHeads;
  const layers = target.layers.slice(0, shape.layers).map((layer): LayerWeights => {
    const kept =
      config.hiddenDim === target.config.hiddenDim
        ? undefined
        : topChannels(ffnChannelImportance(layer), config.hiddenDim);
    return {
      ...copyLayer(layer),
      ...(narrowHeads &&
        keepHeads(layer, keptHeadIds(layer, target.config, config.nHeads, config.nKvHeads), headDim(target.config))),
      ...(kept && {
        w1: takeRows(layer.w1, kept),
        w2: takeColumns(layer.w2, kept),
        w3: takeRows(layer.w3, kept),
      }),
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
