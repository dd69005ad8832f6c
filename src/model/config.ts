/**
 * Llama-architecture model hyper-parameters. One generic description; model sizes are presets that
 * are only numbers (see presets.ts).
 */
export interface LlamaConfig {
  /** Model width (embedding size). */
  dim: number;
  /** SwiGLU hidden width. */
  hiddenDim: number;
  nLayers: number;
  /** Query heads; head size = dim / nHeads. */
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
}

export function headDim(config: LlamaConfig): number {
  return config.dim / config.nHeads;
}

/** Check the numbers are consistent; returns a list of problems (empty when fine). */
export function configProblems(config: LlamaConfig): string[] {
  const problems: string[] = [];
  for (const key of ['dim', 'hiddenDim', 'nLayers', 'nHeads', 'nKvHeads', 'vocabSize', 'maxSeqLen'] as const) {
    if (!Number.isInteger(config[key]) || config[key] <= 0)
      problems.push(`${key} must be a positive integer (got ${config[key]})`);
  }
  if (config.dim % config.nHeads !== 0) problems.push(`dim ${config.dim} is not divisible by nHeads ${config.nHeads}`);
  if (config.nHeads % config.nKvHeads !== 0)
    problems.push(`nHeads ${config.nHeads} is not divisible by nKvHeads ${config.nKvHeads}`);
  if ((config.dim / config.nHeads) % 2 !== 0)
    problems.push(`head size ${config.dim / config.nHeads} must be even for RoPE`);
  if (!(config.normEps > 0)) problems.push(`normEps must be > 0`);
  if (!(config.ropeTheta > 0)) problems.push(`ropeTheta must be > 0`);
  return problems;
}
