/**
 * The distill stage: run the target over every prompt of an ingested dataset and record what it
 * says — token ids, an explicit loss mask and top-k log-probabilities — as `targets` Arrow files.
 *
 * Every input row is accounted for exactly once (ok, failed with its reason, or skipped) and no
 * row is duplicated. Finished rows are journaled in chunks, so an interrupted run continues where
 * it stopped when the same command is run again; the final files are written in input order, so a
 * greedy run that was interrupted and resumed produces exactly the output of one that was not.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { RecordBatchFileWriter } from 'apache-arrow';
import { InputError, RunError, describeError } from '../errors.js';
import { makeManifest, readManifest, writeManifest } from '../formats/manifest.js';
import {
  TARGETS_KIND,
  TARGETS_SCHEMA_VERSION,
  targetsRecordBatch,
  targetsSchema,
  type TargetRow,
} from '../formats/targets-schema.js';
import { checkArrowFile } from '../formats/arrow-read.js';
import {
  TRACES_KIND,
  TRACES_RERUN_HINT,
  TRACES_SCHEMA_VERSION,
  readTraceRows,
  type TraceRow,
  type TraceSplit,
} from '../formats/traces-schema.js';
import type { ProgressSink } from '../progress.js';
import type {
  PositionLogprobs,
  SamplingOptions,
  TargetEngine,
  TargetIdentity,
  TargetPrompt,
} from '../targets/engine.js';
import type { TokenizerIdentity } from '../tokenizer/identity.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { StagedDir, writeFileAtomic } from '../util/atomic.js';
import { sha256File } from '../util/hash.js';
import type { DistillConfig } from './config.js';
import { DistillJournal, type Settlement } from './journal.js';
import { targetsProvenance, type TargetsProvenance } from './provenance.js';
import { PromptRenderer } from './render.js';
import { ReusableTargets } from './reuse.js';
import { shardOf, type ShardSpec } from '../util/shard.js';
import type { TargetConfig } from '../targets/config.js';

export interface DistillRun {
  /** An ingested dataset directory (train.arrow, heldout.arrow, manifest.json). */
  dataset: string;
  /** Output directory (replaced atomically when the run completes). */
  out: string;
  distill: DistillConfig;
  /** The whole resolved config, recorded in the manifest. */
  resolvedConfig: unknown;
  /** The `target` section (its output-changing settings are part of the targets' provenance). */
  target?: TargetConfig;
  /** An earlier targets folder whose rows are taken, by row id, when its provenance equals this run's. */
  reuse?: string;
  /** Process only this shard of the rows (by row-id hash); `fireopt merge` joins the shards. */
  shard?: ShardSpec;
}

export interface DistillDeps {
  tokenizer: Tokenizer;
  /** Chat template text, or undefined for plain text. */
  chatTemplate?: string;
  /** Opens the target engine; not called in `traces` mode. */
  openEngine?: () => Promise<TargetEngine>;
  /** Identity of the target for `traces` mode, where no engine runs. */
  tokenizerIdentity: { source: string; sha256?: string; identity: TokenizerIdentity };
  progress: ProgressSink;
  /** Aborts the run between rows (Ctrl-C): finished rows stay journaled. */
  signal?: AbortSignal;
}

export interface DistillSummary {
  out: string;
  counts: {
    input: number;
    ok: number;
    failed: number;
    skipped: number;
    resumed: number;
    /** Input rows whose target rows were taken from the `reuse` folder instead of the target. */
    reused: number;
    /** Rows whose prompt was cut to max_prompt_tokens (truncate_prompt `left`). */
    truncated: number;
    rows: Record<TraceSplit, number>;
  };
  /** `truncated`: prompt tokens cut from those rows (not sent to the target, not in the targets). */
  tokens: { prompt: number; completion: number; truncated: number };
  failures: Array<{ id: string; reason: string }>;
  target: TargetIdentity | { engine: 'none'; tokenizer: string };
  /** A fleet of target replicas (`target.base_urls`): what each served in this run (resumed rows not included). */
  replicas?: ReplicaRows[];
  /** The earlier targets given to reuse, and what came of it (why nothing was reused, if so). */
  reuse: { from: string; reason: string } | null;
  shard: ShardSpec | null;
}

