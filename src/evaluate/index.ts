/**
 * The evaluate stage: how much faster would serving be with this draft? Reads a targets directory,
 * computes each candidate's match lengths at every completion position (a draft by one batched
 * teacher-forced pass; a model-free speculator by proposing at each position), simulates greedy
 * speculative decoding for k = 1..k_max from them (see speculation/acceptance.ts), and writes
 * report.json, report.md and SVG plots.
 *
 * Rows stream through in chunks of `chunk_rows`; per-conversation and per-slice counts are kept.
 */
import { existsSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { InputError, UsageError } from '../errors.js';
import { readDraftCheckpoint } from '../formats/draft-checkpoint.js';
import { readManifest } from '../formats/manifest.js';
import { checkSameTokenizer, parseTokenizerIdentity, type ExpectedTokenizer } from '../tokenizer/identity.js';
import { tokenizerFromVocabulary } from '../tokenizer/load.js';
import { recordedTokenizer } from '../tokenizer/recorded.js';
import {
  readTargetRows,
  TARGETS_KIND,
  TARGETS_RERUN_HINT,
  TARGETS_SCHEMA_VERSION,
  type TargetRow,
} from '../formats/targets-schema.js';
import type { ProgressSink } from '../progress.js';
import {
  MAX_DRAFT_TOKENS,
  PromptLookupProposer,
  SuffixTreeProposer,
  DraftModel,
  acceptanceLength,
  acceptanceRate,
  addCounts,
  bestK,
  emptyCounts,
  matchesWithProposer,
  positionAcceptance,
  simulateGreedy,
  speedupClosedForm,
  speedupFromTau,
  speedupPerPosition,
  calibrationSplit,
  chooseMinMatch,
  hybridMatches,
  scoreDraftRows,
  suffixMatchesOfRows,
  type CompletionMatches,
  type GreedyCounts,
  type HybridTrial,
  type SamplingAcceptanceBounds,
  type SuffixMatches,
} from '../speculation/index.js';
import { StagedDir } from '../util/atomic.js';
import { sha256File } from '../util/hash.js';
import { FIREOPT_VERSION } from '../version.js';
import { HYBRID, MODEL_FREE_METHODS, type EvalConfig } from './config.js';
import { renderMarkdown } from './markdown.js';
import { renderPlots } from './plots.js';
import { measureDraftCost } from './cost.js';
import { measureSpeedup, type DraftGgufExporter } from './speedup.js';
import { SeededRandom } from '../model/random.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { TokenizerIdentity } from '../tokenizer/identity.js';
import {
  REPORT_KIND,
  REPORT_SCHEMA_VERSION,
  reportSchema,
  type CandidateReport,
  type CostMeasurement,
  type EvalReport,
  type SliceReport,
} from './report-schema.js';

export { reportSchema, type EvalReport, type CandidateReport } from './report-schema.js';
export { compareReports, type Comparison } from './compare.js';

export interface EvalInput {
  eval: EvalConfig;
  /** Recorded in report.json. */
  resolvedConfig: unknown;
}

export interface EvalDeps {
  progress: ProgressSink;
  /** Writes a draft as a GGUF for a target (`fireopt export`'s path): needed by `eval.speedup.engine: llama-cpp`. */
  exportDraftGguf?: DraftGgufExporter;
}

export interface EvalResult {
  out: string;
  report: EvalReport;
}

interface DraftCandidate {
  name: string;
  kind: 'draft';
  path: string;
  draft: DraftModel;
  tokenizer?: Tokenizer | TokenizerIdentity;
  cost: CostMeasurement | null;
  dispose(): void;
}

/** The suffix tree where its match is long enough, a draft elsewhere (speculation/hybrid.ts). */
interface HybridCandidate {
  name: string;
  kind: 'hybrid';
  draft: DraftCandidate;
  /** The suffix candidate's tree when there is one (built once), else its own. */
  tree: SuffixTreeProposer;
  minMatch: number | null;
  chosenBy: 'given' | 'calibration';
  calibrationRows: number;
  trials: HybridTrial[];
}

type Candidate =
  | DraftCandidate
  | { name: string; kind: 'prompt-lookup'; proposer: PromptLookupProposer }
  | { name: string; kind: 'suffix'; proposer: SuffixTreeProposer }
  | HybridCandidate;

interface SliceTally {
  rows: number;
  tokens: number;
  hits: number;
  steps: number[];
  /** Steps that ran the draft model, for k = 1..k_max (the hybrid's suffix-tree steps are free). */
  modelSteps: number[];
}

/** Running totals of one candidate. */
class Tally {
  readonly byK: GreedyCounts[] = Array.from({ length: MAX_DRAFT_TOKENS }, (_, i) => emptyCounts(i + 1));
  hits = 0;
  positions = 0;
  sampling = { positions: 0, lower: 0, upper: 0, unknown: 0 };
  readonly conversations = new Map<string, { rows: number; tokens: number; steps: number[] }>();
  readonly slices = new Map<string, SliceTally>();
  seconds = 0;

  add(row: TargetRow, matches: CompletionMatches): void {
    const n = row.completion_token_ids.length;
    let hits = 0;
    for (let t = 0; t < n; t++) if (matches.matchLengths[t] >= 1) hits++;
    this.hits += hits;
    this.positions += n;
    const byK = this.byK.map((total, i) => {
      const counts = simulateGreedy(matches, i + 1);
      addCounts(total, counts);
      return counts;
    });
    const steps = byK.map((counts) => counts.steps);
    const conversation = this.conversations.get(row.conversation_id) ?? {
      rows: 0,
      tokens: 0,
      steps: new Array<number>(MAX_DRAFT_TOKENS).fill(0),
    };
    conversation.rows++;
    conversation.tokens += n;
    steps.forEach((s, i) => (conversation.steps[i] += s));
    this.conversations.set(row.conversation_id, conversation);
    for (const [dimension, value] of sliceKeys(row)) {
      const key = `${dimension}\u0000${value}`;
      const slice = this.slices.get(key) ?? {
        rows: 0,
        tokens: 0,
        hits: 0,
        steps: new Array<number>(MAX_DRAFT_TOKENS).fill(0),
        modelSteps: new Array<number>(MAX_DRAFT_TOKENS).fill(0),
      };
      slice.rows++;
      slice.tokens += n;
      slice.hits += hits;
      byK.forEach((counts, i) => {
        slice.steps[i] += counts.steps;
        slice.modelSteps[i] += counts.modelSteps;
      });
      this.slices.set(key, slice);
    }
  }
}

/**
 * Slices of a row: its source file, turn index (5 and above together), finish reason, and each
 * metadata tag — the trace's own `metadata` object (OpenAI's stored-completion tags, gateway
 * labels) and a `dataset` field, as `key=value` for scalar values.
 */
function sliceKeys(row: TargetRow): Array<[SliceReport['dimension'], string]> {
  const keys: Array<[SliceReport['dimension'], string]> = [
    ['source_file', basename(row.source_file)],
    ['turn_index', row.turn_index >= 5 ? '5+' : String(row.turn_index)],
    ['finish_reason', row.finish_reason],
  ];
  for (const tag of metadataTags(row.metadata)) keys.push(['tag', tag]);
  return keys;
}

/** `key=value` tags from a targets row's metadata JSON (scalar values only, at most 16). */
export function metadataTags(metadataJson: string): string[] {
  let metadata: unknown;
  try {
    metadata = JSON.parse(metadataJson);
  } catch {
    return [];
  }
  if (metadata === null || typeof metadata !== 'object') return [];
  const record = metadata as Record<string, unknown>;
  const tags: string[] = [];
  const scalar = (value: unknown): value is string | number | boolean =>
    ['string', 'number', 'boolean'].includes(typeof value);
  if (scalar(record.dataset)) tags.push(`dataset=${record.dataset}`);
  const own = record.source_metadata;
  if (own !== null && typeof own === 'object') {
    for (const [key, value] of Object.entries(own as Record<string, unknown>))
      if (scalar(value) && key !== 'conversation_id') tags.push(`${key}=${value}`);
  }
  return tags.slice(0, 16);
}

/** Run the evaluation and write `<out>/report.json`, `report.md` and the plots (atomically). */
export async function runEval(input: EvalInput, deps: EvalDeps): Promise<EvalResult> {
  const config = input.eval;
  if (!config.model)
    throw new UsageError('eval: no model given (--model <draft dir | prompt-lookup | suffix> or eval.model)');
  if (!config.data) throw new UsageError('eval: no data given (--data <targets dir> or eval.data)');
  if (!config.out) throw new UsageError('eval: no output directory given (--out or eval.out)');
  const data = config.data;
  const dataManifest = readManifest<{ tokenizer?: unknown }>(
    data,
    TARGETS_KIND,
    TARGETS_SCHEMA_VERSION,
    TARGETS_RERUN_HINT,
  );
  const dataTokenizer = recordedTokenizer(
    `the targets' tokenizer (${join(data, 'manifest.json')}`,
    dataManifest.tokenizer,
  );
  const splitPath = join(data, `${config.split}.arrow`);
  if (!existsSync(splitPath))
    throw new InputError(
      `${splitPath}: no ${config.split} split in this targets directory`,
      `HINT: re-run \`${TARGETS_RERUN_HINT}\` with that split`,
    );

  const names = [config.model, ...config.baselines.filter((name) => name !== config.model)];
  if (config.model === HYBRID)
    throw new UsageError('eval: the hybrid pairs the suffix tree with a draft: --model <draft dir> --baseline hybrid');
  const candidates: Candidate[] = [];
  try {
    // One at a time: the first draft initialises the tfjs backend that every model lives on.
    for (const name of names.filter((n) => n !== HYBRID)) {
      const candidate = await openCandidate(name, config, deps, dataTokenizer);
      // Two drafts in folders of the same name keep distinct report names.
      const taken = new Set(candidates.map((c) => c.name));
      for (let n = 2; taken.has(candidate.name); n++) candidate.name = `${candidate.name.replace(/#\d+$/, '')}#${n}`;
      candidates.push(candidate);
    }
    const suffix = candidates.find((c) => c.kind === 'suffix');
    // Last, so that its draft's and the suffix tree's matches of a chunk exist when it is scored.
    if (names.includes(HYBRID)) candidates.push(await openHybrid(candidates, suffix?.proposer, data, config, deps));
    const hybrid = candidates.find((c) => c.kind === 'hybrid');
    const tree = suffix?.proposer ?? hybrid?.tree;
    const suffixTrainTokens = tree ? await buildSuffixTree(tree, data, config, deps) : 0;

    const tallies = candidates.map(() => new Tally());
    let rows = 0;
    let rowsWithTopK = 0;
    let tokens = 0;
    const conversations = new Set<string>();
    deps.progress({ kind: 'start', task: 'eval', unit: 'rows' });
    const evaluateChunk = async (chunk: TargetRow[]): Promise<void> => {
      // Each candidate's matches of this chunk, for the hybrid (scored last) to combine.
      const chunkMatches = new Map<Candidate, CompletionMatches[]>();
      for (const [c, candidate] of candidates.entries()) {
        const started = performance.now();
        const tally = tallies[c];
        let matches: CompletionMatches[];
        if (candidate.kind === 'draft') {
          const scored = await scoreDraft(candidate, chunk, config);
          matches = scored.matches;
          for (const bounds of scored.sampling) {
            tally.sampling.positions++;
            tally.sampling.lower += bounds.lower;
            tally.sampling.upper += bounds.upper;
            tally.sampling.unknown += bounds.unknownTargetMass;
          }
        } else if (candidate.kind === 'hybrid') {
          const draft = chunkMatches.get(candidate.draft) as CompletionMatches[];
          const shared = suffix?.proposer === candidate.tree ? chunkMatches.get(suffix) : undefined;
          const tree = (shared as SuffixMatches[] | undefined) ?? (await suffixMatchesOfRows(candidate.tree, chunk));
          matches = chunk.map((_, i) => hybridMatches(draft[i], tree[i], candidate.minMatch ?? Infinity));
        } else if (candidate.kind === 'suffix') {
          matches = await suffixMatchesOfRows(candidate.proposer, chunk);
        } else {
          matches = [];
          for (const row of chunk)
            matches.push(
              await matchesWithProposer(
                candidate.proposer,
                Array.from(row.prompt_token_ids),
                Array.from(row.completion_token_ids),
              ),
            );
        }
        chunk.forEach((row, i) => tally.add(row, matches[i]));
        chunkMatches.set(candidate, matches);
        tally.seconds += (performance.now() - started) / 1000;
      }
    };
    // The prompts the speed-up is measured on: a seeded uniform sample of the split (reservoir sampling).
    const sampled: number[][] = [];
    const sampledRows: string[] = [];
    const sampler = new SeededRandom(config.seed);
    const measuring = config.speedup.engine === 'llama-cpp';
    let chunk: TargetRow[] = [];
    for await (const row of readTargetRows(splitPath)) {
      if (config.limit && rows >= config.limit) break;
      if (row.prompt_token_ids.length === 0)
        throw new InputError(
          `${splitPath}: row ${row.id} has an empty prompt`,
          `HINT: re-run \`${TARGETS_RERUN_HINT}\``,
        );
      rows++;
      if (measuring) {
        const slot = sampled.length < config.speedup.prompts ? sampled.length : Math.floor(sampler.nextFloat() * rows);
        if (slot < config.speedup.prompts) {
          sampled[slot] = Array.from(row.prompt_token_ids);
          sampledRows[slot] = row.id;
        }
      }
      tokens += row.completion_token_ids.length;
      if (row.top_k > 0 && row.top_ids) rowsWithTopK++;
      conversations.add(row.conversation_id);
      chunk.push(row);
      if (chunk.length >= config.chunk_rows) {
        await evaluateChunk(chunk);
        chunk = [];
        deps.progress({ kind: 'advance', task: 'eval', done: rows, fields: { tokens } });
      }
    }
    if (chunk.length) await evaluateChunk(chunk);
    deps.progress({ kind: 'end', task: 'eval', done: rows });

    // The target verifies k + 1 tokens whoever proposed them: model-free methods use the first measurement's v_k.
    const firstMeasured = candidates.find((c): c is DraftCandidate => c.kind === 'draft' && c.cost !== null);
    const sharedVerifyCost = firstMeasured?.cost?.verify_cost_by_k ?? null;
    const candidateReports = candidates.map((candidate, c) =>
      candidateReport(candidate, tallies[c], config, sharedVerifyCost),
    );
    const measured = measuring
      ? await measureSpeedup(
          // The hybrid is simulated only: fireopt's llama.cpp loop runs one proposer per decoding.
          candidates.flatMap((candidate, c) =>
            candidate.kind === 'hybrid'
              ? []
              : [
                  {
                    name: candidate.name,
                    draft:
                      candidate.kind === 'draft'
                        ? { path: candidate.path, model: candidate.draft, tokenizer: candidate.tokenizer }
                        : undefined,
                    proposer: candidate.kind === 'draft' ? undefined : candidate.proposer,
                    costRatio: candidateReports[c].cost_ratio,
                    verifyCostByK: candidateReports[c].verify_cost_by_k,
                  },
                ],
          ),
          { ids: sampled, rows: sampledRows },
          config,
          {
            exportDraftGguf: deps.exportDraftGguf,
            dataTokenizer,
            log: (message) => deps.progress({ kind: 'log', level: 'info', message }),
          },
        )
      : null;
    const winner = candidateReports.reduce((best, r) => (r.best_speedup > best.best_speedup + 1e-12 ? r : best));
    const report: EvalReport = reportSchema.parse({
      kind: REPORT_KIND,
      schema_version: REPORT_SCHEMA_VERSION,
      fireopt_version: FIREOPT_VERSION,
      created_at: new Date().toISOString(),
      k_max: MAX_DRAFT_TOKENS,
      data: {
        path: resolve(data),
        split: config.split,
        rows,
        conversations: conversations.size,
        tokens,
        sha256: await sha256File(splitPath),
        rows_with_top_k: rowsWithTopK,
        suffix_train_tokens: suffixTrainTokens,
        tokenizer: dataTokenizer?.identity ?? null,
      },
      candidates: candidateReports,
      winner: winner.name,
      measured,
      config: input.resolvedConfig,
    } satisfies EvalReport);
    const staged = new StagedDir(config.out);
    try {
      writeFileSync(join(staged.path, 'report.json'), JSON.stringify(report, null, 2) + '\n');
      writeFileSync(join(staged.path, 'report.md'), renderMarkdown(report));
      for (const [file, svg] of Object.entries(renderPlots(report))) writeFileSync(join(staged.path, file), svg);
      staged.commit();
    } catch (error) {
      staged.abort();
      throw error;
    }
    return { out: config.out, report };
  } finally {
    for (const candidate of candidates) if (candidate.kind === 'draft') candidate.dispose();
  }
}

async function openCandidate(
  name: string,
  config: EvalConfig,
  deps: EvalDeps,
  dataTokenizer?: ExpectedTokenizer,
): Promise<Candidate> {
  if (name === 'prompt-lookup') {
    return {
      name,
      kind: name,
      proposer: new PromptLookupProposer({
        maxNgram: config.prompt_lookup.max_ngram,
        minNgram: config.prompt_lookup.min_ngram,
      }),
    };
  }
  if (name === 'suffix') return { name, kind: name, proposer: newSuffixTree(config) };
  if (!existsSync(name)) {
    throw new InputError(
      `${name}: no such draft checkpoint directory`,
      `--model and --baseline take a draft directory or one of: ` +
        `${MODEL_FREE_METHODS.join(', ')} (and --baseline ${HYBRID})`,
    );
  }
  const checkpoint = readDraftCheckpoint(name);
  const draftTokenizer = checkpoint.vocabulary
    ? await tokenizerFromVocabulary(checkpoint.vocabulary)
    : parseTokenizerIdentity(checkpoint.target.tokenizer);
  if (dataTokenizer && draftTokenizer) {
    const hint = 'HINT: evaluate the draft on targets of its own target model, or retrain it on these';
    await checkSameTokenizer(dataTokenizer, draftTokenizer, `the tokenizer of the draft ${name}`, hint);
  }
  const { initBackend } = await import('../backend/index.js');
  await initBackend(config.backend, (line) => deps.progress({ kind: 'log', level: 'info', message: line }));
  const draft = DraftModel.fromCheckpoint(checkpoint);
  const { model } = draft;
  let cost: CostMeasurement | null = null;
  try {
    const log = (line: string): void => deps.progress({ kind: 'log', level: 'info', message: `${name}: ${line}` });
    if (measuresCost(config)) cost = await measureDraftCost(checkpoint, config, log);
  } catch (error) {
    model.dispose();
    throw error;
  }
  return {
    name: `draft:${basename(resolve(name))}`,
    kind: 'draft',
    path: resolve(name),
    draft,
    tokenizer: draftTokenizer,
    cost,
    dispose: () => model.dispose(),
  };
}

/** Whether c is measured in llama.cpp (`llama-cpp`, or `auto` with the target GGUF known) rather than given. */
export function measuresCost(config: EvalConfig): boolean {
  const { engine, target_model: targetModel } = config.cost;
  return engine === 'llama-cpp' || (engine === 'auto' && targetModel !== undefined);
}

/** A draft's matches on rows by one batched teacher-forced pass, and its sampling-acceptance bounds. */
async function scoreDraft(
  candidate: DraftCandidate,
  rows: readonly TargetRow[],
  config: EvalConfig,
): Promise<{ matches: CompletionMatches[]; sampling: SamplingAcceptanceBounds[] }> {
  const scored = await scoreDraftRows(candidate.draft, rows, { tokensPerBatch: config.tokens_per_batch });
  return { matches: scored.map((s) => s.matches), sampling: scored.flatMap((s) => s.sampling ?? []) };
}

function newSuffixTree(config: EvalConfig): SuffixTreeProposer {
  return new SuffixTreeProposer({
    maxPattern: config.suffix.max_pattern,
    maxDepth: config.suffix.max_depth,
    minTokenProbability: config.suffix.min_token_probability,
  });
}

/**
 * The hybrid of the suffix tree and the first draft among the candidates. Its threshold is given
 * (`eval.hybrid.min_match`) or chosen on calibration rows of the train split — every tenth row, up to
 * `calibration_rows`, scored by the draft and by a tree built from the other train rows — never on the
 * split being evaluated.
 */
async function openHybrid(
  candidates: readonly Candidate[],
  suffixTree: SuffixTreeProposer | undefined,
  data: string,
  config: EvalConfig,
  deps: EvalDeps,
): Promise<HybridCandidate> {
  const draft = candidates.find((c): c is DraftCandidate => c.kind === 'draft');
  if (!draft)
    throw new UsageError('eval: the hybrid pairs the suffix tree with a draft: --model <draft dir> --baseline hybrid');
  const hybrid: HybridCandidate = {
    name: HYBRID,
    kind: 'hybrid',
    draft,
    tree: suffixTree ?? newSuffixTree(config),
    minMatch: config.hybrid.min_match ?? null,
    chosenBy: config.hybrid.min_match === undefined ? 'calibration' : 'given',
    calibrationRows: 0,
    trials: [],
  };
  if (hybrid.chosenBy === 'given') return hybrid;
  const trainPath = join(data, 'train.arrow');
  if (!existsSync(trainPath)) {
    deps.progress({
      kind: 'log',
      level: 'warn',
      message: `${trainPath} is missing: the hybrid cannot choose its threshold and runs the draft alone`,
    });
    return hybrid;
  }
  const calibrationTree = newSuffixTree(config);
  const calibration = await calibrationSplit(
    readTargetRows(trainPath),
    config.hybrid.calibration_rows,
    calibrationTree,
  );
  const drafts = (await scoreDraft(draft, calibration, config)).matches;
  const trees = await suffixMatchesOfRows(calibrationTree, calibration);
  const costRatio = draft.cost?.cost_ratio ?? config.cost_ratio;
  const verifyCost = (k: number): number => draft.cost?.verify_cost_by_k?.[k - 1] ?? 1;
  const rows = calibration.map((_, i) => ({ draft: drafts[i], suffix: trees[i] }));
  const chosen = chooseMinMatch(rows, config.suffix.max_pattern, costRatio, verifyCost);
  Object.assign(hybrid, { minMatch: chosen.minMatch, trials: chosen.trials, calibrationRows: calibration.length });
  deps.progress({
    kind: 'log',
    level: 'info',
    message:
      `hybrid: the suffix tree answers where it matched ≥ ${chosen.minMatch ?? '∞'} tokens ` +
      `(chosen on ${calibration.length} train rows), ${draft.name} elsewhere`,
  });
  return hybrid;
}

/** Index the train split's completions into the suffix tree; returns the tokens indexed. */
async function buildSuffixTree(
  tree: SuffixTreeProposer,
  data: string,
  config: EvalConfig,
  deps: EvalDeps,
): Promise<number> {
  const trainPath = join(data, 'train.arrow');
  if (!existsSync(trainPath)) {
    deps.progress({
      kind: 'log',
      level: 'warn',
      message: `${trainPath} is missing: the suffix speculator starts empty (only the request's own context)`,
    });
    return 0;
  }
  if (config.split === 'train')
    deps.progress({
      kind: 'log',
      level: 'warn',
      message: 'evaluating on the train split: the suffix speculator has seen these completions',
    });
  for await (const row of readTargetRows(trainPath)) tree.add(row.completion_token_ids);
  return tree.size.tokens;
}

function candidateReport(
  candidate: Candidate,
  tally: Tally,
  config: EvalConfig,
  sharedVerifyCost: number[] | null,
): CandidateReport {
  const draft = candidate.kind === 'draft' ? candidate : candidate.kind === 'hybrid' ? candidate.draft : null;
  const measured = draft?.cost ?? null;
  const costRatio = draft ? (measured?.cost_ratio ?? config.cost_ratio) : 0;
  const verifyCostByK = draft ? (measured?.verify_cost_by_k ?? null) : sharedVerifyCost;
  const verifyCost = (k: number): number => verifyCostByK?.[k - 1] ?? 1;
  // Only the steps that run the draft model pay k·c (all of them except the hybrid's suffix-tree steps).
  const draftShare = (steps: number, modelSteps: number): number => (steps > 0 ? modelSteps / steps : 1);
  const costAt = (counts: GreedyCounts): number => costRatio * draftShare(counts.steps, counts.modelSteps);
  const kMaxCounts = tally.byK[MAX_DRAFT_TOKENS - 1];
  const positions = positionAcceptance(kMaxCounts);
  const conditional = positions.map((p) => p.conditional);
  const byK = tally.byK.map((counts, i) => {
    const k = i + 1;
    const tau = acceptanceLength(counts);
    const alpha = acceptanceRate(counts);
    return {
      k,
      tau,
      acceptance_rate: alpha,
      speedup: speedupFromTau(tau, k, costAt(counts), verifyCost(k)),
      speedup_closed_form: alpha === null ? null : speedupClosedForm(alpha, k, costAt(counts), verifyCost(k)),
      speedup_per_position: speedupPerPosition(conditional, k, costAt(counts), verifyCost(k)),
      steps: counts.steps,
      drafted: counts.drafted,
      accepted: counts.accepted,
    };
  });
  const speedups = byK.map((entry) => entry.speedup);
  const k = bestK(speedups);
  const slices: SliceReport[] = [...tally.slices.entries()]
    .map(([key, slice]) => {
      const [dimension, value] = key.split('\u0000') as [SliceReport['dimension'], string];
      const tau = slice.steps.map((steps) => (steps > 0 ? slice.tokens / steps : 1));
      const sliceSpeedups = tau.map((t, i) =>
        speedupFromTau(t, i + 1, costRatio * draftShare(slice.steps[i], slice.modelSteps[i]), verifyCost(i + 1)),
      );
      const sliceBest = bestK(sliceSpeedups);
      return {
        dimension,
        value,
        rows: slice.rows,
        tokens: slice.tokens,
        hit_rate: slice.tokens ? slice.hits / slice.tokens : null,
        tau,
        best_k: sliceBest,
        best_speedup: sliceSpeedups[sliceBest - 1],
      };
    })
    .sort(
      (a, b) => a.dimension.localeCompare(b.dimension) || a.value.localeCompare(b.value, undefined, { numeric: true }),
    );
  const sampling = tally.sampling;
  return {
    name: candidate.name,
    kind: candidate.kind,
    path: draft?.path ?? null,
    cost_ratio: costRatio,
    cost_ratio_source: !draft ? 'model-free' : measured ? 'measured' : 'given',
    cost_measurement: measured,
    verify_cost_by_k: verifyCostByK,
    greedy_hit_rate: tally.positions ? tally.hits / tally.positions : null,
    by_k: byK,
    best_k: k,
    best_speedup: speedups[k - 1],
    position_acceptance: positions,
    sampling_acceptance: sampling.positions
      ? {
          positions: sampling.positions,
          lower: sampling.lower / sampling.positions,
          upper: sampling.upper / sampling.positions,
          unknown_target_mass: sampling.unknown / sampling.positions,
        }
      : null,
    slices,
    conversations: [...tally.conversations.entries()].map(([id, c]) => ({
      id,
      rows: c.rows,
      tokens: c.tokens,
      steps: c.steps,
    })),
    ...(candidate.kind === 'hybrid'
      ? {
          hybrid: {
            draft: candidate.draft.name,
            min_match: candidate.minMatch,
            chosen_by: candidate.chosenBy,
            calibration_rows: candidate.calibrationRows,
            trials: candidate.trials,
            draft_share_by_k: tally.byK.map((counts) => draftShare(counts.steps, counts.modelSteps)),
          },
        }
      : {}),
    throughput: {
      seconds: tally.seconds,
      tokens_per_min: tally.seconds > 0 ? (tally.positions / tally.seconds) * 60 : 0,
    },
  };
}
