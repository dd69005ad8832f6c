/**
 * report.json of `fireopt eval`, declared once as a zod schema (the TypeScript type is derived
 * from it). `fireopt compare` parses reports with it; a report of another version is refused with
 * a hint to re-run eval. Ratios that have no denominator (nothing drafted) are null.
 */
import { z } from 'zod';

export const REPORT_KIND = 'eval-report';
export const REPORT_SCHEMA_VERSION = 2;

const loadAverage = z.tuple([z.number().min(0), z.number().min(0), z.number().min(0)]);

/** c measured in an engine (schema 2): what was timed, how, and on how busy a machine. */
export const costMeasurementSchema = z.strictObject({
  engine: z.literal('llama-cpp'),
  /** The target GGUF timed against. */
  target_model: z.string(),
  /** Output rows of the draft as timed (its own, reduced vocabulary where it has one). */
  draft_vocab_size: z.number().int().min(1),
  /** Precision of the temporary draft GGUF. */
  weights: z.literal('f32'),
  threads: z.number().int().min(1),
  context_size: z.number().int().min(1),
  /** Tokens in the cache while timing. */
  context_tokens: z.number().int().min(1),
  steps_per_run: z.number().int().min(1),
  runs: z.number().int().min(1),
  warmup_runs: z.number().int().min(0),
  /** Median ms of one batch-1 greedy decode step of the draft. */
  draft_step_ms: z.number().min(0),
  /** Median ms of one batch-1 greedy decode step of the target. */
  target_step_ms: z.number().min(0),
  /** Median ms of one target pass verifying k drafts (k + 1 tokens), k = 1..k_max. */
  target_verify_ms_by_k: z.array(z.number().min(0)),
  /** v_k = verification / target step (median of per-run ratios): a step costs k·c + v_k. */
  verify_cost_by_k: z.array(z.number().min(0)),
  /** c = draft step / target step (median of per-run ratios). */
  cost_ratio: z.number().min(0),
  /** os.loadavg() (1, 5, 15 min) before and after timing. */
  load_average: z.strictObject({ before: loadAverage, after: loadAverage }),
  cpus: z.number().int().min(1),
  cpu_model: z.string(),
});

const ratio = z.number().min(0).max(1).nullable();

export const byKSchema = z.strictObject({
  k: z.number().int().min(1),
  /** Mean acceptance length: tokens / target steps. */
  tau: z.number().min(1),
  /** Accepted / drafted tokens. */
  acceptance_rate: ratio,
  /** τ / (k·c + v_k); v_k = 1 unless the cost was measured (then the target's k + 1-token verification / one decode step). */
  speedup: z.number().min(0),
  /** (1 − α^(k+1)) / ((1 − α)(k·c + v_k)) with α = this k's acceptance rate. */
  speedup_closed_form: z.number().min(0).nullable(),
  /** (1 + Σ_{i≤k} Π_{j≤i} β_j) / (k·c + v_k) with the conditional rates β of the k_max run. */
  speedup_per_position: z.number().min(0),
  steps: z.number().int().min(0),
  drafted: z.number().int().min(0),
  accepted: z.number().int().min(0),
});

export const sliceSchema = z.strictObject({
  dimension: z.enum(['source_file', 'turn_index', 'finish_reason', 'tag']),
  value: z.string(),
  rows: z.number().int().min(0),
  tokens: z.number().int().min(0),
  hit_rate: ratio,
  /** τ for k = 1..k_max. */
  tau: z.array(z.number().min(1)),
  best_k: z.number().int().min(1),
  best_speedup: z.number().min(0),
});

export const candidateSchema = z.strictObject({
  name: z.string(),
  kind: z.enum(['draft', 'prompt-lookup', 'suffix']),
  /** The draft checkpoint directory (drafts only). */
  path: z.string().nullable(),
  cost_ratio: z.number().min(0),
  /** `given` (config / --cost-ratio), `measured` (cost_measurement) or `model-free` (0: no forward pass). */
  cost_ratio_source: z.enum(['given', 'measured', 'model-free']),
  /** How c was measured (drafts with eval.cost.engine llama-cpp), else null. */
  cost_measurement: costMeasurementSchema.nullable(),
  /**
   * v_k for k = 1..k_max used in the speed-up: the target's measured verification cost (for a
   * model-free method, that of the first measured draft: the target pays it whoever proposes);
   * null when nothing was measured (v_k = 1).
   */
  verify_cost_by_k: z.array(z.number().min(0)).nullable(),
  /** Teacher-forced top-1 agreement (first proposed token = target token). */
  greedy_hit_rate: ratio,
  by_k: z.array(byKSchema),
  best_k: z.number().int().min(1),
  best_speedup: z.number().min(0),
  /** Per draft position at k = k_max. */
  position_acceptance: z.array(z.strictObject({ position: z.number().int().min(1), conditional: ratio, unconditional: ratio, drafted: z.number().int().min(0) })),
  /** Σ min(p, q) per position, averaged, where the target's top-k exists (drafts only). */
  sampling_acceptance: z
    .strictObject({
      positions: z.number().int().min(0),
      lower: z.number().min(0).max(1),
      upper: z.number().min(0).max(1),
      /** Mean target probability outside the stored top-k (what the bound leaves open). */
      unknown_target_mass: z.number().min(0).max(1),
    })
    .nullable(),
  slices: z.array(sliceSchema),
  /** Per conversation, for bootstrap intervals in `fireopt compare`. */
  conversations: z.array(z.strictObject({ id: z.string(), rows: z.number().int().min(1), tokens: z.number().int().min(0), steps: z.array(z.number().int().min(0)) })),
  throughput: z.strictObject({ seconds: z.number().min(0), tokens_per_min: z.number().min(0) }),
});

export const reportSchema = z.strictObject({
  kind: z.literal(REPORT_KIND),
  schema_version: z.literal(REPORT_SCHEMA_VERSION),
  fireopt_version: z.string(),
  created_at: z.string(),
  k_max: z.number().int().min(1),
  data: z.strictObject({
    path: z.string(),
    split: z.enum(['heldout', 'train']),
    rows: z.number().int().min(0),
    conversations: z.number().int().min(0),
    tokens: z.number().int().min(0),
    /** sha256 of the evaluated Arrow file: compare refuses reports on different data. */
    sha256: z.string(),
    /** Rows with top-k target log-probabilities. */
    rows_with_top_k: z.number().int().min(0),
    /** Completion tokens the suffix speculator was built from (train split). */
    suffix_train_tokens: z.number().int().min(0),
    /** Identity of the tokenizer the targets were distilled with (null: targets older than the record). */
    tokenizer: z
      .strictObject({
        sha256: z.string(),
        vocab_size: z.number().int(),
        bos_id: z.number().int().nullable(),
        eos_id: z.number().int().nullable(),
      })
      .nullable(),
  }),
  /** The candidate first, then the baselines, in the order given. */
  candidates: z.array(candidateSchema).min(1),
  /** The candidate with the largest best-k speed-up. */
  winner: z.string(),
  config: z.unknown(),
});

export type EvalReport = z.infer<typeof reportSchema>;
export type CandidateReport = z.infer<typeof candidateSchema>;
export type SliceReport = z.infer<typeof sliceSchema>;
export type CostMeasurement = z.infer<typeof costMeasurementSchema>;
