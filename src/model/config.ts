/**
 * Llama-family model hyper-parameters. One generic description; model sizes are presets that
 * are only numbers (see presets.ts). The architectures differ only inside attention:
 * - `llama`: q/k/v projections without biases;
 * - `qwen2`: q/k/v projections with biases (transformers' Qwen2Attention);
 * - `qwen3`: no biases, an RMSNorm over each head of q and of k before RoPE (Qwen3Attention).
 */
export type Architecture = 'llama' | 'qwen2' | 'qwen3';

/** The architectures the model core runs, in the order the docs list them. */
export const ARCHITECTURES: readonly Architecture[] = ['llama', 'qwen2', 'qwen3'];

export interface LlamaConfig {
  /** Attention variant; absent means `llama` (every checkpoint written before Qwen support). */
  architecture?: Architecture;
  /** Model width (embedding size). */
  dim: number;
  /** SwiGLU hidden width. */
  hiddenDim: number;
  nLayers: number;
  /** Query heads. */
  nHeads: number;
  /** Key/value heads (grouped-query attention when < nHeads). */
  nKvHeads: number;
  vocabSize: number;
  /** Longest sequence the model was trained for (RoPE positions). */
  maxSeqLen: number;
  /** RMSNorm epsilon. */
  normEps: number;
  /** RoPE base frequency. */
  ropeTheta: number;
  /** Output head shares the token embedding matrix. */
  tiedEmbeddings: boolean;
  /** Head size when it is not dim / nHeads (Qwen3: 128 with dim 1024 and 16 heads); absent otherwise. */
  headDim?: number;
}

/** Head size D: the explicit `headDim`, else dim / nHeads. */
export function headDim(config: LlamaConfig): number {
  return config.headDim ?? config.dim / config.nHeads;
}

/** The architecture, `llama` when the config predates the field. */
export function architectureOf(config: LlamaConfig): Architecture {
  return config.architecture ?? 'llama';
}

/** Whether the q/k/v projections carry biases (Qwen2). */
export function hasAttentionBias(config: LlamaConfig): boolean {
  return architectureOf(config) === 'qwen2';
}

/** Whether q and k pass through a per-head RMSNorm before RoPE (Qwen3). */
export function hasQkNorm(config: LlamaConfig): boolean {
  return architectureOf(config) === 'qwen3';
}

/** Check the numbers are consistent; returns a list of problems (empty when fine). */
export function configProblems(config: LlamaConfig): string[] {
  const problems: string[] = [];
  for (const key of ['dim', 'hiddenDim', 'nLayers', 'nHeads', 'nKvHeads', 'vocabSize', 'maxSeqLen'] as const) {
    if (!Number.isInteger(config[key]) || config[key] <= 0)
      problems.push(`${key} must be a positive integer (got ${config[key]})`);
  }
  if (config.architecture !== undefined && !ARCHITECTURES.includes(config.architecture))
    problems.push(`architecture '${config.architecture}' is not one of ${ARCHITECTURES.join(', ')}`);
  if (config.headDim !== undefined && (!Number.isInteger(config.headDim) || config.headDim <= 0))
    problems.push(`headDim must be a positive integer (got ${config.headDim})`);
  if (config.headDim === undefined && config.dim % config.nHeads !== 0)
    problems.push(`dim ${config.dim} is not divisible by nHeads ${config.nHeads}`);
  if (config.nHeads % config.nKvHeads !== 0)
    problems.push(`nHeads ${config.nHeads} is not divisible by nKvHeads ${config.nKvHeads}`);
  if (headDim(config) % 2 !== 0) problems.push(`head size ${headDim(config)} must be even for RoPE`);
  if (!(config.normEps > 0)) problems.push(`normEps must be > 0`);
  if (!(config.ropeTheta > 0)) problems.push(`ropeTheta must be > 0`);
  return problems;
}
