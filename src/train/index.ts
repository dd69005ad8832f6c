/**
 * The train stage: distillation targets → a draft checkpoint. With `select: auto` (the default) it
 * trains each candidate (model sizes × learning rates) for an equal share of the time budget,
 * ranks them by the expected speed-up of greedy speculative decoding on the held-out split, writes
 * a leaderboard and keeps the winner as `<out>/draft`. With `select: off` it trains one draft.
 *
 * Run folder:
 *   draft/                the chosen draft checkpoint (formats/draft-checkpoint.ts)
 *   manifest.json         kind `train-run`: config, inputs, winner, leaderboard
 *   leaderboard.json/.md  automatic selection only
 *   metrics.jsonl, curves.svg, state/, best.json     (select: off; per candidate under candidates/<name>/)
 */
import { cpSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { initBackend, type BackendChoice } from '../backend/index.js';
import { ConfigError, InputError } from '../errors.js';
import { readDraftCheckpoint } from '../formats/draft-checkpoint.js';
import { loadModel, readTokenizerFile, type LoadedModel } from '../formats/load-model.js';
import { checkArrowFile } from '../formats/arrow-read.js';
import { makeManifest, readManifest, writeManifest } from '../formats/manifest.js';
import { TARGETS_KIND, TARGETS_RERUN_HINT, TARGETS_SCHEMA_VERSION } from '../formats/targets-schema.js';
import { presetConfig, type LlamaConfig, type LlamaWeights } from '../model/index.js';
import type { ProgressSink } from '../progress.js';
import { checkSameTokenizer, tokenizerIdentity, type ExpectedTokenizer } from '../tokenizer/identity.js';
import { tokenizerFromVocabulary } from '../tokenizer/load.js';
import { recordedTokenizer } from '../tokenizer/recorded.js';
import type { Vocabulary } from '../tokenizer/vocabulary.js';
import { StagedDir, writeFileAtomic } from '../util/atomic.js';
import type { ModelSpec, TrainConfig } from './config.js';
import { initialWeights as initialDraftWeights, type StartFrom } from './init.js';
import { draftCandidates, draftCostModel, type MeasureDraftCost } from './candidates.js';
import { parameterCount, type InitKind } from './search.js';
import type { TargetLayersShape } from '../model/target-layers.js';
import { trainCandidate, type CandidatePlan, type CandidateResult, type TrainInputs } from './loop.js';
import { modelFreeBaselines, type ModelFreeResult } from './baselines.js';
import { HYBRID_SERVING, hybridResults, type HybridResult } from './hybrid.js';
import { checkResumeSettings, type SettingChange } from './resume.js';
import { readStateHeader } from './state.js';
import { countTokens, fullVocab, reducedVocab, vocabFromMap, type DraftVocab } from './vocab.js';

export { learningRate } from './optimizer.js';
export type { CandidateResult } from './loop.js';

export const TRAIN_RUN_KIND = 'train-run';
export const TRAIN_RUN_SCHEMA_VERSION = 1;

export interface TrainRun {
  /** Targets directory (distill output). */
  targets: string;
  /** Run folder. */
  out: string;
  train: TrainConfig;
  resolvedConfig: unknown;
  /** Continue the run in `out` from its saved state. */
  resume: boolean;
}

export interface TrainDeps {
  progress: ProgressSink;
  signal?: AbortSignal;
  /** Measures c in an engine (llama.cpp, for a GGUF target); without it c is given or estimated. */
  measureCost?: MeasureDraftCost;
}

export interface TrainSummary {
  out: string;
  /** The chosen draft checkpoint. */
  draft: string;
  backend: string;
  vocab: { target: number; draft: number; reduced: boolean; coverage: number };
  winner: CandidateResult;
  /** Every candidate, best expected speed-up first. */
  leaderboard: CandidateResult[];
  /** Prompt lookup and the suffix speculator on the same held-out split, same k. */
  modelFree: ModelFreeResult[];
  /**
   * Each candidate's draft paired with the suffix tree (automatic selection), best first: information
   * only — `outcome`, the exit status and `draft` are decided without it (no exported engine serves it).
   */
  hybrids: HybridResult[];
  /** `draft-wins`; `no-speedup`: no draft beats plain decoding; `model-free-wins`: one of them beats the best draft. */
  outcome: TrainOutcome;
  /** One plain sentence saying what to serve. */
  verdict: string;
}

export type TrainOutcome = 'draft-wins' | 'no-speedup' | 'model-free-wins';

/** Run the train stage. */
export async function runTrain(run: TrainRun, deps: TrainDeps): Promise<TrainSummary> {
  const { train } = run;
  const pacingChanges = run.resume ? checkResumedSettings(run, deps) : [];
  // Training reads tensors only asynchronously (loop, clipping, held-out evaluation, state and
  // checkpoints), so `auto` may choose WebGPU.
  const backend: BackendChoice = await initBackend(train.backend, (line) =>
    deps.progress({ kind: 'log', level: 'info', message: line }),
  );
  const targetsManifest = readManifest<{ target?: Record<string, unknown>; tokenizer?: unknown }>(
    run.targets,
    TARGETS_KIND,
    TARGETS_SCHEMA_VERSION,
    TARGETS_RERUN_HINT,
  );
  const trainFile = join(run.targets, 'train.arrow');
  const heldoutFile = join(run.targets, 'heldout.arrow');
  for (const file of [trainFile, heldoutFile]) checkArrowFile(file, TARGETS_RERUN_HINT);
  const stats = await countTokens(trainFile);
  if (stats.rows === 0) throw new InputError(`${trainFile}: no training rows`);

  // The target: its embeddings (init: target) or blocks (target-layers), tokenizer (stored with the
  // draft) and size (the search, the cost ratio). `best`: each searched candidate's best init.
  const initMode: InitKind | 'best' =
    train.init === 'auto'
      ? train.init_from
        ? existsSync(join(train.init_from, 'manifest.json'))
          ? 'draft'
          : 'pretrained'
        : train.target_model
          ? train.select === 'off'
            ? 'target'
            : 'best'
          : 'random'
      : train.init;
  if ((initMode === 'target' || initMode === 'target-layers') && !train.target_model)
    throw new ConfigError(`train.init: \`${initMode}\` needs train.target_model`);
  if (initMode === 'draft' && !train.init_from)
    throw new ConfigError('train.init: `draft` needs train.init_from (an earlier draft checkpoint)');
  if (initMode === 'pretrained' && !train.init_from)
    throw new ConfigError("train.init: `pretrained` needs train.init_from (a small model with the target's tokenizer)");
  const target = train.target_model ? loadModel(train.target_model, { tokenizer: train.tokenizer }) : undefined;
  const earlier = initMode === 'draft' ? readDraftCheckpoint(train.init_from as string) : undefined;
  // The draft's checkpoint and the run's manifest say whom the draft is for, tokenizer included.
  const targetIdentity: Record<string, unknown> = {
    ...(targetsManifest.target ?? {}),
    ...(targetsManifest.tokenizer !== undefined && { tokenizer: targetsManifest.tokenizer }),
  };
  const identityVocab = typeof targetIdentity.vocabSize === 'number' ? targetIdentity.vocabSize : undefined;
  const targetVocabSize =
    target?.weights.config.vocabSize ??
    earlier?.draftVocabulary?.targetVocabSize ??
    earlier?.weights.config.vocabSize ??
    identityVocab ??
    stats.maxId + 1;
  if (stats.maxId >= targetVocabSize)
    throw new InputError(`${trainFile}: token id ${stats.maxId} is outside the target vocabulary (${targetVocabSize})`);
  const vocabulary: Vocabulary | undefined =
    target?.vocabulary ??
    earlier?.vocabulary ??
    (train.tokenizer ? readTokenizerFile(train.tokenizer, targetVocabSize) : undefined);
  const targetsTokenizer = recordedTokenizer(
    `the targets' tokenizer (${join(run.targets, 'manifest.json')}`,
    targetsManifest.tokenizer,
  );
  if (targetsTokenizer && vocabulary) {
    let source = train.tokenizer;
    if (target?.vocabulary) source = target.vocabularySource ?? train.target_model;
    else if (earlier?.vocabulary) source = `the draft ${train.init_from}`;
    await checkSameTokenizer(
      targetsTokenizer,
      await tokenizerFromVocabulary(vocabulary),
      `the tokenizer of ${source}`,
      'HINT: train with the target model (and tokenizer) the targets were ' +
        'distilled with, or distill again with this one',
    );
  }

  // init: pretrained — a small model that must share the target's tokenizer exactly: the same ids.
  const pretrained = initMode === 'pretrained' ? loadModel(train.init_from as string) : undefined;
  if (pretrained) await checkPretrainedVocabulary(train.init_from as string, pretrained, targetsTokenizer, vocabulary);
  if (pretrained && pretrained.weights.config.vocabSize !== targetVocabSize)
    throw new InputError(
      `${train.init_from}: the pretrained model has a vocabulary of ` +
        `${pretrained.weights.config.vocabSize}, the target ${targetVocabSize}`,
    );

  // The draft vocabulary: an earlier draft's, the N most frequent target tokens, or all of them.
  const unkId = vocabulary?.unkId;
  let vocab: DraftVocab;
  if (earlier)
    vocab = earlier.draftVocabulary
      ? vocabFromMap(earlier.draftVocabulary.draftToTarget, targetVocabSize, unkId)
      : fullVocab(targetVocabSize, unkId ?? 0);
  else if (train.draft_vocab_size > 0)
    vocab = reducedVocab(stats.counts, targetVocabSize, train.draft_vocab_size, unkId);
  else vocab = fullVocab(targetVocabSize, unkId ?? 0);
  const draftVocabSize = vocab.draftToTarget.length;
  const logitElements = train.batch_size * train.seq_len * draftVocabSize;
  if (logitElements > train.max_logit_elements) {
    throw new ConfigError(
      `train: batch_size × seq_len × vocabulary = ${train.batch_size} × ` +
        `${train.seq_len} × ${draftVocabSize} = ${logitElements} logits per ` +
        `micro-batch, above train.max_logit_elements (${train.max_logit_elements})`,
      [],
      'HINT: lower batch_size (raise grad_accum to keep the tokens per step), lower seq_len, or set draft_vocab_size',
    );
  }
  let covered = 0;
  let total = 0;
  stats.counts.forEach((count, id) => {
    total += count;
    if (vocab.targetToDraft[id] >= 0) covered += count;
  });
  // An earlier draft's rows are its vocabulary: a fine-tune cannot widen or narrow it.
  if (earlier && train.draft_vocab_size > 0 && train.draft_vocab_size !== draftVocabSize) {
    const share = total ? ((100 * covered) / total).toFixed(1) : '0';
    const message =
      `train.draft_vocab_size ${train.draft_vocab_size} is not used: init: draft keeps the vocabulary of ` +
      `${train.init_from} (${draftVocabSize} tokens, ${share}% of these training tokens)`;
    deps.progress({ kind: 'log', level: 'warn', message });
  }

  const cost = draftCostModel(train, target?.weights.config, deps.measureCost);
  const inputs: TrainInputs = {
    train,
    trainFile,
    heldoutFile,
    vocab,
    topK: stats.topK,
    cost,
    vocabulary,
    target: targetIdentity,
    resolvedConfig: run.resolvedConfig,
    resume: run.resume,
  };
  const maxSeqLen = Math.max(train.seq_len, target?.weights.config.maxSeqLen ?? 0);
  const presetModel = (spec: ModelSpec): LlamaConfig =>
    presetConfig(spec.preset, draftVocabSize, maxSeqLen, {
      ...(spec.dim !== undefined && { dim: spec.dim }),
      ...(spec.hidden_dim !== undefined && { hiddenDim: spec.hidden_dim }),
      ...(spec.n_layers !== undefined && { nLayers: spec.n_layers }),
      ...(spec.n_heads !== undefined && { nHeads: spec.n_heads }),
      ...(spec.n_kv_heads !== undefined && { nKvHeads: spec.n_kv_heads }),
      ...(spec.tied_embeddings !== undefined && { tiedEmbeddings: spec.tied_embeddings }),
    });
  const startFrom = (init: InitKind, shape?: TargetLayersShape): StartFrom => {
    if (init === 'target-layers' && target && shape) return { kind: 'target-layers', target: target.weights, shape };
    if (init === 'target' && target) return { kind: 'target', targetEmbedding: target.weights.tokenEmbedding };
    // A pretrained draft is all of its own layers: the same cut, from another model.
    if (init === 'pretrained' && pretrained && shape)
      return { kind: 'target-layers', target: pretrained.weights, shape };
    return { kind: 'random' };
  };
  const candidates = draftCandidates(train, initMode, {
    target: target?.weights.config,
    draftVocabSize,
    maxSeqLen,
    earlier: earlier?.weights.config,
    pretrained: pretrained?.weights.config,
    presetModel,
  });

  // --- Candidates ------------------------------------------------------------------------------
  // Recorded in each draft's manifest (absolute), so that eval and export default to them.
  const recordedInputs = {
    targets: resolve(run.targets),
    target_model: train.target_model ? resolve(train.target_model) : undefined,
  };
  const plans: CandidatePlan[] = [];
  const count = candidates.length * (train.select === 'off' ? 1 : train.search.learning_rates.length);
  for (const candidate of candidates) {
    const { config, init, shape } = candidate;
    const initialWeights = (): LlamaWeights =>
      earlier ? earlier.weights : initialDraftWeights(config, train.seed, vocab, startFrom(init, shape));
    const facts = {
      preset: candidate.preset,
      init,
      ...(shape && { target_layers: shape.layers, target_hidden_dim: config.hiddenDim }),
      ...(target && { target_parameter_share: parameterCount(config) / parameterCount(target.weights.config) }),
      ...recordedInputs,
    };
    if (train.select === 'off') {
      plans.push({ name: 'draft', dir: run.out, model: config, lr: train.lr, initialWeights, facts });
      continue;
    }
    for (const lr of train.search.learning_rates) {
      const name = `${candidate.label}-lr${lr}`;
      const dir = join(run.out, 'candidates', name);
      plans.push({
        name,
        dir,
        model: config,
        lr,
        budgetMs: (train.time_budget_s * 1000) / count,
        initialWeights,
        facts,
      });
    }
  }
  const results: CandidateResult[] = [];
  for (const plan of plans) {
    results.push(await trainCandidate(plan, inputs, { progress: deps.progress, signal: deps.signal }));
  }
  const leaderboard = [...results].sort(
    (a, b) => b.best.expectedSpeedup - a.best.expectedSpeedup || b.best.hitRate - a.best.hitRate,
  );
  const winner = leaderboard[0];
  const draft = join(run.out, 'draft');
  const { results: modelFree, heldoutSuffix } = await modelFreeBaselines({
    trainFile,
    heldoutFile,
    draftTokens: train.search.draft_tokens,
    rows: train.eval_rows,
    verifyCost: winner.cost.verifyCostByK?.[train.search.draft_tokens - 1] ?? 1,
  });
  const hybrids =
    train.select === 'off'
      ? []
      : await hybridResults(leaderboard, {
          trainFile,
          heldoutFile,
          rows: train.eval_rows,
          draftTokens: train.search.draft_tokens,
          tokensPerBatch: train.batch_size * train.seq_len,
          heldoutSuffix,
          signal: deps.signal,
        });
  const { outcome, verdict } = judge(winner, modelFree, hybrids[0]);
  deps.progress({ kind: 'log', level: outcome === 'draft-wins' ? 'info' : 'warn', message: verdict });
  if (train.select !== 'off') {
    const staged = new StagedDir(draft);
    try {
      rmSync(staged.path, { recursive: true, force: true });
      cpSync(join(winner.dir, 'draft'), staged.path, { recursive: true });
      staged.commit();
    } catch (error) {
      staged.abort();
      throw error;
    }
    const board = {
      outcome,
      verdict,
      candidates: leaderboard.map(leaderboardRow),
      model_free: modelFree.map(modelFreeRow),
      hybrid: hybrids.map(hybridRow),
    };
    writeFileAtomic(join(run.out, 'leaderboard.json'), JSON.stringify(board, null, 2) + '\n');
    writeFileAtomic(join(run.out, 'leaderboard.md'), leaderboardMarkdown(leaderboard, modelFree, hybrids, verdict));
  }
  const summary: TrainSummary = {
    out: run.out,
    draft,
    backend: backend.description,
    vocab: {
      target: targetVocabSize,
      draft: draftVocabSize,
      reduced: vocab.reduced,
      coverage: total ? covered / total : 1,
    },
    winner,
    leaderboard,
    modelFree,
    hybrids,
    outcome,
    verdict,
  };
  writeManifest(
    run.out,
    makeManifest(TRAIN_RUN_KIND, TRAIN_RUN_SCHEMA_VERSION, {
      config: run.resolvedConfig,
      inputs: { targets: run.targets, rows: stats.rows },
      target: targetIdentity,
      vocab: summary.vocab,
      winner: leaderboardRow(winner),
      outcome,
      verdict,
      model_free: modelFree.map(modelFreeRow),
      hybrid: hybrids.map(hybridRow),
      // Pacing settings this session changed from the saved run's (the config above is this session's).
      ...(run.resume && { resumed_with_changes: pacingChanges }),
      leaderboard: leaderboard.map(leaderboardRow),
    }),
  );
  return summary;
}

/**
 * On --resume, compare this command's settings with those the saved states were written with:
 * refuse run-changing differences, report pacing ones (returned for the manifest).
 */
function checkResumedSettings(run: TrainRun, deps: TrainDeps): SettingChange[] {
  const candidatesDir = join(run.out, 'candidates');
  const candidates = existsSync(candidatesDir) ? readdirSync(candidatesDir) : [];
  const stateDirs = [join(run.out, 'state'), ...candidates.map((name) => join(candidatesDir, name, 'state'))];
  const saved = stateDirs.map(readStateHeader).find((header) => header !== undefined);
  if (!saved) return [];
  if (!saved.train) {
    const message = `${run.out}: the saved state predates recorded settings; resuming without comparing them`;
    deps.progress({ kind: 'log', level: 'warn', message });
    return [];
  }
  const pacing = checkResumeSettings(saved.train, run.train, run.out);
  for (const change of pacing) {
    const message = `resume: ${change.key} ${JSON.stringify(change.saved)} → ${JSON.stringify(change.now)}`;
    deps.progress({ kind: 'log', level: 'info', message });
  }
  return pacing;
}

/**
 * Refuse a pretrained model whose tokenizer is not the target's (exit 2, naming the first differing id
 * and both pieces): a draft proposes token ids, which must mean the same text to the target.
 */
async function checkPretrainedVocabulary(
  path: string,
  pretrained: LoadedModel,
  targetsTokenizer: ExpectedTokenizer | undefined,
  targetVocabulary: Vocabulary | undefined,
): Promise<void> {
  if (!pretrained.vocabulary)
    throw new InputError(
      `${path}: no tokenizer found with the pretrained model: its vocabulary cannot be checked against the target's`,
      'HINT: use a GGUF (it embeds its tokenizer), an HF folder with its ' +
        'tokenizer, or a llama2.c checkpoint with tokenizer.bin beside it',
    );
  const targetTokenizer = targetVocabulary ? await tokenizerFromVocabulary(targetVocabulary) : undefined;
  // The target's own tokenizer when at hand (already checked equal to the targets'): it names the first
  // differing id; else the identity the targets recorded.
  const expected: ExpectedTokenizer | undefined = targetTokenizer
    ? {
        identity: tokenizerIdentity(targetTokenizer),
        label: "the target's tokenizer",
        load: async () => targetTokenizer,
      }
    : targetsTokenizer;
  if (!expected) return; // nothing recorded to compare with: the caller still compares vocabulary sizes
  await checkSameTokenizer(
    expected,
    await tokenizerFromVocabulary(pretrained.vocabulary),
    `the tokenizer of the pretrained model ${path}`,
    "HINT: init: pretrained needs a model with exactly the target's tokenizer (as Qwen2.5-0.5B drafts Qwen2.5-7B)",
  );
}

/**
 * Whether the best draft is worth serving: faster than plain decoding and than every model-free method.
 * The hybrid never changes that answer (no engine fireopt exports to serves it, so it must not hide a
 * draft that loses to the suffix tree alone); where it beats everything else, the verdict says so.
 */
export function judge(
  winner: Pick<CandidateResult, 'name'> & { best: Pick<CandidateResult['best'], 'expectedSpeedup'> },
  modelFree: ReadonlyArray<Pick<ModelFreeResult, 'method' | 'expectedSpeedup'>>,
  bestHybrid: Pick<HybridResult, 'candidate' | 'minMatch' | 'expectedSpeedup'> | undefined,
): { outcome: TrainOutcome; verdict: string } {
  const draftSpeedup = winner.best.expectedSpeedup;
  const bestFree = [...modelFree].sort((a, b) => b.expectedSpeedup - a.expectedSpeedup)[0];
  const free = bestFree ? `${bestFree.method} (${bestFree.expectedSpeedup.toFixed(2)}x)` : '';
  const hybridBeatsAll =
    bestHybrid !== undefined &&
    bestHybrid.minMatch !== null &&
    bestHybrid.expectedSpeedup > Math.max(1, draftSpeedup, bestFree?.expectedSpeedup ?? 0);
  const hybrid = hybridBeatsAll
    ? `; an engine that runs a suffix tree beside a draft would do better still: ${bestHybrid.candidate} ` +
      `with the suffix tree (min_match ${bestHybrid.minMatch}) expects ${bestHybrid.expectedSpeedup.toFixed(2)}x`
    : '';
  if (draftSpeedup <= 1) {
    const instead = bestFree && bestFree.expectedSpeedup > 1 ? `; serve ${free} instead` : '; serve plain decoding';
    return {
      outcome: 'no-speedup',
      verdict:
        `no draft beats plain decoding: the best, ${winner.name}, expects ` +
        `${draftSpeedup.toFixed(2)}x${instead}${hybrid}`,
    };
  }
  if (bestFree && bestFree.expectedSpeedup > draftSpeedup)
    return {
      outcome: 'model-free-wins',
      verdict:
        `a model-free method beats the best draft: ${free} against ` +
        `${winner.name} (${draftSpeedup.toFixed(2)}x); serve ${bestFree.method}${hybrid}`,
    };
  return {
    outcome: 'draft-wins',
    verdict:
      `${winner.name} beats plain decoding ` +
      `(${draftSpeedup.toFixed(2)}x)${free ? ` and the best model-free method, ${free}` : ''}${hybrid}`,
  };
}

function hybridRow(h: HybridResult): Record<string, unknown> {
  return {
    name: `hybrid:${h.candidate}+suffix`,
    draft: h.candidate,
    min_match: h.minMatch,
    calibration_rows: h.calibrationRows,
    hit_rate: h.hitRate,
    acceptance_length: h.acceptanceLength,
    draft_share: h.draftShare,
    expected_speedup: h.expectedSpeedup,
    tokens: h.tokens,
    serving: HYBRID_SERVING,
  };
}

function modelFreeRow(r: ModelFreeResult): Record<string, unknown> {
  return {
    method: r.method,
    hit_rate: r.hitRate,
    acceptance_length: r.acceptanceLength,
    expected_speedup: r.expectedSpeedup,
    tokens: r.tokens,
  };
}

function leaderboardRow(r: CandidateResult): Record<string, unknown> {
  return {
    name: r.name,
    parameters: r.parameters,
    dim: r.model.dim,
    layers: r.model.nLayers,
    hidden_dim: r.model.hiddenDim,
    heads: r.model.nHeads,
    kv_heads: r.model.nKvHeads,
    init: r.init,
    lr: r.lr,
    steps: r.steps,
    best_step: r.best.step,
    hit_rate: r.best.hitRate,
    untrained_hit_rate: r.untrained.hitRate,
    acceptance_length: r.best.acceptanceLength,
    expected_speedup: r.best.expectedSpeedup,
    cost_ratio: r.cost.ratio,
    cost_source: r.cost.source,
    tokens_per_s: Math.round(r.tokensPerSec),
    stop: r.stopReason,
  };
}

function leaderboardMarkdown(
  rows: CandidateResult[],
  modelFree: ModelFreeResult[],
  hybrids: HybridResult[],
  verdict: string,
): string {
  const byName = new Map(rows.map((r) => [r.name, r]));
  const lines = [
    `**${verdict}.**`,
    '',
    '| rank | candidate | init | parameters | lr | steps | held-out hit ' +
      'rate | τ | c | expected speed-up | tokens/s | stop |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r, i) =>
        `| ${i + 1} | ${r.name} | ${r.init} | ${r.parameters} | ${r.lr} | ` +
        `${r.steps} | ${r.best.hitRate.toFixed(3)} | ` +
        `${r.best.acceptanceLength.toFixed(2)} | ${r.cost.ratio.toFixed(3)} | ` +
        `${r.best.expectedSpeedup.toFixed(2)} | ${Math.round(r.tokensPerSec)} | ${r.stopReason} |`,
    ),
    ...modelFree.map(
      (m) =>
        `| – | ${m.method} (model-free) | – | 0 | – | – | ` +
        `${m.hitRate.toFixed(3)} | ${m.acceptanceLength.toFixed(2)} | 0 | ${m.expectedSpeedup.toFixed(2)} | – | – |`,
    ),
    ...hybrids.map((h) => {
      const draft = byName.get(h.candidate) as CandidateResult;
      return (
        `| – | ${h.candidate} + suffix (hybrid, min_match ${h.minMatch ?? '∞'}) | ${draft.init} | ` +
        `${draft.parameters} | ${draft.lr} | – | ${h.hitRate.toFixed(3)} | ${h.acceptanceLength.toFixed(2)} | ` +
        `${(draft.cost.ratio * h.draftShare).toFixed(3)} | ${h.expectedSpeedup.toFixed(2)} | – | – |`
      );
    }),
    '',
    ...[...new Set(rows.map((r) => r.cost.source))].map((source) => `c: ${source}.`),
    ...(hybrids.length
      ? [
          '',
          `Hybrid rows: the suffix tree answers where it matched at least min_match tokens of context ` +
            `(chosen on ${hybrids[0].calibrationRows} train rows), the draft elsewhere; c is the draft's, ` +
            `paid only in the steps it runs. Information only: serving it ${HYBRID_SERVING}.`,
        ]
      : []),
  ];
  return lines.join('\n') + '\n';
}
