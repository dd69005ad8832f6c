/**
 * `fireopt run`: the whole loop over one run directory, one numbered folder per stage:
 *
 *   deployed/     a copy of the deployed draft, read fresh from promotion.release on every run
 *   1-ingest/     data/ = the traces dataset                         (src/ingest)
 *   2-distill/    data/ = the targets                                (src/distill)
 *   3-drift/      data/ = the deployed draft's report on fresh held-out data; is retraining due?
 *   4-train/      data/ = the train run folder, data/draft the new draft   (src/train)
 *   5-eval/       data/ = report.json/md and plots: new vs deployed vs baselines   (src/evaluate)
 *   6-export/     data/ = serving artifacts                          (export.ts)
 *   7-promote/    decision.json; promotion.json when the new draft was promoted
 *
 * This module is the one place that composes stages (each through its library function and its
 * files on disk). Every stage folder has a `stage.json` whose fingerprint hashes the stage's config
 * and the content of its inputs; a stage whose fingerprint is unchanged and whose output exists is
 * skipped, so a rerun after a failure resumes at that stage. The release is an input read on every
 * run, never cached: a run in the same directory after a promotion compares against that promotion.
 * A rerun with the same traces, config and model files, the release still as the last run left it,
 * does nothing and says so (`unchanged`).
 */
import { cpSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FireoptConfig } from '../config/schema.js';
import { FailureWithSummary, FireoptError, UsageError, describeError } from '../errors.js';
import { MODEL_FREE_METHODS } from '../evaluate/config.js';
import { compareReports, readReport, type Comparison } from '../evaluate/compare.js';
import type { EvalReport } from '../evaluate/report-schema.js';
import { StagedDir, writeFileAtomic } from '../util/atomic.js';
import { FIREOPT_VERSION } from '../version.js';
import { acceptanceOf, measureDrift, recordedAcceptance, type Acceptance, type DriftMeasurement } from './drift.js';
import { exportDraft } from './export.js';
import { hashJson, hashPath, readStageRecord, writeStageRecord, type StageRecord } from './records.js';
import { applyRetention } from './retention.js';
import { distillStage, evalStage, ingestStage, type StageDeps } from './stages.js';

export { measureDrift, recordedAcceptance, type Acceptance, type DriftMeasurement } from './drift.js';
export { runDrift, type DriftResult } from './drift-run.js';

/** How a finished run ended, for a CI job. */
export type FinishedOutcome = 'promoted' | 'not-promoted' | 'not-needed' | 'unchanged';
/** How a run ended: `failed` runs exit 1 (or 2 for bad usage, config or input). */
export type PipelineOutcome = FinishedOutcome | 'failed';

/** Exit codes of a finished `fireopt run` (failures are 1, bad usage/config/input 2, as everywhere). */
export const OUTCOME_EXIT_CODES = {
  promoted: 0,
  'not-promoted': 3,
  'not-needed': 4,
  unchanged: 5,
} as const satisfies Record<FinishedOutcome, number>;

export const RUN_RECORD_KIND = 'pipeline-run';
export const RUN_RECORD_SCHEMA_VERSION = 2;

export const PROMOTION_KIND = 'promotion';
export const PROMOTION_SCHEMA_VERSION = 1;

export const STAGES = ['1-ingest', '2-distill', '3-drift', '4-train', '5-eval', '6-export', '7-promote'] as const;
export type StageName = (typeof STAGES)[number];

export interface StageReport {
  stage: StageName;
  /** `ran` this time, `skipped` (unchanged since a finished run), or `not-run` (the run ended before it). */
  status: 'ran' | 'skipped' | 'not-run';
  seconds: number;
  summary: Record<string, unknown>;
}

/** `promotion.json`: what was promoted, when, and the acceptance recorded for later drift checks. */
export interface PromotionRecord {
  kind: typeof PROMOTION_KIND;
  schema_version: number;
  fireopt_version: string;
  promoted_at: string;
  run_dir: string;
  draft_sha256: string;
  previous_draft_sha256: string | null;
  /** The promoted draft on the held-out data of the run that promoted it. */
  acceptance: Acceptance;
  data: { sha256: string; rows: number; tokens: number };
  comparison: Comparison | null;
  reason: string;
}