/** One replica's share of a distill run. */
export interface ReplicaRows {
  baseUrl: string;
  rows: number;
  /** Completion tokens it generated (regenerate) or scored (score). */
  tokens: number;
  failedAttempts: number;
  timesTakenOut: number;
}

interface WorkItem {
  key: string;
  split: TraceSplit;
  ordinal: number;
  row: TraceRow;
}

const SPLITS: TraceSplit[] = ['train', 'heldout'];

type OkSettlement = Extract<Settlement, { status: 'ok' }>;

/** Run distill; resolves to the summary once `out` is in place. */
export async function runDistill(run: DistillRun, deps: DistillDeps): Promise<DistillSummary> {
  const { distill } = run;
  const tracesManifest = readManifest<{ rows: Record<TraceSplit, number> }>(
    run.dataset,
    TRACES_KIND,
    TRACES_SCHEMA_VERSION,
    TRACES_RERUN_HINT,
  );
  const splitFiles = SPLITS.filter((split) => distill.splits.includes(split)).map((split) => ({
    split,
    path: join(run.dataset, `${split}.arrow`),
  }));
  // A missing or damaged input is reported before the engine starts or a resume journal is made.
  for (const { path } of splitFiles) checkArrowFile(path, TRACES_RERUN_HINT);
  const inputHashes = await Promise.all(
    splitFiles.map(async ({ split, path }) => ({ split, path, sha256: await sha256File(path) })),
  );
  const renderer = new PromptRenderer(deps.tokenizer, deps.chatTemplate);

  const engine = distill.mode === 'traces' ? undefined : await openEngine(deps);
  try {
    const identity: DistillSummary['target'] = engine?.identity ?? {
      engine: 'none',
      tokenizer: deps.tokenizerIdentity.source,
    };
    const provenance = targetsProvenance({
      identity,
      target: run.target,
      tokenizer: deps.tokenizerIdentity.identity,
      chatTemplate: deps.chatTemplate,
      distill,
    });
    // What decides the rows' content; settings that only pace or judge the run may change between resumes.
    const { concurrency: _c, chunk_rows: _r, max_failures: _f, dataset: _d, out: _o, ...contentSettings } = distill;
    const fingerprint = JSON.stringify({
      inputs: inputHashes.map((h) => h.sha256),
      distill: contentSettings,
      identity,
      template: deps.chatTemplate ?? null,
      shard: run.shard ?? null,
    });
    const reuse = run.reuse ? ReusableTargets.open(run.reuse, provenance) : undefined;
    if (reuse) deps.progress({ kind: 'log', level: reuse.reusable ? 'info' : 'warn', message: reuse.reason });
    const journal = new DistillJournal(run.out, fingerprint, (reason) =>
      deps.progress({ kind: 'log', level: 'warn', message: reason }),
    );
    const settled = journal.settled();
    const sampling: SamplingOptions = {
      maxTokens: distill.max_tokens,
      temperature: distill.temperature,
      topP: distill.top_p,
      topK: distill.top_k,
      seed: distill.seed,
      stopTokenIds: distill.stop_token_ids,
      n: distill.n,
      topLogprobs: distill.top_logprobs,
    };
    const samplingJson = JSON.stringify({
      temperature: sampling.temperature,
      top_p: sampling.topP,
      top_k: sampling.topK,
      seed: sampling.seed,
      max_tokens: sampling.maxTokens,
    });

    // The work to do, from the dataset's manifest (no extra pass over the Arrow files), or a pass over
    // the row ids for a shard.
    const total = run.shard
      ? await countShardRows(splitFiles, distill.limit, run.shard)
      : splitFiles.reduce((sum, { split }) => {
          const rows = tracesManifest.rows?.[split] ?? 0;
          return sum + (distill.limit ? Math.min(rows, distill.limit) : rows);
        }, 0);
    const resumed = settled.size;
    deps.progress({ kind: 'start', task: 'distill', total, unit: 'rows' });
    if (resumed)
      deps.progress({ kind: 'log', level: 'info', message: `resuming: ${resumed} of ${total} rows already done` });

    let pendingRows: TargetRow[] = [];
    let pendingKeys: string[] = [];
    let pendingSettlements: Settlement[] = [];
    let done = resumed;
    let completionTokens = 0;
    const startedMs = Date.now();
    const flush = (): void => {
      if (!pendingSettlements.length) return;
      journal.append(pendingRows, pendingKeys, pendingSettlements);
      pendingRows = [];
      pendingKeys = [];
      pendingSettlements = [];
    };

    const processItem = async (item: WorkItem): Promise<void> => {
      const { row } = item;
      let settlement: Settlement;
      try {
        const earlier = reuse?.reusable?.rowsOf(row.id);
        const reused = earlier && reusedRows(item, earlier, renderer, distill);
        const distilled = reused ?? (await distillRow(item, renderer, engine, distill, sampling, samplingJson));
        const { rows: produced, truncatedTokens } = distilled;
        if (produced.length === 0) {
          settlement = {
            key: item.key,
            status: 'skipped',
            id: row.id,
            reason: 'traces mode: the row has no completion to tokenize',
          };
        } else {
          for (const targetRow of produced) {
            pendingRows.push(targetRow);
            pendingKeys.push(item.key);
            completionTokens += targetRow.completion_token_ids.length;
          }
          settlement = { key: item.key, status: 'ok', rows: produced.length };
          if (truncatedTokens) settlement.truncatedTokens = truncatedTokens;
          if (reused) settlement.reused = true;
        }
      } catch (error) {
        if (error instanceof RunError && error.code === 'E_ENGINE_FATAL') throw error;
        settlement = {
          key: item.key,
          status: 'failed',
          id: row.id,
          reason: `${row.source_file}:${row.source_line}: ${describeError(error)}`,
        };
      }
      pendingSettlements.push(settlement);
      done++;
      deps.progress({
        kind: 'advance',
        task: 'distill',
        done,
        total,
        fields: { 'tok/s': Math.round(completionTokens / Math.max((Date.now() - startedMs) / 1000, 1e-3)) },
      });
      if (pendingSettlements.length >= distill.chunk_rows) flush();
    };

    // A fixed pool of workers pulls rows in input order.
    const items = workItems(splitFiles, distill.limit, settled, run.shard);
    let firstError: unknown;
    const worker = async (): Promise<void> => {
      for (;;) {
        if (firstError !== undefined || deps.signal?.aborted) return;
        const next = await items.next();
        if (next.done) return;
        try {
          await processItem(next.value);
        } catch (error) {
          firstError ??= error;
        }
      }
    };
    await Promise.all(Array.from({ length: distill.concurrency }, worker));
    flush();
    if (firstError !== undefined) throw firstError;
    if (deps.signal?.aborted)
      throw new RunError(
        'distill interrupted; finished rows are journaled: run the same command again to continue',
        undefined,
        'E_INTERRUPTED',
      );

    // Account for every row, then write the outputs in input order.
    const all = journal.settled();
    const failures = [...all.values()].filter(
      (s): s is Extract<Settlement, { status: 'failed' }> => s.status === 'failed',
    );
    const skipped = [...all.values()].filter((s) => s.status === 'skipped').length;
    const okSettlements = [...all.values()].filter((s): s is OkSettlement => s.status === 'ok');
    const ok = okSettlements.length;
    const truncatedRows = okSettlements.filter((s) => (s.truncatedTokens ?? 0) > 0);
    const truncatedTokens = truncatedRows.reduce((sum, s) => sum + (s.truncatedTokens ?? 0), 0);
    deps.progress({ kind: 'end', task: 'distill', done, fields: { ok, failed: failures.length, skipped } });
    if (all.size !== total) throw new RunError(`internal accounting error: ${all.size} rows settled of ${total}`);
    const limit = distill.max_failures >= 1 ? distill.max_failures : distill.max_failures * total;
    if (failures.length > limit) {
      const worst = failures
        .slice(0, 5)
        .map((f) => `  ${f.id}: ${f.reason}`)
        .join('\n');
      throw new RunError(
        `${failures.length} of ${total} rows failed (limit ${distill.max_failures}):\n${worst}`,
        'finished rows are journaled: fix the cause and run the same command again, or raise distill.max_failures',
        'E_TOO_MANY_FAILURES',
      );
    }

    const staged = new StagedDir(run.out);
    try {
      const rowsPerSplit: Record<TraceSplit, number> = { train: 0, heldout: 0 };
      let promptTokens = 0;
      let completionTotal = 0;
      for (const { split } of splitFiles) {
        const ordered = collectInOrder(journal, split);
        rowsPerSplit[split] = ordered.length;
        for (const row of ordered) {
          promptTokens += row.prompt_token_ids.length;
          completionTotal += row.completion_token_ids.length;
        }
        await writeTargetsFile(join(staged.path, `${split}.arrow`), ordered);
      }
      const failuresOut = failures.map((f) => ({ id: f.id, reason: f.reason }));
      const summary: DistillSummary = {
        out: staged.finalPath,
        counts: {
          input: total,
          ok,
          failed: failures.length,
          skipped,
          resumed,
          reused: okSettlements.filter((s) => s.reused).length,
          truncated: truncatedRows.length,
          rows: rowsPerSplit,
        },
        tokens: { prompt: promptTokens, completion: completionTotal, truncated: truncatedTokens },
        failures: failuresOut,
        target: identity,
        reuse: run.reuse && reuse ? { from: run.reuse, reason: reuse.reason } : null,
        shard: run.shard ?? null,
      };
      const replicas = replicaRows(engine);
      if (replicas) summary.replicas = replicas;
      writeManifest(
        staged.path,
        makeManifest(TARGETS_KIND, TARGETS_SCHEMA_VERSION, {
          config: run.resolvedConfig,
          inputs: inputHashes.map(({ split, path, sha256 }) => ({ split, path, sha256 })),
          target: identity,
          tokenizer: deps.tokenizerIdentity,
          chat_template_sha256:
            deps.chatTemplate === undefined ? null : createHash('sha256').update(deps.chatTemplate).digest('hex'),
          counts: summary.counts,
          tokens: summary.tokens,
          ...(replicas && { replicas }),
          ...targetsLineage(provenance, run.shard, distill.limit),
        }),
      );
      if (failuresOut.length) {
        writeFileAtomic(join(staged.path, 'failed.jsonl'), failuresOut.map((f) => JSON.stringify(f)).join('\n') + '\n');
      }
      staged.commit();
      journal.remove();
      return summary;
    } catch (error) {
      staged.abort();
      throw error;
    }
  } finally {
    await engine?.close();
  }
}

