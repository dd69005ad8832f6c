/**
 * The cost ratio c of a draft, measured in a named engine (`eval.cost.engine: llama-cpp`) rather
 * than given: the draft checkpoint is written to a temporary F32 GGUF and timed against the target
 * GGUF in llama.cpp (speculation/llama-cpp-cost.ts), with the same threads and context settings.
 *
 * A draft with a reduced vocabulary is written as it is stored: its embedding and output rows are the
 * draft vocabulary's, so the GGUF carries a tokenizer of exactly that many tokens (a vocab-only stand-in:
 * the target's first ids, where llama.cpp finds the special and byte tokens it looks up on load — a
 * subset at `draft_to_target` can lack them and llama.cpp then aborts). That is the model whose forward pass
 * speculation pays for — the output head over the draft's own rows, not the target's; expanding it to the target
 * vocabulary is `fireopt export`'s job and would measure a larger model than the one trained. Token
 * identities do not change the time, so a checkpoint without a tokenizer gets placeholder tokens.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { InputError } from '../errors.js';
import type { DraftCheckpoint } from '../formats/draft-checkpoint.js';
import { writeLlamaGguf } from '../formats/gguf-llama.js';
import type { Vocabulary } from '../tokenizer/vocabulary.js';
import { TokenType } from '../tokenizer/vocabulary.js';
import { measureLlamaCppCost } from '../speculation/llama-cpp-cost.js';
import type { EvalConfig } from './config.js';
import type { CandidateReport, CostMeasurement, EvalReport } from './report-schema.js';

/** The vocabulary a draft's GGUF carries: the target's, or the reduced one's own tokens. */
export function draftGgufVocabulary(
  checkpoint: Pick<DraftCheckpoint, 'weights' | 'vocabulary' | 'draftVocabulary'>,
): Vocabulary {
  const rows = checkpoint.weights.config.vocabSize;
  const target = checkpoint.vocabulary;
  const reduced = checkpoint.draftVocabulary;
  if (!target) {
    // Timing only: any distinct token texts do.
    return {
      model: 'llama',
      // llama2.c's layout: <unk>, <s>, </s>, the 256 byte tokens, then ordinary pieces.
      tokens: Array.from({ length: rows }, (_, i) =>
        i < 3
          ? ['<unk>', '<s>', '</s>'][i]
          : i < 259
            ? `<0x${(i - 3).toString(16).toUpperCase().padStart(2, '0')}>`
            : `<fireopt_${i}>`,
      ),
      scores: new Float32Array(rows),
      tokenTypes: Int32Array.from({ length: rows }, (_, i) =>
        i === 0 ? TokenType.Unknown : i < 3 ? TokenType.Control : i < 259 ? TokenType.Byte : TokenType.Normal,
      ),
      unkId: rows > 0 ? 0 : undefined,
      bosId: rows > 1 ? 1 : undefined,
      eosId: rows > 2 ? 2 : undefined,
      addBos: false,
      addEos: false,
    };
  }
  if (!reduced) return target;
  // The first `rows` target tokens: the special and byte tokens llama.cpp looks up when it loads a
  // vocabulary sit at the low ids; which texts the rows carry does not change the time.
  const keep = (id: number | undefined): number | undefined => (id !== undefined && id < rows ? id : undefined);
  const kept = new Set(target.tokens.slice(0, rows));
  return {
    ...target,
    tokens: target.tokens.slice(0, rows),
    scores: target.scores?.slice(0, rows),
    tokenTypes: target.tokenTypes.slice(0, rows),
    // BPE merges of the kept tokens only (llama.cpp needs the key for BPE; timing never tokenizes text).
    merges: target.merges?.filter((merge) => merge.split(' ').every((part) => kept.has(part))),
    bosId: keep(target.bosId),
    eosId: keep(target.eosId),
    unkId: keep(target.unkId),
    padId: keep(target.padId),
    addBos: target.addBos && keep(target.bosId) !== undefined,
    addEos: target.addEos && keep(target.eosId) !== undefined,
  };
}

