/**
 * Automatic selection's candidates, sized to the target: a few fractions of its parameters, each
 * with the best initialisation available (target-layers > target embeddings > random). A draft costs
 * a forward pass per proposed token, so one of half the target's size or more can never pay off:
 * no candidate is that large.
 */
import { headDim, swigluHiddenDim, type LlamaConfig } from '../model/index.js';
import { targetLayersConfig, type TargetLayersShape } from '../model/target-layers.js';

/** Fractions of the target's parameters the search tries (EAGLE-sized to small-model-sized drafts). */
export const SEARCH_FRACTIONS = [1 / 40, 1 / 15, 1 / 6];
/** Tried only when none of SEARCH_FRACTIONS fits (a target whose embedding is most of it). */
export const FALLBACK_FRACTIONS = [1 / 4, 1 / 3];
/** No candidate has this share of the target's parameters or more. */
export const MAX_FRACTION = 1 / 2;

export type InitKind = 'random' | 'target' | 'target-layers' | 'pretrained' | 'draft';

export interface SearchCandidate {
  config: LlamaConfig;
  init: InitKind;
  /** For `target-layers`: the blocks, SwiGLU channels and heads kept. */
  shape?: TargetLayersShape;
  /** The share of the target's parameters this candidate was sized for. */
  fraction: number;
  parameters: number;
}

/** Every weight of a model of this size: embedding, blocks, final norm, and the head when untied. */
export function parameterCount(config: LlamaConfig): number {
  // q, k, v and o: a narrowed target-layers cut has fewer heads of the target's size (dim ≠ n_heads · head_dim).
  const attention = config.dim * headDim(config) * (2 * config.nHeads + 2 * config.nKvHeads);
  const block = attention + 3 * config.dim * config.hiddenDim + 2 * config.dim;
  const embeddings = config.vocabSize * config.dim * (config.tiedEmbeddings ? 1 : 2);
  return embeddings + config.nLayers * block + config.dim;
}

/**
 * The attention widths a searched cut may keep, widest first: all heads, then half of them in whole
 * GQA groups (half the KV heads, else half of each group's query heads) where the target has halves.
 */
function headChoices(target: LlamaConfig): Array<Pick<TargetLayersShape, 'heads' | 'kvHeads'>> {
  const group = target.nHeads / target.nKvHeads;
  if (target.nKvHeads % 2 === 0) return [{}, { heads: target.nHeads / 2, kvHeads: target.nKvHeads / 2 }];
  if (group % 2 === 0) return [{}, { heads: target.nHeads / 2, kvHeads: target.nKvHeads }];
  return [{}];
}

/**
 * The deepest cut of the target within `budget` parameters that keeps at least half of each block's
 * width — its SwiGLU, and all its heads else half of them (depth before width: LayerSkip's early
 * exits keep whole blocks; Minitron prunes heads less than channels) — else one block with half its
 * heads or more and what fits of its SwiGLU (at least an eighth); undefined when even that does not
 * fit. Never all layers.
 */
export function targetLayersWithin(
  target: LlamaConfig,
  vocabSize: number,
  budget: number,
): TargetLayersShape | undefined {
  const fits = (layers: number, minHidden: number): TargetLayersShape | undefined => {
    for (const heads of headChoices(target)) {
      const empty = parameterCount(targetLayersConfig(target, { layers, hiddenDim: 0, ...heads }, vocabSize));
      const perChannel = 3 * target.dim * layers;
      let hiddenDim = Math.min(target.hiddenDim, Math.floor((budget - empty) / perChannel));
      if (hiddenDim >= 64) hiddenDim -= hiddenDim % 8; // engines' SIMD kernels like multiples of 8
      if (hiddenDim >= minHidden) return { layers, hiddenDim, ...heads };
    }
    return undefined;
  };
  for (let layers = target.nLayers - 1; layers >= 1; layers--) {
    const shape = fits(layers, Math.ceil(target.hiddenDim / 2));
    if (shape) return shape;
  }
  return target.nLayers > 1 ? fits(1, Math.ceil(target.hiddenDim / 8)) : undefined;
}

/** Widths the generic drafts are built at, with their head size. */
const WIDTHS = [32, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072];
const MAX_GENERIC_LAYERS = 4;

/** A Llama-style draft of width `dim` and `layers` blocks (head size 16 to 64, KV heads half the heads). */
export function genericShape(dim: number, layers: number, vocabSize: number, maxSeqLen: number): LlamaConfig {
  const headDim = dim <= 64 ? 16 : dim <= 256 ? 32 : 64;
  const nHeads = dim / headDim;
  return {
    dim,
    hiddenDim: swigluHiddenDim(dim),
    nLayers: layers,
    nHeads,
    nKvHeads: nHeads % 2 === 0 ? nHeads / 2 : nHeads,
    vocabSize,
    maxSeqLen,
    normEps: 1e-5,
    ropeTheta: 10000,
    tiedEmbeddings: true,
  };
}

/** The widest generic draft within `budget` with at least two blocks (else one), up to four blocks. */
export function genericWithin(vocabSize: number, maxSeqLen: number, budget: number): LlamaConfig | undefined {
  let best: LlamaConfig | undefined;
  for (const minLayers of [2, 1]) {
    for (const dim of WIDTHS) {
      const empty = parameterCount(genericShape(dim, 0, vocabSize, maxSeqLen));
      const block = parameterCount(genericShape(dim, 1, vocabSize, maxSeqLen)) - empty;
      const layers = Math.min(MAX_GENERIC_LAYERS, Math.floor((budget - empty) / block));
      if (layers >= minLayers) best = genericShape(dim, layers, vocabSize, maxSeqLen);
    }
    if (best) return best;
  }
  return undefined;
}

export interface SearchInputs {
  /** The target's size. */
  target: LlamaConfig;
  /** Rows of the draft's embedding and head (the draft vocabulary). */
  draftVocabSize: number;
  maxSeqLen: number;
  /** Whether the target's weights are at hand (target-layers and target-embedding inits). */
  haveTargetWeights: boolean;
}

/** The candidates of an automatic search sized to the target, smallest first; empty when none fits. */
export function sizedSearch(inputs: SearchInputs): SearchCandidate[] {
  const targetParameters = parameterCount(inputs.target);
  const build = (fractions: number[]): SearchCandidate[] => {
    const found: SearchCandidate[] = [];
    for (const fraction of fractions) {
      const budget = fraction * targetParameters;
      const cut = inputs.haveTargetWeights
        ? targetLayersWithin(inputs.target, inputs.draftVocabSize, budget)
        : undefined;
      const candidate: Omit<SearchCandidate, 'parameters'> | undefined = cut
        ? {
            config: targetLayersConfig(inputs.target, cut, inputs.draftVocabSize),
            init: 'target-layers',
            shape: cut,
            fraction,
          }
        : (() => {
            const config = genericWithin(inputs.draftVocabSize, inputs.maxSeqLen, budget);
            return config && { config, init: inputs.haveTargetWeights ? 'target' : 'random', fraction };
          })();
      if (!candidate) continue;
      const parameters = parameterCount(candidate.config);
      // Two fractions can round to the same draft: keep the first.
      if (found.some((c) => JSON.stringify(c.config) === JSON.stringify(candidate.config))) continue;
      if (parameters < MAX_FRACTION * targetParameters) found.push({ ...candidate, parameters });
    }
    return found;
  };
  const candidates = build(SEARCH_FRACTIONS);
  return candidates.length ? candidates : build(FALLBACK_FRACTIONS).slice(0, 1);
}