/** Per-replica rows of an engine that drives several replicas; undefined for one server or a local model. */
function replicaRows(engine: TargetEngine | undefined): ReplicaRows[] | undefined {
  const stats = engine?.replicaStats?.();
  if (!stats || stats.length < 2) return undefined;
  return stats.map(({ requests, ...rest }) => ({ ...rest, rows: requests }));
}

async function openEngine(deps: DistillDeps): Promise<TargetEngine> {
  if (!deps.openEngine)
    throw new InputError('distill needs a target engine: set the `target` config section (or use distill.mode=traces)');
  return deps.openEngine();
}

/**
 * The manifest's record of where the rows came from: what `--reuse` and `fireopt merge` compare,
 * and the shard (null when the folder holds every row).
 */
function targetsLineage(
  provenance: TargetsProvenance,
  shard: ShardSpec | undefined,
  limit: number,
): { provenance: TargetsProvenance; shard: (ShardSpec & { limit: number }) | null } {
  return { provenance, shard: shard ? { ...shard, limit } : null };
}

/**
 * The rows to process, in input order (the first `limit` of each split, then those of `shard`),
 * skipping those an earlier run settled. Keys are positions in the whole split, shard or not.
 */
async function* workItems(
  splitFiles: Array<{ split: TraceSplit; path: string }>,
  limit: number,
  settled: Map<string, Settlement>,
  shard: ShardSpec | undefined,
): AsyncGenerator<WorkItem> {
  for (const { split, path } of splitFiles) {
    let ordinal = 0;
    for await (const row of readTraceRows(path)) {
      const key = `${split}:${ordinal}`;
      const inShard = !shard || shardOf(row.id, shard.count) === shard.index;
      if (inShard && !settled.has(key)) yield { key, split, ordinal, row };
      ordinal++;
      if (limit && ordinal >= limit) break;
    }
  }
}