/** The deployed draft as this run read it from the release. */
export interface DeployedState {
  release: string | null;
  /** null: nothing deployed yet. */
  draft_sha256: string | null;
  promoted_at: string | null;
}

export interface PipelineResult {
  outcome: PipelineOutcome;
  exit_code: number;
  reason: string;
  dir: string;
  stages: StageReport[];
  deployed: DeployedState | null;
  drift: DriftMeasurement | null;
  comparison: Comparison | null;
  /** When the gate refused the draft for being slower than this: what to serve instead. */
  serve_instead: ServeInstead | null;
  /** The new draft's candidate line and the others in the eval report. */
  candidates: Array<{ name: string; hit_rate: number | null; tau: number; best_k: number; speedup: number }>;
  report: string | null;
  export: string | null;
  release: string | null;
  retention: { deleted: string[] } | null;
  /** Where and why the run failed (outcome `failed`). */
  failure: { stage: StageName | null; code: string; message: string; hint: string | null } | null;
}

/** `<run dir>/run.json`. */
interface RunRecord extends PipelineResult {
  kind: typeof RUN_RECORD_KIND;
  schema_version: number;
  fireopt_version: string;
  finished_at: string;
  /** Hash of the traces, the config and the model files: equal means nothing changed. */
  run_fingerprint: string | null;
  /** The release draft's hash after the run. */
  release_sha256: string | null;
}

interface StageContext {
  runDir: string;
  reports: StageReport[];
  /** The stage running now (named in a failure). */
  current: StageName | null;
  deployed?: DeployedState;
}

/** Run `stage` unless its record says it finished with the same fingerprint and its output is there. */
async function runStage(
  context: StageContext,
  stage: StageName,
  inputs: Record<string, unknown>,
  output: string | null,
  body: () => Promise<Record<string, unknown>>,
  progress: StageDeps['progress'],
): Promise<StageRecord> {
  const stageDir = join(context.runDir, stage);
  context.current = stage;
  const fingerprint = hashJson({ stage, inputs });
  const previous = readStageRecord(stageDir);
  if (previous?.status === 'done' && previous.fingerprint === fingerprint && (output === null || existsSync(output))) {
    progress({ kind: 'log', level: 'info', message: `${stage}: unchanged, skipped` });
    context.reports.push({ stage, status: 'skipped', seconds: 0, summary: previous.summary });
    return previous;
  }
  const rerun = previous?.status === 'failed' ? 'resuming after a failure' : 'inputs changed, running';
  progress({ kind: 'log', level: 'info', message: `${stage}: ${previous ? rerun : 'running'}` });
  const startedAt = new Date();
  try {
    const summary = await body();
    const outputSha = output !== null && existsSync(output) ? await hashPath(output) : null;
    const finishedAt = new Date();
    const seconds = (finishedAt.getTime() - startedAt.getTime()) / 1000;
    const record = writeStageRecord(stageDir, {
      stage,
      status: 'done',
      fingerprint,
      inputs,
      output_sha256: outputSha,
      started_at: startedAt.toISOString(),
      finished_at: finishedAt.toISOString(),
      seconds,
      summary,
    });
    context.reports.push({ stage, status: 'ran', seconds, summary });
    return record;
  } catch (error) {
    const finishedAt = new Date();
    writeStageRecord(stageDir, {
      stage,
      status: 'failed',
      fingerprint,
      inputs,
      output_sha256: null,
      started_at: startedAt.toISOString(),
      finished_at: finishedAt.toISOString(),
      seconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
      summary: {},
      error: { code: error instanceof FireoptError ? error.code : 'E_INTERNAL', message: describeError(error) },
    });
    throw error;
  }
}