/** Write the draft as an F32 GGUF, time it against the target in llama.cpp, and describe the result. */
export async function measureDraftCost(
  checkpoint: DraftCheckpoint,
  config: EvalConfig,
  log: (line: string) => void,
): Promise<CostMeasurement> {
  const cost = config.cost;
  if (!cost.target_model) {
    throw new InputError(
      'eval: measuring the cost in llama.cpp needs the target GGUF',
      'HINT: pass --target-model <target.gguf> (eval.cost.target_model)',
    );
  }
  const targetModel = resolve(cost.target_model);
  if (!existsSync(targetModel)) throw new InputError(`${targetModel}: no such target GGUF (eval.cost.target_model)`);
  const dir = mkdtempSync(join(tmpdir(), 'fireopt-cost-'));
  try {
    const draftGguf = join(dir, 'draft.gguf');
    writeLlamaGguf(draftGguf, checkpoint.weights, draftGgufVocabulary(checkpoint), {
      dtype: 'f32',
      name: 'fireopt-draft-cost',
    });
    const loadBefore = loadavg();
    const measured = await measureLlamaCppCost({
      targetModel,
      draftModel: draftGguf,
      threads: cost.threads,
      contextSize: cost.context_size,
      contextTokens: cost.context_tokens,
      steps: cost.steps,
      runs: cost.runs,
      warmupRuns: cost.warmup_runs,
    });
    const loadAfter = loadavg();
    const measurement: CostMeasurement = {
      engine: 'llama-cpp',
      target_model: targetModel,
      draft_vocab_size: checkpoint.weights.config.vocabSize,
      weights: 'f32',
      threads: measured.threads,
      context_size: measured.contextSize,
      context_tokens: measured.contextTokens,
      steps_per_run: measured.steps,
      runs: measured.runs,
      warmup_runs: measured.warmupRuns,
      draft_step_ms: measured.draftStepMs,
      target_step_ms: measured.targetStepMs,
      target_verify_ms_by_k: measured.targetVerifyMsByK,
      verify_cost_by_k: measured.verifyRatioByK,
      cost_ratio: measured.costRatio,
      load_average: {
        before: [loadBefore[0], loadBefore[1], loadBefore[2]],
        after: [loadAfter[0], loadAfter[1], loadAfter[2]],
      },
      cpus: cpus().length,
      cpu_model: cpus()[0]?.model.trim() ?? 'unknown',
    };
    log(
      `measured in llama.cpp: draft step ${measured.draftStepMs.toFixed(3)} ` +
        `ms, target step ${measured.targetStepMs.toFixed(3)} ms, c = ${measured.costRatio.toFixed(3)} ` +
        `(${measured.threads} thread${measured.threads === 1 ? '' : 's'}, load average ${loadBefore[0].toFixed(2)})`,
    );
    return measurement;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The cost assumption behind a candidate's speed-ups: `family` must match for speed-ups to compare. */
export interface CostAssumption {
  /** `given`, or the engine, target and settings c was measured with. */
  family: string;
  /** One line for people, with c itself. */
  description: string;
  /** c when it was given (two given values must be equal too), else null. */
  givenRatio: number | null;
}

function measuredFamily(m: CostMeasurement): string {
  const settings = `${m.threads} thread(s), context ${m.context_size}, ${m.context_tokens} cached tokens`;
  return `measured in ${m.engine} against ${m.target_model} (${settings})`;
}

/**
 * The cost assumption of `candidate` in `report`. A model-free method costs no forward pass (c = 0);
 * its verification cost is the report's first measured draft's, so it shares that draft's assumption.
 */
export function costAssumption(report: EvalReport, candidate: CandidateReport): CostAssumption {
  if (candidate.cost_measurement) {
    const family = measuredFamily(candidate.cost_measurement);
    return { family, description: `c = ${candidate.cost_ratio.toFixed(4)} ${family}`, givenRatio: null };
  }
  if (candidate.kind === 'draft')
    return {
      family: 'given',
      description: `c = ${candidate.cost_ratio} given (eval.cost_ratio)`,
      givenRatio: candidate.cost_ratio,
    };
  const measured = report.candidates.find((c) => c.cost_measurement)?.cost_measurement;
  if (measured && candidate.verify_cost_by_k) {
    const family = measuredFamily(measured);
    return { family, description: `model-free (c = 0), verification ${family}`, givenRatio: null };
  }
  return { family: 'given', description: 'model-free (c = 0), verification cost 1', givenRatio: null };
}

/** Whether two candidates' speed-ups rest on the same cost assumption. */
export function sameCostAssumption(a: CostAssumption, b: CostAssumption): boolean {
  return a.family === b.family && (a.givenRatio === null || b.givenRatio === null || a.givenRatio === b.givenRatio);
}