/** How many rows `workItems` gives a shard. */
async function countShardRows(
  splitFiles: Array<{ split: TraceSplit; path: string }>,
  limit: number,
  shard: ShardSpec,
): Promise<number> {
  let count = 0;
  for await (const _item of workItems(splitFiles, limit, new Map(), shard)) count++;
  return count;
}

/** The columns a target row takes from its input row. */
function inputColumns(item: WorkItem) {
  const { row } = item;
  return {
    id: row.id,
    conversation_id: row.conversation_id,
    turn_index: row.turn_index,
    split: item.split,
    source_file: row.source_file,
    source_line: row.source_line,
    metadata: row.metadata,
  };
}

/** Whether a row's completion is the trace's own (tokenized, maybe scored) rather than generated. */
function keepsTraceCompletion(row: TraceRow, distill: DistillConfig): boolean {
  const hasCompletion = row.completion !== null || row.completion_tool_calls !== null;
  return distill.mode === 'traces' || (distill.mode === 'score' && hasCompletion);
}

/**
 * The earlier target rows of an input row, with the input's own columns (its file, line, split and
 * metadata may have changed; its content has not, as its id hashes it), or undefined when the
 * prompt this run would send differs from the one they were made from (then the row is distilled).
 */
function reusedRows(
  item: WorkItem,
  earlier: TargetRow[],
  renderer: PromptRenderer,
  distill: DistillConfig,
): { rows: TargetRow[]; truncatedTokens: number } | undefined {
  const fullPromptIds = keepsTraceCompletion(item.row, distill)
    ? renderer.renderExample(item.row).promptTokenIds
    : renderer.renderPrompt(item.row).tokenIds;
  const promptIds = fitPrompt(fullPromptIds, distill);
  const earlierIds = earlier[0].prompt_token_ids;
  if (earlierIds.length !== promptIds.length || promptIds.some((id, i) => earlierIds[i] !== id)) return undefined;
  const columns = inputColumns(item);
  return {
    rows: earlier.map((row) => ({ ...row, ...columns })),
    truncatedTokens: fullPromptIds.length - promptIds.length,
  };
}