/** The settings of a config section that decide a stage's output (paths the pipeline sets are left out). */
function contentOf<T extends object>(section: T, ...pathKeys: Array<keyof T>): Partial<T> {
  const copy: Partial<T> = { ...section };
  for (const key of pathKeys) delete copy[key];
  return copy;
}

async function hashOptional(path: string | undefined): Promise<string | null> {
  return path && existsSync(path) ? hashPath(path) : null;
}

/** Run the whole loop. Resolves with the outcome; on failure writes run.json and throws a FailureWithSummary. */
export async function runPipeline(config: FireoptConfig, deps: StageDeps): Promise<PipelineResult> {
  if (!config.run.dir) throw new UsageError('run: no run directory (run.dir or --dir)');
  const runDir = resolve(config.run.dir);
  const context: StageContext = { runDir, reports: [], current: null };
  try {
    return await runLoop(config, deps, context);
  } catch (error) {
    const failed = failedResult(context, config, error);
    writeRunRecord(runDir, failed, null, null);
    throw new FailureWithSummary(error, { ...failed });
  }
}

function failedResult(context: StageContext, config: FireoptConfig, error: unknown): PipelineResult {
  const fireoptError = error instanceof FireoptError ? error : undefined;
  return {
    outcome: 'failed',
    exit_code: fireoptError?.exitCode ?? 1,
    reason: describeError(error),
    dir: context.runDir,
    stages: completeStages(context.reports),
    deployed: context.deployed ?? null,
    drift: null,
    comparison: null,
    serve_instead: null,
    candidates: [],
    report: null,
    export: null,
    release: config.promotion.release ? resolve(config.promotion.release) : null,
    retention: null,
    failure: {
      stage: context.current,
      code: fireoptError?.code ?? 'E_INTERNAL',
      message: describeError(error),
      hint: fireoptError?.hint ?? null,
    },
  };
}

/** Every stage in order, those the run never reached marked `not-run`. */
function completeStages(reports: StageReport[]): StageReport[] {
  const seen = new Set(reports.map((r) => r.stage));
  const all = [
    ...reports,
    ...STAGES.filter((s) => !seen.has(s)).map((stage) => ({
      stage,
      status: 'not-run' as const,
      seconds: 0,
      summary: {},
    })),
  ];
  return all.sort((a, b) => STAGES.indexOf(a.stage) - STAGES.indexOf(b.stage));
}

/** `run.json`: the result, plus what the unchanged-rerun check compares (run fingerprint, release after). */
function writeRunRecord(
  runDir: string,
  result: PipelineResult,
  fingerprint: string | null,
  releaseSha: string | null,
): void {
  const record: RunRecord = {
    kind: RUN_RECORD_KIND,
    schema_version: RUN_RECORD_SCHEMA_VERSION,
    fireopt_version: FIREOPT_VERSION,
    finished_at: new Date().toISOString(),
    run_fingerprint: fingerprint,
    release_sha256: releaseSha,
    ...result,
  };
  writeFileAtomic(join(runDir, 'run.json'), JSON.stringify(record, null, 2) + '\n');
}

function readRunRecord(runDir: string): RunRecord | undefined {
  const path = join(runDir, 'run.json');
  if (!existsSync(path)) return undefined;
  try {
    const record = JSON.parse(readFileSync(path, 'utf8')) as RunRecord;
    return record.kind === RUN_RECORD_KIND && record.schema_version === RUN_RECORD_SCHEMA_VERSION ? record : undefined;
  } catch {
    return undefined; // a torn record: the run is not known to have finished
  }
}

/**
 * The deployed draft, read fresh from the release on every run (it is an input: another run or a
 * person may have replaced it) and copied into `<run>/deployed/` so this run evaluates one fixed copy.
 */
