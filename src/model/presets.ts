/**
 * Model sizes: only numbers. The vocabulary (and so vocabSize) comes from the tokenizer, the
 * context length from the training config; everything else is fixed per preset.
 */
import type { LlamaConfig } from './config.js';

export type ModelShape = Omit<LlamaConfig, 'vocabSize' | 'maxSeqLen'>;

/** SwiGLU hidden width as Llama sets it: 2/3 of 4·dim, rounded up to a multiple of `multipleOf`. */
export function swigluHiddenDim(dim: number, multipleOf = 32): number {
  const hidden = Math.floor((2 * 4 * dim) / 3);
  return multipleOf * Math.ceil(hidden / multipleOf);
}

const shape = (dim: number, nLayers: number, nHeads: number, nKvHeads: number): ModelShape => ({
  dim,
  hiddenDim: swigluHiddenDim(dim),
  nLayers,
  nHeads,
  nKvHeads,
  normEps: 1e-5,
  ropeTheta: 10000,
  tiedEmbeddings: true,
});

export const presets = {
  /** ~0.1M non-embedding parameters: unit tests and smoke runs. */
  'draft-nano': shape(64, 2, 4, 2),
  /** ~0.7M non-embedding parameters: fast experiments. */
  'draft-tiny': shape(128, 4, 4, 2),
  /** ~2.9M non-embedding parameters: the default draft model (d 256, 4 layers, head size 64). */
  'draft-small': shape(256, 4, 4, 2),
  /** ~17M non-embedding parameters. */
  'draft-base': shape(512, 6, 8, 4),
} satisfies Record<string, ModelShape>;

export type PresetName = keyof typeof presets;

export function isPresetName(name: string): name is PresetName {
  return Object.hasOwn(presets, name);
}

/**
 * A full config from a preset plus the tokenizer's vocabulary size and the context length. A `dim`
 * override re-derives the SwiGLU width from the new `dim` unless `hiddenDim` is given too: the
 * preset's own hiddenDim belongs to the preset's width.
 */
export function presetConfig(
  name: PresetName,
  vocabSize: number,
  maxSeqLen: number,
  overrides: Partial<ModelShape> = {},
): LlamaConfig {
  const dim = overrides.dim ?? presets[name].dim;
  const hiddenDim =
    overrides.hiddenDim ?? (overrides.dim !== undefined ? swigluHiddenDim(dim) : presets[name].hiddenDim);
  return { ...presets[name], ...overrides, dim, hiddenDim, vocabSize, maxSeqLen };
}