/**
 * Produce the target rows of one input row (n of them when sampling n completions), and how many
 * prompt tokens truncate_prompt `left` cut from it.
 */
async function distillRow(
  item: WorkItem,
  renderer: PromptRenderer,
  engine: TargetEngine | undefined,
  distill: DistillConfig,
  sampling: SamplingOptions,
  samplingJson: string,
): Promise<{ rows: TargetRow[]; truncatedTokens: number }> {
  const { row } = item;
  const hasCompletion = row.completion !== null || row.completion_tool_calls !== null;
  const base = inputColumns(item);
  if (keepsTraceCompletion(row, distill)) {
    if (!hasCompletion) return { rows: [], truncatedTokens: 0 };
    const example = renderer.renderExample(row);
    const promptIds = fitPrompt(example.promptTokenIds, distill);
    let logprobs: PositionLogprobs[] | undefined;
    if (distill.mode === 'score') {
      if (!engine) throw new InputError('score mode needs a target engine');
      const prompt = truncatedPrompt(renderer.renderPrompt(row), promptIds);
      logprobs = await engine.score(prompt, example.completionTokenIds, { topLogprobs: distill.top_logprobs });
    }
    const rows: TargetRow[] = [
      {
        ...base,
        sample_index: 0,
        mode: distill.mode,
        prompt_token_ids: Int32Array.from(promptIds),
        completion_token_ids: Int32Array.from(example.completionTokenIds),
        loss_mask: example.lossMask,
        ...logprobColumns(logprobs, example.completionTokenIds.length, distill.top_logprobs),
        finish_reason: 'trace',
        sampling: samplingJson,
      },
    ];
    return { rows, truncatedTokens: example.promptTokenIds.length - promptIds.length };
  }
  if (!engine) throw new InputError('regenerate mode needs a target engine');
  const rendered = renderer.renderPrompt(row);
  const prompt = truncatedPrompt(rendered, fitPrompt(rendered.tokenIds, distill));
  const completions = await engine.generate(prompt, sampling);
  const rows = completions.map(
    (completion, sampleIndex): TargetRow => ({
      ...base,
      sample_index: sampleIndex,
      mode: 'regenerate',
      prompt_token_ids: Int32Array.from(prompt.tokenIds),
      completion_token_ids: Int32Array.from(completion.tokenIds),
      loss_mask: new Uint8Array(completion.tokenIds.length).fill(1),
      ...logprobColumns(completion.logprobs, completion.tokenIds.length, distill.top_logprobs),
      finish_reason: completion.finishReason,
      sampling: samplingJson,
    }),
  );
  return { rows, truncatedTokens: rendered.tokenIds.length - prompt.tokenIds.length };
}

