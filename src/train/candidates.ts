/**
 * What the train stage trains: its candidates (the config's sizes, or a search sized to the target)
 * and how each one's expected speed-up is priced (one cost model: c measured in llama.cpp through
 * the hook the CLI passes, as eval measures it; else given, else the ratio of weights read per token).
 */
import { ConfigError } from '../errors.js';
import { headDim, type LlamaConfig, type LlamaWeights } from '../model/index.js';
import { targetLayersConfig, targetLayersProblems, type TargetLayersShape } from '../model/target-layers.js';
import type { ModelSpec, TrainConfig } from './config.js';
import { MAX_FRACTION, parameterCount, sizedSearch, type InitKind } from './search.js';

export interface Candidate {
  /** Name stem in the leaderboard (the learning rate is appended). */
  label: string;
  config: LlamaConfig;
  init: InitKind;
  /** For `target-layers`: the blocks, SwiGLU channels and heads kept. */
  shape?: TargetLayersShape;
  /** The preset it came from, when it did. */
  preset?: string;
}

export interface CandidateContext {
  /** The target's size, when the target model is given. */
  target?: LlamaConfig;
  draftVocabSize: number;
  maxSeqLen: number;
  /** The earlier draft's size (`init: draft`). */
  earlier?: LlamaConfig;
  /** The pretrained model's size (`init: pretrained`). */
  pretrained?: LlamaConfig;
  /** A model spec's config (a preset with numbers replaced). */
  presetModel: (spec: ModelSpec) => LlamaConfig;
}

const DEFAULT_MODELS: ModelSpec[] = [{ preset: 'draft-nano' }, { preset: 'draft-tiny' }];

/** The cut a `target-layers` model spec asks for; a ConfigError naming each bad key otherwise. */
function cutOf(spec: ModelSpec, where: string, target: LlamaConfig | undefined): TargetLayersShape {
  if (!target) throw new ConfigError('train.init: `target-layers` needs train.target_model');
  const problems: string[] = [];
  if (spec.dim !== undefined && spec.dim !== target.dim)
    problems.push(`${where}.dim ${spec.dim}: target-layers keeps the target's dim (${target.dim})`);
  if (spec.tied_embeddings !== undefined && spec.tied_embeddings !== target.tiedEmbeddings)
    problems.push(`${where}.tied_embeddings: target-layers keeps the target's head (tied: ${target.tiedEmbeddings})`);
  if (spec.n_layers === undefined)
    problems.push(`${where}.n_layers: missing (how many of the target's ${target.nLayers} layers to keep)`);
  const shape: TargetLayersShape = {
    layers: spec.n_layers as number,
    hiddenDim: spec.hidden_dim,
    heads: spec.n_heads,
    kvHeads: spec.n_kv_heads,
  };
  // The width checks run even when n_layers is missing, so every problem is reported at once.
  const widths = { ...shape, layers: spec.n_layers ?? target.nLayers };
  problems.push(...targetLayersProblems(target, widths).map((p) => `${where}.${p}`));
  if (problems.length)
    throw new ConfigError('train: cannot cut this draft from the target (init: target-layers)', problems);
  return shape;
}

/** A cut's leaderboard name: blocks, SwiGLU channels, and the heads kept when fewer than the target's. */
function cutLabel(config: LlamaConfig, target: LlamaConfig): string {
  const heads =
    config.nHeads === target.nHeads && config.nKvHeads === target.nKvHeads
      ? ''
      : `-q${config.nHeads}kv${config.nKvHeads}`;
  return `target-layers-L${config.nLayers}-h${config.hiddenDim}${heads}`;
}

/** One candidate from a model spec, with `init` (`target-layers` cuts it from the target). */
function fromSpec(spec: ModelSpec, where: string, init: InitKind, context: CandidateContext): Candidate {
  if (init === 'target-layers') {
    const shape = cutOf(spec, where, context.target);
    const target = context.target as LlamaConfig;
    const config = targetLayersConfig(target, shape, context.draftVocabSize);
    return { label: cutLabel(config, target), config, init, shape };
  }
  const config = context.presetModel(spec);
  return { label: `${spec.preset}-d${config.dim}-L${config.nLayers}`, config, init, preset: spec.preset };
}

/**
 * The drafts to train: an earlier draft's size (`init: draft`), `train.model` (`select: off`),
 * `train.search.models`, or a search sized to the target (search.ts). `best` gives each searched
 * candidate the best init available. No searched candidate has half the target's parameters or more.
 */