async function snapshotDeployed(runDir: string, release: string | null): Promise<DeployedState & { draftDir: string }> {
  const snapshot = join(runDir, 'deployed');
  const draftDir = join(snapshot, 'deployed-draft');
  const releaseDraft = release ? join(release, 'draft') : null;
  if (!release || !releaseDraft || !existsSync(releaseDraft)) {
    rmSync(snapshot, { recursive: true, force: true });
    return { release, draft_sha256: null, promoted_at: null, draftDir };
  }
  const staged = new StagedDir(snapshot);
  try {
    cpSync(releaseDraft, join(staged.path, 'deployed-draft'), { recursive: true });
    const promotionFile = join(release, 'promotion.json');
    if (existsSync(promotionFile)) cpSync(promotionFile, join(staged.path, 'promotion.json'));
    staged.commit();
  } catch (error) {
    staged.abort();
    throw error;
  }
  const promotionFile = join(snapshot, 'promotion.json');
  const promotedAt = existsSync(promotionFile) ? readPromotion(promotionFile).promoted_at : null;
  return { release, draft_sha256: await hashPath(draftDir), promoted_at: promotedAt, draftDir };
}

/** The GGUF the target runs as, when it is one: the cost ratio c is then measured against it in llama.cpp. */
export function targetGguf(config: FireoptConfig): string | undefined {
  if (config.target?.engine === 'llama-cpp') return config.target.model;
  return config.train.target_model?.toLowerCase().endsWith('.gguf') ? config.train.target_model : undefined;
}

/**
 * The one cost model of a run: c measured in llama.cpp against the target GGUF when there is one
 * (eval.cost.engine auto or llama-cpp), else the stated eval.cost_ratio (and `given` states it even
 * with a GGUF target). Training's selection is given the same stated c, so the leaderboard, the
 * report and the gate agree.
 */
export function pipelineCostConfig(config: FireoptConfig): FireoptConfig {
  const { engine } = config.eval.cost;
  const targetModel = config.eval.cost.target_model ?? targetGguf(config);
  const measured = engine === 'llama-cpp' || (engine === 'auto' && targetModel !== undefined);
  const cost = measured
    ? { ...config.eval.cost, engine: 'llama-cpp' as const, target_model: targetModel }
    : { ...config.eval.cost, engine: 'given' as const };
  const search = {
    ...config.train.search,
    cost_ratio: config.train.search.cost_ratio ?? (measured ? undefined : config.eval.cost_ratio),
  };
  return { ...config, eval: { ...config.eval, cost }, train: { ...config.train, search } };
}