/**
 * The prompt ids a row sends to the target: all of them when they fit max_prompt_tokens; else, with
 * truncate_prompt `left`, the last max_prompt_tokens of them (the end of a conversation is what the
 * next turn depends on), and with `error` an InputError that fails the row.
 */
function fitPrompt(ids: readonly number[], distill: DistillConfig): readonly number[] {
  if (ids.length <= distill.max_prompt_tokens) return ids;
  if (distill.truncate_prompt === 'left') return ids.slice(ids.length - distill.max_prompt_tokens);
  throw new InputError(
    `prompt is ${ids.length} tokens, more than distill.max_prompt_tokens (${distill.max_prompt_tokens})`,
    'raise distill.max_prompt_tokens, or keep the last tokens with --truncate-prompt left',
  );
}

/**
 * A rendered prompt cut to `tokenIds`. Its text and messages describe the whole prompt, so a cut
 * prompt goes to the target as token ids only (an OpenAI-compatible target needs
 * `prompt_format: token_ids` for it).
 */
function truncatedPrompt<Prompt extends TargetPrompt>(prompt: Prompt, tokenIds: readonly number[]): TargetPrompt {
  return tokenIds.length === prompt.tokenIds.length ? prompt : { tokenIds };
}

/** Flatten per-position log-probabilities into the fixed [length × k] columns. */
function logprobColumns(
  logprobs: PositionLogprobs[] | undefined,
  length: number,
  k: number,
): Pick<TargetRow, 'token_logprobs' | 'top_k' | 'top_ids' | 'top_logprobs'> {
  if (!logprobs || k === 0) return { token_logprobs: null, top_k: 0, top_ids: null, top_logprobs: null };
  if (logprobs.length !== length)
    throw new RunError(`engine returned ${logprobs.length} log-probability positions for ${length} tokens`);
  const tokenLogprobs = new Float32Array(length);
  const topIds = new Int32Array(length * k).fill(-1);
  const topLogprobs = new Float32Array(length * k).fill(-Infinity);
  logprobs.forEach((position, i) => {
    tokenLogprobs[i] = position.tokenLogprob;
    for (let j = 0; j < Math.min(k, position.topIds.length); j++) {
      topIds[i * k + j] = position.topIds[j];
      topLogprobs[i * k + j] = position.topLogprobs[j];
    }
  });
  return { token_logprobs: tokenLogprobs, top_k: k, top_ids: topIds, top_logprobs: topLogprobs };
}

/** The journaled rows of one split, in input order (then sample order). */
function collectInOrder(journal: DistillJournal, split: TraceSplit): TargetRow[] {
  const entries: Array<{ ordinal: number; row: TargetRow }> = [];
  for (const { key, row } of journal.rows()) {
    const [rowSplit, ordinal] = key.split(':');
    if (rowSplit === split) entries.push({ ordinal: Number(ordinal), row });
  }
  entries.sort((a, b) => a.ordinal - b.ordinal || a.row.sample_index - b.row.sample_index);
  return entries.map((e) => e.row);
}

/** Write a targets Arrow file (record batches of 256 rows: merge writes the same bytes as distill). */
export async function writeTargetsFile(path: string, rows: TargetRow[]): Promise<void> {
  const batchRows = 256;
  const writer = new RecordBatchFileWriter();
  const done = pipeline(writer.toNodeStream(), createWriteStream(path));
  if (rows.length === 0) writer.reset(undefined, targetsSchema);
  for (let i = 0; i < rows.length; i += batchRows) writer.write(targetsRecordBatch(rows.slice(i, i + batchRows)));
  writer.finish();
  await done;
}