export function draftCandidates(
  train: TrainConfig,
  initMode: InitKind | 'best',
  context: CandidateContext,
): Candidate[] {
  if (context.earlier)
    return [
      { label: `earlier-d${context.earlier.dim}-L${context.earlier.nLayers}`, config: context.earlier, init: 'draft' },
    ];
  if (context.pretrained) return [pretrainedCandidate(train, context.pretrained, context)];
  const specInit: InitKind = initMode === 'best' ? 'target' : initMode;
  if (train.select === 'off') return [fromSpec(train.model, 'train.model', specInit, context)];
  const target = context.target;
  if (train.search.models || !target) {
    const candidates = (train.search.models ?? DEFAULT_MODELS).map((spec, i) =>
      fromSpec(spec, `train.search.models[${i}]`, specInit, context),
    );
    if (target) {
      const limit = MAX_FRACTION * parameterCount(target);
      const tooLarge = candidates
        .map((c, i) => ({ c, i }))
        .filter(({ c }) => parameterCount(c.config) >= limit)
        .map(
          ({ c, i }) =>
            `train.search.models[${i}] (${c.label}): ${parameterCount(c.config)} ` +
            `parameters, the target ${parameterCount(target)}`,
        );
      if (tooLarge.length)
        throw new ConfigError(
          'train: a draft of half the target or more cannot speed it up',
          tooLarge,
          'HINT: choose smaller drafts, or leave train.search.models unset to size the search to the target',
        );
    }
    return candidates;
  }
  const sized = sizedSearch({
    target,
    draftVocabSize: context.draftVocabSize,
    maxSeqLen: context.maxSeqLen,
    haveTargetWeights: initMode === 'best' || initMode === 'target-layers',
  }).filter((c) => initMode !== 'target-layers' || c.init === 'target-layers');
  if (!sized.length)
    throw new ConfigError(
      `train: no ${initMode === 'target-layers' ? 'target-layers cut' : 'draft'} ` +
        `of less than half the target's ${parameterCount(target)} parameters ` +
        `fits its vocabulary of ${context.draftVocabSize}`,
      [],
      'HINT: set train.draft_vocab_size to shrink the embedding and head, or give train.search.models',
    );
  return sized.map((c) => {
    const init: InitKind = initMode === 'best' || initMode === 'target-layers' ? c.init : initMode;
    const size = c.shape ? cutLabel(c.config, target) : `d${c.config.dim}-L${c.config.nLayers}`;
    const label = c.shape ? size : `${init}-${size}`;
    return { label, config: c.config, init, shape: c.shape };
  });
}

/** The pretrained model as the draft (its rows of the draft vocabulary); refused when it is half the target or more. */
function pretrainedCandidate(train: TrainConfig, pretrained: LlamaConfig, context: CandidateContext): Candidate {
  const config = { ...pretrained, vocabSize: context.draftVocabSize };
  const target = context.target;
  if (target && parameterCount(config) >= MAX_FRACTION * parameterCount(target))
    throw new ConfigError(
      `train.init_from ${train.init_from}: ${parameterCount(config)} parameters, half the target's ` +
        `${parameterCount(target)} or more: a draft that large cannot speed it up`,
    );
  const label = `pretrained-d${config.dim}-L${config.nLayers}`;
  return { label, config, init: 'pretrained', shape: { layers: pretrained.nLayers } };
}

/** c for one draft, and where it came from (recorded in the leaderboard). */
export interface DraftCost {
  ratio: number;
  /** `given`, `measured in llama.cpp …`, `weights read per token …` or `assumed`. */
  source: string;
  /** The target's cost of verifying k + 1 tokens, relative to one decode step, by k − 1 (measured only). */
  verifyCostByK?: number[];
}

/** Measures c for a draft in an engine (the CLI passes eval's llama.cpp measurement, with `eval.cost` settings). */
export type MeasureDraftCost = (weights: LlamaWeights) => Promise<DraftCost>;

/** Weights one decode step reads: every block, and the head (one embedding row is negligible). */
function weightsPerToken(config: LlamaConfig): number {
  const layer =
    config.dim * headDim(config) * (2 * config.nHeads + 2 * config.nKvHeads) + 3 * config.dim * config.hiddenDim;
  return config.nLayers * layer + config.vocabSize * config.dim;
}

/**
 * The one cost model of selection: `search.cost_ratio` when given; else c measured (per draft
 * shape, once: c depends on the shape, not the weights); else the ratio of weights read per token
 * when the target's size is known; else 0.05.
 */
export function draftCostModel(
  train: TrainConfig,
  target: LlamaConfig | undefined,
  measure: MeasureDraftCost | undefined,
): (weights: LlamaWeights) => Promise<DraftCost> {
  const given = train.search.cost_ratio;
  const measured = new Map<string, Promise<DraftCost>>();
  return async (weights) => {
    if (given !== undefined) return { ratio: given, source: 'given (train.search.cost_ratio)' };
    if (measure) {
      const key = JSON.stringify(weights.config);
      if (!measured.has(key)) measured.set(key, measure(weights));
      return measured.get(key) as Promise<DraftCost>;
    }
    if (target)
      return {
        ratio: weightsPerToken(weights.config) / weightsPerToken(target),
        source: 'weights read per token, draft / target (not measured: the target is not a GGUF)',
      };
    return { ratio: 0.05, source: 'assumed (no target model)' };
  };
}