async function runLoop(givenConfig: FireoptConfig, deps: StageDeps, context: StageContext): Promise<PipelineResult> {
  const config = pipelineCostConfig(givenConfig);
  const { runDir } = context;
  const { progress } = deps;
  const stageData = (stage: StageName): string => join(runDir, stage, 'data');
  const release = config.promotion.release ? resolve(config.promotion.release) : null;
  const releaseSha = await hashOptional(release ? join(release, 'draft') : undefined);

  // 1: ingest the fresh traces.
  const { resolveInputs } = await import('../ingest/sources.js');
  if (config.ingest.inputs.length === 0)
    throw new UsageError('run: no traces (ingest.inputs)', 'HINT: set ingest.inputs to the fresh trace files or globs');
  if (config.ingest.inputs.includes('-')) throw new UsageError('run: traces cannot come from stdin (`-`); give files');
  const traceFiles = await resolveInputs(config.ingest.inputs);
  const traceHashes = await Promise.all(traceFiles.map(async (path) => ({ path, sha256: await hashPath(path) })));
  const target = config.target;
  const targetSha = target?.engine === 'llama-cpp' ? await hashOptional(target.model) : null;
  const tokenizerSha = config.distill.tokenizer !== 'auto' ? await hashOptional(config.distill.tokenizer) : null;
  const trainTargetSha = await hashOptional(config.train.target_model);
  const trainTokenizerSha = await hashOptional(config.train.tokenizer);
  const exportTarget = config.export.target ?? targetGguf(config) ?? config.train.target_model;
  const exportTargetSha = await hashOptional(exportTarget);

  // Nothing changed since the last finished run (same traces, config and model files, and the release
  // still holds what that run left there): say so, with its own exit code, and touch nothing.
  const runFingerprint = hashJson({
    traces: traceHashes.map((t) => t.sha256),
    config: { ...givenConfig, run: { ...givenConfig.run, dir: undefined } },
    files: [
      targetSha,
      tokenizerSha,
      trainTargetSha,
      trainTokenizerSha,
      exportTargetSha,
      await hashOptional(config.train.init_from),
    ],
    fireopt_version: FIREOPT_VERSION,
  });
  const last = readRunRecord(runDir);
  const lastFinished = last !== undefined && last.outcome !== 'failed';
  if (lastFinished && last.run_fingerprint === runFingerprint && last.release_sha256 === releaseSha) {
    const result: PipelineResult = {
      ...last,
      outcome: 'unchanged',
      exit_code: OUTCOME_EXIT_CODES.unchanged,
      retention: null,
      reason: `nothing changed since the run that finished at ${last.finished_at} (${last.outcome}: ${last.reason})`,
      stages: last.stages.map((stage) => ({
        ...stage,
        status: stage.status === 'not-run' ? 'not-run' : 'skipped',
        seconds: 0,
      })),
    };
    progress({ kind: 'log', level: 'info', message: result.reason });
    writeRunRecord(runDir, result, runFingerprint, releaseSha);
    return result;
  }

  // The deployed draft: what the release holds now, whatever earlier runs saw.
  const deployedState = await snapshotDeployed(runDir, release);
  const { draftDir: deployedDraft, ...deployedInfo } = deployedState;
  context.deployed = deployedInfo;
  const deployedSha = deployedInfo.draft_sha256;
  const deployed = deployedSha !== null;
  progress({
    kind: 'log',
    level: 'info',
    message: deployed ? `deployed: ${release} (draft sha256 ${deployedSha.slice(0, 12)}…)` : 'deployed: nothing yet',
  });

  const ingest = await runStage(
    context,
    '1-ingest',
    { traces: traceHashes.map((t) => t.sha256), ingest: contentOf(config.ingest, 'inputs', 'out') },
    stageData('1-ingest'),
    () => ingestStage(config, traceFiles, stageData('1-ingest'), deps),
    progress,
  );

  // 2: distill with the target.
  const targets = stageData('2-distill');
  const distill = await runStage(
    context,
    '2-distill',
    {
      dataset: ingest.output_sha256,
      distill: contentOf(config.distill, 'dataset', 'out', 'concurrency', 'chunk_rows', 'max_failures'),
      target: target ?? null,
      target_sha256: targetSha,
      tokenizer_sha256: tokenizerSha,
    },
    targets,
    // The previous night's targets (still in place until this stage commits) give the rows whose
    // traces are unchanged; only new rows go to the target, and the result equals a full distill.
    () =>
      distillStage(config, stageData('1-ingest'), targets, deps, { reuse: existsSync(targets) ? targets : undefined }),
    progress,
  );
  const distillSha = distill.output_sha256;
  const evalContent = contentOf(
    config.eval,
    'model',
    'data',
    'out',
    'baselines',
    'margin',
    'bootstrap_samples',
    'seed',
  );

  // 3: drift: the deployed draft on the fresh held-out data against its recorded acceptance.
  let drift: DriftMeasurement | null = null;
  const driftRecord = await runStage(
    context,
    '3-drift',
    { deployed: deployedSha, targets: distillSha, eval: evalContent, drift: config.drift },
    deployed ? stageData('3-drift') : null,
    async () => {
      if (!deployed) return { measured: false, retrain: true, reason: 'nothing deployed yet' };
      const recorded = recordedAcceptance(deployedDraft, join(runDir, 'deployed', 'promotion.json'));
      const { report, reportPath } = await evalStage(
        config,
        { model: deployedDraft, data: targets, out: stageData('3-drift'), baselines: [] },
        deps,
      );
      const measurement = measureDrift(report, reportPath, recorded, config.drift);
      return { measured: true, retrain: measurement.retrain, reason: measurement.reason, drift: measurement };
    },
    progress,
  );
  drift = (driftRecord.summary.drift as DriftMeasurement | undefined) ?? null;
  progress({ kind: 'log', level: 'info', message: `drift: ${String(driftRecord.summary.reason)}` });

  const finish = async (
    outcome: FinishedOutcome,
    reason: string,
    extra: Partial<PipelineResult>,
  ): Promise<PipelineResult> => {
    context.current = null;
    const retention = config.retention.enabled ? applyRetention(runDir, traceFiles, config.retention, progress) : null;
    const result: PipelineResult = {
      outcome,
      exit_code: OUTCOME_EXIT_CODES[outcome],
      reason,
      dir: runDir,
      stages: completeStages(context.reports),
      deployed: deployedInfo,
      drift,
      comparison: null,
      serve_instead: null,
      candidates: [],
      report: null,
      export: null,
      release,
      retention,
      failure: null,
      ...extra,
    };
    writeRunRecord(runDir, result, runFingerprint, await hashOptional(release ? join(release, 'draft') : undefined));
    return result;
  };

  if (driftRecord.summary.retrain !== true && !config.run.force) {
    return finish('not-needed', `retraining not needed: ${String(driftRecord.summary.reason)}`, {});
  }

  // 4: train the new draft (automatic selection unless train.select: off).
  const initFrom = config.promotion.incremental && deployed ? deployedDraft : config.train.init_from;
  const trainSettings = {
    ...config.train,
    init_from: initFrom,
    ...(config.promotion.incremental && deployed && { init: 'draft' as const }),
  };
  const trainOut = stageData('4-train');
  const newDraft = join(trainOut, 'draft');
  const train = await runStage(
    context,
    '4-train',
    {
      targets: distillSha,
      train: contentOf(trainSettings, 'targets', 'out', 'init_from'),
      init_from: initFrom ? (initFrom === deployedDraft ? deployedSha : await hashOptional(initFrom)) : null,
      target_model_sha256: trainTargetSha,
      tokenizer_sha256: trainTokenizerSha,
    },
    newDraft,
    async () => {
      // A half-finished earlier attempt is discarded: the stage starts over from its inputs.
      rmSync(trainOut, { recursive: true, force: true });
      const { runTrain } = await import('../train/index.js');
      // Selection measures c as the eval stage will (one cost model: the leaderboard, the report and the gate agree).
      const { draftCostMeter } = await import('../evaluate/train-cost.js');
      const log = (message: string): void => progress({ kind: 'log', level: 'info', message });
      const summary = await runTrain(
        { targets, out: trainOut, train: trainSettings, resolvedConfig: config, resume: false },
        { progress, signal: deps.signal, measureCost: draftCostMeter(config.eval, log) },
      );
      const w = summary.winner;
      return {
        draft: summary.draft,
        winner: w.name,
        parameters: w.parameters,
        steps: w.steps,
        hit_rate: w.best.hitRate,
        acceptance_length: w.best.acceptanceLength,
        expected_speedup: w.best.expectedSpeedup,
        candidates: summary.leaderboard.length,
        cost_ratio: w.cost.ratio,
        cost_source: w.cost.source,
        selection_outcome: summary.outcome,
        selection_verdict: summary.verdict,
        backend: summary.backend,
      };
    },
    progress,
  );
  const newDraftSha = train.output_sha256;

  // 5: evaluate the new draft beside the deployed one and the baselines, on the same held-out data.
  // The model-free methods are always measured: the gate never promotes a draft slower than one of them.
  const baselines = [
    ...new Set([...(deployed ? [deployedDraft] : []), ...config.eval.baselines, ...MODEL_FREE_METHODS]),
  ];
  const firstBaseline = config.promotion.first_must_beat;
  if (!deployed && firstBaseline !== 'none' && !baselines.includes(firstBaseline)) baselines.push(firstBaseline);
  const evalOut = stageData('5-eval');
  await runStage(
    context,
    '5-eval',
    {
      draft: newDraftSha,
      deployed: deployedSha,
      targets: distillSha,
      eval: evalContent,
      baselines: baselines.map((b) => (b === deployedDraft ? `deployed:${deployedSha}` : b)),
    },
    evalOut,
    async () => {
      const { report } = await evalStage(config, { model: newDraft, data: targets, out: evalOut, baselines }, deps);
      return {
        winner: report.winner,
        rows: report.data.rows,
        tokens: report.data.tokens,
        candidates: candidateLines(report),
      };
    },
    progress,
  );
  const reportPath = join(evalOut, 'report.json');
  const report = readReport(reportPath);

  // 6: export the new draft's serving artifacts.
  const exportOut = stageData('6-export');
  await runStage(
    context,
    '6-export',
    {
      draft: newDraftSha,
      name: config.name,
      export: contentOf(config.export, 'model', 'out'),
      target_sha256: exportTargetSha,
    },
    exportOut,
    async () => {
      const outcome = await exportDraft(config, newDraft, exportOut, progress);
      return { files: outcome.files, notes: outcome.notes };
    },
    progress,
  );

  // 7: the promotion gate.
  const promoteDir = join(runDir, '7-promote');
  const promote = await runStage(
    context,
    '7-promote',
    {
      report: (readStageRecord(join(runDir, '5-eval')) as StageRecord).output_sha256,
      export: (readStageRecord(join(runDir, '6-export')) as StageRecord).output_sha256,
      deployed: deployedSha,
      release,
      margin: config.eval.margin,
      samples: config.eval.bootstrap_samples,
      seed: config.eval.seed,
      first_must_beat: firstBaseline,
      beat_model_free: config.promotion.beat_model_free,
    },
    null,
    async () => {
      const decision = gate(report, reportPath, deployed, firstBaseline, config);
      writeFileAtomic(join(promoteDir, 'decision.json'), JSON.stringify(decision, null, 2) + '\n');
      const kept = {
        promote: false,
        comparison: decision.comparison,
        serve_instead: decision.serve_instead,
        promoted_sha256: null,
      };
      if (!decision.promote) return { ...kept, reason: decision.reason };
      if (!release)
        return { ...kept, reason: `${decision.reason}; but promotion.release is not set, so nothing was copied` };
      const promotion: PromotionRecord = {
        kind: PROMOTION_KIND,
        schema_version: PROMOTION_SCHEMA_VERSION,
        fireopt_version: FIREOPT_VERSION,
        promoted_at: new Date().toISOString(),
        run_dir: runDir,
        draft_sha256: newDraftSha as string,
        previous_draft_sha256: deployedSha,
        acceptance: acceptanceOf(report.candidates[0], reportPath),
        data: { sha256: report.data.sha256, rows: report.data.rows, tokens: report.data.tokens },
        comparison: decision.comparison,
        reason: decision.reason,
      };
      publishRelease(release, newDraft, exportOut, evalOut, promotion);
      writeFileAtomic(join(promoteDir, 'promotion.json'), JSON.stringify(promotion, null, 2) + '\n');
      return {
        promote: true,
        reason: decision.reason,
        comparison: decision.comparison,
        serve_instead: null,
        promoted_sha256: newDraftSha,
      };
    },
    progress,
  );

  const summary = promote.summary as Pick<GateDecision, 'promote' | 'reason' | 'comparison' | 'serve_instead'>;
  return finish(summary.promote ? 'promoted' : 'not-promoted', summary.reason, {
    comparison: summary.comparison,
    serve_instead: summary.serve_instead ?? null,
    candidates: candidateLines(report),
    report: reportPath,
    export: exportOut,
  });
}

