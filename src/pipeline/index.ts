/**
 * `fireopt run`: the whole loop over one run directory, one numbered folder per stage:
 *
 *   0-deployed/   a snapshot of the deployed draft (from promotion.release) as the run found it
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
 * skipped. So an unchanged rerun does nothing and a rerun after a failure resumes at that stage.
 */
import { cpSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FireoptConfig } from '../config/schema.js';
import { FireoptError, UsageError, describeError } from '../errors.js';
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

/** How a run ended, for a CI job. */
export type PipelineOutcome = 'promoted' | 'not-promoted' | 'not-needed';

/** Exit codes of `fireopt run` (failures are 1, bad usage/config/input 2, as everywhere). */
export const OUTCOME_EXIT_CODES: Record<PipelineOutcome, number> = { promoted: 0, 'not-promoted': 3, 'not-needed': 4 };

export const PROMOTION_KIND = 'promotion';
export const PROMOTION_SCHEMA_VERSION = 1;

export const STAGES = ['0-deployed', '1-ingest', '2-distill', '3-drift', '4-train', '5-eval', '6-export', '7-promote'] as const;
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

export interface PipelineResult {
  outcome: PipelineOutcome;
  exit_code: number;
  reason: string;
  dir: string;
  stages: StageReport[];
  drift: DriftMeasurement | null;
  comparison: Comparison | null;
  /** The new draft's candidate line and the others in the eval report. */
  candidates: Array<{ name: string; hit_rate: number | null; tau: number; best_k: number; speedup: number }>;
  report: string | null;
  export: string | null;
  release: string | null;
  retention: { deleted: string[] } | null;
}