function candidateLines(report: EvalReport): PipelineResult['candidates'] {
  return report.candidates.map((c) => ({
    name: c.name,
    hit_rate: c.greedy_hit_rate,
    tau: c.by_k[c.best_k - 1].tau,
    best_k: c.best_k,
    speedup: c.best_speedup,
  }));
}

/** What to serve instead of a draft the gate refused: a model-free method, or no speculation at all. */
export type ServeInstead = (typeof MODEL_FREE_METHODS)[number] | 'no-speculation';

interface GateDecision {
  promote: boolean;
  reason: string;
  comparison: Comparison | null;
  /** Set when the new draft is slower than serving without it or than a model-free method. */
  serve_instead: ServeInstead | null;
}

/**
 * Promote the new draft (the report's first candidate) only if its expected speed-up is at least 1×
 * and at least every model-free method's (all measured with the run's one cost model), and it beats
 * the deployed draft by the margin (or, with nothing deployed, `first_must_beat`).
 */
function gate(
  report: EvalReport,
  reportPath: string,
  deployed: boolean,
  firstMustBeat: string,
  config: FireoptConfig,
): GateDecision {
  const candidate = report.candidates[0];
  const speedup = (x: number): string => `${x.toFixed(2)}×`;
  const cost = `c = ${candidate.cost_ratio.toFixed(3)} ${candidate.cost_ratio_source}`;
  const modelFree = config.promotion.beat_model_free
    ? report.candidates
        .filter((c) => (MODEL_FREE_METHODS as readonly string[]).includes(c.kind))
        .sort((a, b) => b.best_speedup - a.best_speedup)[0]
    : undefined;
  // The best alternative to this draft: the fastest model-free method, or plain decoding (1×) when
  // that is faster still.
  if (modelFree && modelFree.best_speedup > candidate.best_speedup && modelFree.best_speedup >= 1) {
    const reason =
      `the new draft's expected speed-up ${speedup(candidate.best_speedup)} is below ` +
      `${modelFree.name}'s ${speedup(modelFree.best_speedup)} (${cost}): serve ${modelFree.name} instead`;
    return { promote: false, reason, comparison: null, serve_instead: modelFree.kind as ServeInstead };
  }
  if (candidate.best_speedup < 1) {
    const reason =
      `the new draft's expected speed-up ${speedup(candidate.best_speedup)} is below 1× (${cost}): ` +
      'decoding without speculation is faster; serve without a draft';
    return { promote: false, reason, comparison: null, serve_instead: 'no-speculation' };
  }
  const against = deployed
    ? report.candidates[1]?.name
    : firstMustBeat !== 'none'
      ? report.candidates.find((c) => c.kind === firstMustBeat)?.name
      : undefined;
  if (!against)
    return {
      promote: true,
      reason: 'nothing deployed yet: the first draft is promoted',
      comparison: null,
      serve_instead: null,
    };
  // compare's own logic, on one report holding both candidates: the same data by construction.
  const comparison = compareReports(report, reportPath, report, reportPath, {
    margin: config.eval.margin,
    samples: config.eval.bootstrap_samples,
    seed: config.eval.seed,
    candidateA: against,
    candidateB: candidate.name,
  });
  const opponent = deployed ? 'the deployed draft' : against;
  const reason = `${comparison.promote ? 'wins' : 'does not win'} against ${opponent}: ${comparison.reason}`;
  return { promote: comparison.promote, reason, comparison, serve_instead: null };
}

/** Replace the release folder atomically: draft/, export/, report.json + report.md, promotion.json. */
function publishRelease(
  release: string,
  draft: string,
  exportDir: string,
  evalDir: string,
  promotion: PromotionRecord,
): void {
  const staged = new StagedDir(release);
  try {
    cpSync(draft, join(staged.path, 'draft'), { recursive: true });
    cpSync(exportDir, join(staged.path, 'export'), { recursive: true });
    for (const file of ['report.json', 'report.md'])
      if (existsSync(join(evalDir, file))) cpSync(join(evalDir, file), join(staged.path, file));
    writeFileAtomic(join(staged.path, 'promotion.json'), JSON.stringify(promotion, null, 2) + '\n');
    staged.commit();
  } catch (error) {
    staged.abort();
    throw error;
  }
}

/** Read a promotion record (release/promotion.json). */
export function readPromotion(path: string): PromotionRecord {
  return JSON.parse(readFileSync(path, 'utf8')) as PromotionRecord;
}