interface StageContext {
  runDir: string;
  reports: StageReport[];
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
  const fingerprint = hashJson({ stage, inputs });
  const previous = readStageRecord(stageDir);
  if (previous?.status === 'done' && previous.fingerprint === fingerprint && (output === null || existsSync(output))) {
    progress({ kind: 'log', level: 'info', message: `${stage}: unchanged, skipped` });
    context.reports.push({ stage, status: 'skipped', seconds: 0, summary: previous.summary });
    return previous;
  }
  progress({ kind: 'log', level: 'info', message: `${stage}: ${previous ? (previous.status === 'failed' ? 'resuming after a failure' : 'inputs changed, running') : 'running'}` });
  const startedAt = new Date();
  try {
    const summary = await body();
    const outputSha = output !== null && existsSync(output) ? await hashPath(output) : null;
    const finishedAt = new Date();
    const seconds = (finishedAt.getTime() - startedAt.getTime()) / 1000;
    const record = writeStageRecord(stageDir, {
      stage, status: 'done', fingerprint, inputs, output_sha256: outputSha,
      started_at: startedAt.toISOString(), finished_at: finishedAt.toISOString(), seconds, summary,
    });
    context.reports.push({ stage, status: 'ran', seconds, summary });
    return record;
  } catch (error) {
    const finishedAt = new Date();
    writeStageRecord(stageDir, {
      stage, status: 'failed', fingerprint, inputs, output_sha256: null,
      started_at: startedAt.toISOString(), finished_at: finishedAt.toISOString(), seconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
      summary: {}, error: { code: error instanceof FireoptError ? error.code : 'E_INTERNAL', message: describeError(error) },
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

/** Run the whole loop. Resolves with the outcome; throws on failure (after recording it in the failed stage). */
export async function runPipeline(config: FireoptConfig, deps: StageDeps): Promise<PipelineResult> {
  if (!config.run.dir) throw new UsageError('run: no run directory (run.dir or --dir)');
  const runDir = resolve(config.run.dir);
  const context: StageContext = { runDir, reports: [] };
  const { progress } = deps;
  const stageData = (stage: StageName): string => join(runDir, stage, 'data');
  const release = config.promotion.release ? resolve(config.promotion.release) : null;

  // 0: the deployed draft as this run first found it. A release this run promoted itself is not a
  // new deployment: keeping the earlier snapshot lets an unchanged rerun skip every later stage.
  const deployedDir = join(runDir, '0-deployed');
  const deployedDraft = join(deployedDir, 'deployed-draft');
  const releaseDraft = release ? join(release, 'draft') : null;
  const releaseSha = await hashOptional(releaseDraft ?? undefined);
  const snapshot = readStageRecord(deployedDir);
  const promotedByThisRun = readStageRecord(join(runDir, '7-promote'))?.summary.promoted_sha256 ?? null;
  const snapshotValid = snapshot?.status === 'done' && (snapshot.output_sha256 === releaseSha || (releaseSha !== null && promotedByThisRun === releaseSha)) && (snapshot.output_sha256 === null || existsSync(deployedDraft));
  if (snapshotValid && snapshot) {
    context.reports.push({ stage: '0-deployed', status: 'skipped', seconds: 0, summary: snapshot.summary });
  } else {
    rmSync(deployedDir, { recursive: true, force: true });
    await runStage(context, '0-deployed', { release_draft_sha256: releaseSha }, null, async () => {
      if (!release || !releaseDraft || releaseSha === null) return { deployed: false, release };
      cpSync(releaseDraft, deployedDraft, { recursive: true });
      if (existsSync(join(release, 'promotion.json'))) cpSync(join(release, 'promotion.json'), join(deployedDir, 'promotion.json'));
      return { deployed: true, release, draft_sha256: releaseSha };
    }, progress);
    // The snapshot's output hash is the release draft's: that is what later fingerprints name.
    const record = readStageRecord(deployedDir) as StageRecord;
    writeStageRecord(deployedDir, { ...record, output_sha256: releaseSha });
  }
  const deployedSha = (readStageRecord(deployedDir) as StageRecord).output_sha256;
  const deployed = deployedSha !== null;

  // 1: ingest the fresh traces.
  const { resolveInputs } = await import('../ingest/sources.js');
  if (config.ingest.inputs.length === 0) throw new UsageError('run: no traces (ingest.inputs)', 'HINT: set ingest.inputs to the fresh trace files or globs');
  if (config.ingest.inputs.includes('-')) throw new UsageError('run: traces cannot come from stdin (`-`); give files');
  const traceFiles = await resolveInputs(config.ingest.inputs);
  const traceHashes = await Promise.all(traceFiles.map(async (path) => ({ path, sha256: await hashPath(path) })));
  const ingest = await runStage(context, '1-ingest', { traces: traceHashes.map((t) => t.sha256), ingest: contentOf(config.ingest, 'inputs', 'out') }, stageData('1-ingest'),
    () => ingestStage(config, traceFiles, stageData('1-ingest'), deps), progress);

  // 2: distill with the target.
  const target = config.target;
  const targetSha = target?.engine === 'llama-cpp' ? await hashOptional(target.model) : null;
  const tokenizerSha = config.distill.tokenizer !== 'auto' ? await hashOptional(config.distill.tokenizer) : null;
  const targets = stageData('2-distill');
  const distill = await runStage(context, '2-distill',
    { dataset: ingest.output_sha256, distill: contentOf(config.distill, 'dataset', 'out', 'concurrency', 'chunk_rows', 'max_failures'), target: target ?? null, target_sha256: targetSha, tokenizer_sha256: tokenizerSha },
    targets, () => distillStage(config, stageData('1-ingest'), targets, deps), progress);
  const distillSha = distill.output_sha256;
  const evalContent = contentOf(config.eval, 'model', 'data', 'out', 'baselines', 'margin', 'bootstrap_samples', 'seed');

  // 3: drift: the deployed draft on the fresh held-out data against its recorded acceptance.
  let drift: DriftMeasurement | null = null;
  const driftRecord = await runStage(context, '3-drift', { deployed: deployedSha, targets: distillSha, eval: evalContent, drift: config.drift }, deployed ? stageData('3-drift') : null, async () => {
    if (!deployed) return { measured: false, retrain: true, reason: 'nothing deployed yet' };
    const recorded = recordedAcceptance(deployedDraft, join(deployedDir, 'promotion.json'));
    const { report, reportPath } = await evalStage(config, { model: deployedDraft, data: targets, out: stageData('3-drift'), baselines: [] }, deps);
    const measurement = measureDrift(report, reportPath, recorded, config.drift);
    return { measured: true, retrain: measurement.retrain, reason: measurement.reason, drift: measurement };
  }, progress);
  drift = (driftRecord.summary.drift as DriftMeasurement | undefined) ?? null;
  progress({ kind: 'log', level: 'info', message: `drift: ${String(driftRecord.summary.reason)}` });

  const finish = async (outcome: PipelineOutcome, reason: string, extra: Partial<PipelineResult>): Promise<PipelineResult> => {
    const ran = new Set(context.reports.map((r) => r.stage));
    for (const stage of STAGES) if (!ran.has(stage)) context.reports.push({ stage, status: 'not-run', seconds: 0, summary: {} });
    context.reports.sort((a, b) => STAGES.indexOf(a.stage) - STAGES.indexOf(b.stage));
    const retention = config.retention.enabled ? applyRetention(runDir, traceFiles, config.retention, progress) : null;
    const result: PipelineResult = {
      outcome, exit_code: OUTCOME_EXIT_CODES[outcome], reason, dir: runDir, stages: context.reports, drift, comparison: null, candidates: [],
      report: null, export: null, release, retention, ...extra,
    };
    writeFileAtomic(join(runDir, 'run.json'), JSON.stringify({ kind: 'pipeline-run', schema_version: 1, fireopt_version: FIREOPT_VERSION, finished_at: new Date().toISOString(), ...result }, null, 2) + '\n');
    return result;
  };

  if (driftRecord.summary.retrain !== true && !config.run.force) {
    return finish('not-needed', `retraining not needed: ${String(driftRecord.summary.reason)}`, {});
  }

  // 4: train the new draft (automatic selection unless train.select: off).
  const initFrom = config.promotion.incremental && deployed ? deployedDraft : config.train.init_from;
  const trainSettings = { ...config.train, init_from: initFrom, ...(config.promotion.incremental && deployed && { init: 'draft' as const }) };
  const trainOut = stageData('4-train');
  const newDraft = join(trainOut, 'draft');
  const train = await runStage(context, '4-train',
    { targets: distillSha, train: contentOf(trainSettings, 'targets', 'out', 'init_from'), init_from: initFrom ? (initFrom === deployedDraft ? deployedSha : await hashOptional(initFrom)) : null, target_model_sha256: await hashOptional(config.train.target_model), tokenizer_sha256: await hashOptional(config.train.tokenizer) },
    newDraft, async () => {
      // A half-finished earlier attempt is discarded: the stage starts over from its inputs.
      rmSync(trainOut, { recursive: true, force: true });
      const { runTrain } = await import('../train/index.js');
      const summary = await runTrain({ targets, out: trainOut, train: trainSettings, resolvedConfig: config, resume: false }, { progress, signal: deps.signal });
      const w = summary.winner;
      return { draft: summary.draft, winner: w.name, parameters: w.parameters, steps: w.steps, hit_rate: w.best.hitRate, acceptance_length: w.best.acceptanceLength, expected_speedup: w.best.expectedSpeedup, candidates: summary.leaderboard.length, backend: summary.backend };
    }, progress);
  const newDraftSha = train.output_sha256;

  // 5: evaluate the new draft beside the deployed one and the baselines, on the same held-out data.
  const baselines = [...(deployed ? [deployedDraft] : []), ...config.eval.baselines];
  const firstBaseline = config.promotion.first_must_beat;
  if (!deployed && firstBaseline !== 'none' && !baselines.includes(firstBaseline)) baselines.push(firstBaseline);
  const evalOut = stageData('5-eval');
  await runStage(context, '5-eval', { draft: newDraftSha, deployed: deployedSha, targets: distillSha, eval: evalContent, baselines: baselines.map((b) => (b === deployedDraft ? `deployed:${deployedSha}` : b)) }, evalOut, async () => {
    const { report } = await evalStage(config, { model: newDraft, data: targets, out: evalOut, baselines }, deps);
    return { winner: report.winner, rows: report.data.rows, tokens: report.data.tokens, candidates: candidateLines(report) };
  }, progress);
  const reportPath = join(evalOut, 'report.json');
  const report = readReport(reportPath);

  // 6: export the new draft's serving artifacts.
  const exportOut = stageData('6-export');
  const exportTarget = config.export.target ?? (config.target?.engine === 'llama-cpp' ? config.target.model : config.train.target_model);
  await runStage(context, '6-export', { draft: newDraftSha, name: config.name, export: contentOf(config.export, 'model', 'out'), target_sha256: await hashOptional(exportTarget) }, exportOut, async () => {
    const outcome = await exportDraft(config, newDraft, exportOut, progress);
    return { files: outcome.files, notes: outcome.notes };
  }, progress);

  // 7: the promotion gate.
  const promoteDir = join(runDir, '7-promote');
  const promote = await runStage(context, '7-promote',
    { report: (readStageRecord(join(runDir, '5-eval')) as StageRecord).output_sha256, export: (readStageRecord(join(runDir, '6-export')) as StageRecord).output_sha256, deployed: deployedSha, release, margin: config.eval.margin, samples: config.eval.bootstrap_samples, seed: config.eval.seed, first_must_beat: firstBaseline },
    null, async () => {
      const decision = gate(report, reportPath, deployed, firstBaseline, config);
      writeFileAtomic(join(promoteDir, 'decision.json'), JSON.stringify(decision, null, 2) + '\n');
      if (!decision.promote) return { promote: false, reason: decision.reason, comparison: decision.comparison, promoted_sha256: null };
      if (!release) return { promote: false, reason: `${decision.reason}; but promotion.release is not set, so nothing was copied`, comparison: decision.comparison, promoted_sha256: null };
      const promotion: PromotionRecord = {
        kind: PROMOTION_KIND, schema_version: PROMOTION_SCHEMA_VERSION, fireopt_version: FIREOPT_VERSION, promoted_at: new Date().toISOString(), run_dir: runDir,
        draft_sha256: newDraftSha as string, previous_draft_sha256: deployedSha, acceptance: acceptanceOf(report.candidates[0], reportPath),
        data: { sha256: report.data.sha256, rows: report.data.rows, tokens: report.data.tokens }, comparison: decision.comparison, reason: decision.reason,
      };
      publishRelease(release, newDraft, exportOut, evalOut, promotion);
      writeFileAtomic(join(promoteDir, 'promotion.json'), JSON.stringify(promotion, null, 2) + '\n');
      return { promote: true, reason: decision.reason, comparison: decision.comparison, promoted_sha256: newDraftSha };
    }, progress);

  const summary = promote.summary as { promote: boolean; reason: string; comparison: Comparison | null };
  return finish(summary.promote ? 'promoted' : 'not-promoted', summary.reason, {
    comparison: summary.comparison, candidates: candidateLines(report), report: reportPath, export: exportOut,
  });
}

function candidateLines(report: EvalReport): PipelineResult['candidates'] {
  return report.candidates.map((c) => ({ name: c.name, hit_rate: c.greedy_hit_rate, tau: c.by_k[c.best_k - 1].tau, best_k: c.best_k, speedup: c.best_speedup }));
}

interface GateDecision {
  promote: boolean;
  reason: string;
  comparison: Comparison | null;
}

/** Promote the new draft (the report's first candidate) only if it beats the deployed one by the margin. */
function gate(report: EvalReport, reportPath: string, deployed: boolean, firstMustBeat: string, config: FireoptConfig): GateDecision {
  const newName = report.candidates[0].name;
  const against = deployed ? report.candidates[1]?.name : firstMustBeat !== 'none' ? report.candidates.find((c) => c.kind === firstMustBeat)?.name : undefined;
  if (!against) return { promote: true, reason: 'nothing deployed yet: the first draft is promoted', comparison: null };
  // compare's own logic, on one report holding both candidates: the same data by construction.
  const comparison = compareReports(report, reportPath, report, reportPath, {
    margin: config.eval.margin, samples: config.eval.bootstrap_samples, seed: config.eval.seed, candidateA: against, candidateB: newName,
  });
  return { promote: comparison.promote, reason: `${comparison.promote ? 'wins' : 'does not win'} against ${deployed ? 'the deployed draft' : against}: ${comparison.reason}`, comparison };
}

/** Replace the release folder atomically: draft/, export/, report.json + report.md, promotion.json. */
function publishRelease(release: string, draft: string, exportDir: string, evalDir: string, promotion: PromotionRecord): void {
  const staged = new StagedDir(release);
  try {
    cpSync(draft, join(staged.path, 'draft'), { recursive: true });
    cpSync(exportDir, join(staged.path, 'export'), { recursive: true });
    for (const file of ['report.json', 'report.md']) if (existsSync(join(evalDir, file))) cpSync(join(evalDir, file), join(staged.path, file));
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
