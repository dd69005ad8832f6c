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
  engine: z.literal('llama-cpp').describe('The engine that timed it.'),
  target_model: z.string().describe('The target GGUF timed against.'),
  draft_vocab_size: z
    .number()
    .int()
    .min(1)
    .describe('Output rows of the draft as timed (its own, reduced vocabulary where it has one).'),
  weights: z.literal('f32').describe('Precision of the temporary draft GGUF.'),
  threads: z.number().int().min(1).describe('Threads of both llama.cpp contexts.'),
  context_size: z.number().int().min(1).describe('Context size of both contexts.'),
  context_tokens: z.number().int().min(1).describe('Tokens in the cache while timing.'),
  steps_per_run: z.number().int().min(1).describe('Calls per timed run.'),
  runs: z.number().int().min(1).describe('Timed runs (medians are taken over them).'),
  warmup_runs: z.number().int().min(0).describe('Untimed runs first.'),
  draft_step_ms: z.number().min(0).describe('Median ms of one batch-1 greedy decode step of the draft.'),
  target_step_ms: z.number().min(0).describe('Median ms of one batch-1 greedy decode step of the target.'),
  target_verify_ms_by_k: z
    .array(z.number().min(0))
    .describe('Median ms of one target pass verifying k drafts (k + 1 tokens), k = 1..k_max.'),
  verify_cost_by_k: z
    .array(z.number().min(0))
    .describe('v_k = verification / target step (median of per-run ratios): a step costs k·c + v_k.'),
  cost_ratio: z.number().min(0).describe('c = draft step / target step (median of per-run ratios).'),
  load_average: z
    .strictObject({
      before: loadAverage.describe('Before timing.'),
      after: loadAverage.describe('After timing.'),
    })
    .describe('os.loadavg() (1, 5, 15 min) before and after timing.'),
  cpus: z.number().int().min(1).describe('CPUs of the machine.'),
  cpu_model: z.string().describe("The CPU's model name."),
});

const ratio = z.number().min(0).max(1).nullable();

export const byKSchema = z.strictObject({
  k: z.number().int().min(1).describe('Draft tokens per step.'),
  tau: z.number().min(1).describe('Mean acceptance length: tokens / target steps.'),
  acceptance_rate: ratio.describe('Accepted / drafted tokens.'),
  speedup: z
    .number()
    .min(0)
    .describe(
      "τ / (k·c + v_k); v_k = 1 unless the cost was measured (then the target's k + 1-token verification / one " +
        'decode step).',
    ),
  speedup_closed_form: z
    .number()
    .min(0)
    .nullable()
    .describe("(1 − α^(k+1)) / ((1 − α)(k·c + v_k)) with α = this k's acceptance rate."),
  speedup_per_position: z
    .number()
    .min(0)
    .describe('(1 + Σ_{i≤k} Π_{j≤i} β_j) / (k·c + v_k) with the conditional rates β of the k_max run.'),
  steps: z.number().int().min(0).describe('Target steps (verification passes) of the simulation.'),
  drafted: z.number().int().min(0).describe('Draft tokens proposed.'),
  accepted: z.number().int().min(0).describe('Draft tokens accepted.'),
});

export const sliceSchema = z.strictObject({
  dimension: z
    .enum(['source_file', 'turn_index', 'finish_reason', 'tag'])
    .describe("What the slice groups by (`tag`: one `key=value` of the trace's metadata; turn indexes 5+ together)."),
  value: z.string().describe("The group's value."),
  rows: z.number().int().min(0).describe('Rows in the slice.'),
  tokens: z.number().int().min(0).describe('Completion tokens in the slice.'),
  hit_rate: ratio.describe('Greedy hit rate on the slice.'),
  tau: z.array(z.number().min(1)).describe('τ for k = 1..k_max.'),
  best_k: z.number().int().min(1).describe('The k with the largest speed-up on the slice.'),
  best_speedup: z.number().min(0).describe('The speed-up at that k.'),
});

const positionAcceptanceSchema = z.strictObject({
  position: z.number().int().min(1).describe('Draft position i (1-based).'),
  conditional: ratio.describe('P(draft i accepted | drafts 1…i−1 accepted).'),
  unconditional: ratio.describe('P(drafts 1…i all accepted).'),
  drafted: z.number().int().min(0).describe('Steps that drafted position i.'),
});

const conversationStepsSchema = z.strictObject({
  id: z.string().describe('The conversation id.'),
  rows: z.number().int().min(1).describe('Rows of the conversation.'),
  tokens: z.number().int().min(0).describe('Completion tokens of the conversation.'),
  steps: z.array(z.number().int().min(0)).describe('Target steps for k = 1..k_max.'),
});

export const candidateSchema = z.strictObject({
  name: z.string().describe('`draft:<dir name>`, `prompt-lookup`, `suffix` or `hybrid`.'),
  kind: z
    .enum(['draft', 'prompt-lookup', 'suffix', 'hybrid'])
    .describe('A draft model, a model-free method, or the hybrid of the suffix tree and a draft.'),
  path: z.string().nullable().describe('The draft checkpoint directory (drafts and the hybrid).'),
  cost_ratio: z
    .number()
    .min(0)
    .describe(
      "c: one draft forward pass / one target forward pass (the hybrid's draft pays it only in the steps it runs).",
    ),
  cost_ratio_source: z
    .enum(['given', 'measured', 'model-free'])
    .describe('`given` (config / --cost-ratio), `measured` (cost_measurement) or `model-free` (0: no forward pass).'),
  cost_measurement: costMeasurementSchema
    .nullable()
    .describe('How c was measured (drafts with eval.cost.engine llama-cpp), else null.'),
  verify_cost_by_k: z
    .array(z.number().min(0))
    .nullable()
    .describe(
      "v_k for k = 1..k_max used in the speed-up: the target's measured verification cost (for a model-free method, " +
        'that of the first measured draft: the target pays it whoever ' +
        'proposes); null when nothing was measured (v_k = ' +
        '1).',
    ),
  greedy_hit_rate: ratio.describe('Teacher-forced top-1 agreement (first proposed token = target token).'),
  by_k: z.array(byKSchema).describe('The simulated greedy speculative decoding, one entry per k = 1..k_max.'),
  best_k: z.number().int().min(1).describe('The k with the largest speed-up (the smallest on ties).'),
  best_speedup: z.number().min(0).describe('The speed-up at best_k.'),
  position_acceptance: z.array(positionAcceptanceSchema).describe('Per draft position at k = k_max.'),
  sampling_acceptance: z
    .strictObject({
      positions: z.number().int().min(0).describe("Positions with the target's top-k."),
      lower: z.number().min(0).max(1).describe('Σ min(p, q) over the top-k ids: the lower bound.'),
      upper: z.number().min(0).max(1).describe('The lower bound plus the mass the truncation leaves unknown.'),
      unknown_target_mass: z
        .number()
        .min(0)
        .max(1)
        .describe('Mean target probability outside the stored top-k (what the bound leaves open).'),
    })
    .nullable()
    .describe("Σ min(p, q) per position, averaged, where the target's top-k exists (drafts only)."),
  slices: z.array(sliceSchema).describe('Results by source file, turn index, finish reason and metadata tag.'),
  conversations: z
    .array(conversationStepsSchema)
    .describe('Per conversation, for bootstrap intervals in `fireopt compare`.'),
  hybrid: z
    .strictObject({
      draft: z.string().describe('The draft candidate it pairs with the suffix tree.'),
      min_match: z
        .number()
        .int()
        .min(1)
        .nullable()
        .describe(
          'The suffix tree answers where it matched a context suffix of at least this many tokens (null: never).',
        ),
      chosen_by: z
        .enum(['given', 'calibration'])
        .describe('`given` (eval.hybrid.min_match) or `calibration` (the best on a slice of the train split).'),
      calibration_rows: z.number().int().min(0).describe('Train rows the threshold was chosen on (0 when given).'),
      trials: z
        .array(
          z.strictObject({
            min_match: z.number().int().min(1).nullable().describe('The threshold tried (null: the draft alone).'),
            best_k: z.number().int().min(1).describe('Its best k on the calibration rows.'),
            best_speedup: z.number().min(0).describe('Its expected speed-up there.'),
          }),
        )
        .describe('Every threshold tried on the calibration rows (empty when given).'),
      draft_share_by_k: z
        .array(z.number().min(0).max(1))
        .describe('Share of the steps that ran the draft model, for k = 1..k_max (the rest the suffix tree answered).'),
    })
    .optional()
    .describe('The hybrid speculator only: how it splits the work between the suffix tree and the draft.'),
  throughput: z
    .strictObject({
      seconds: z.number().min(0).describe('Seconds spent on this candidate.'),
      tokens_per_min: z.number().min(0).describe('Held-out target tokens evaluated per minute.'),
    })
    .describe('How fast the evaluation ran.'),
});

const spreadSchema = z.strictObject({
  median: z.number().min(0).describe('Median over the timed rounds.'),
  min: z.number().min(0).describe('Smallest.'),
  max: z.number().min(0).describe('Largest.'),
});

/** The measured speed-up (`eval.speedup`): real speculative decoding in llama.cpp against plain decoding. */
export const measuredSpeedupSchema = z.strictObject({
  engine: z.literal('llama-cpp').describe('The engine that decoded.'),
  engine_version: z.string().describe('The llama.cpp release and build.'),
  target_model: z.string().describe('The target GGUF.'),
  prompts: z.number().int().min(1).describe('Prompts decoded (sampled from the evaluated split).'),
  prompt_rows: z.array(z.string()).describe('The ids of the rows whose prompts were decoded.'),
  max_tokens: z.number().int().min(1).describe('New tokens per prompt at most.'),
  tokens: z.number().int().min(0).describe('Tokens generated per round (plain and speculative alike).'),
  threads: z.number().int().min(1).describe('Threads of each llama.cpp context.'),
  runs: z.number().int().min(1).describe('Timed rounds (plain and every configuration interleaved per prompt).'),
  warmup_runs: z.number().int().min(0).describe('Untimed rounds first.'),
  plain_tokens_per_second: spreadSchema.describe('Plain greedy decoding of the target alone.'),
  identical_to_plain: z
    .literal(true)
    .describe('Every speculative output equalled plain greedy decoding token for token (a mismatch is an error).'),
  costs_in_run: z
    .strictObject({
      plain_step_ms: z
        .number()
        .min(0)
        .describe('t: one plain decode step (plain wall time less its prefill, per token).'),
      target_prefill_ms: z
        .number()
        .min(0)
        .describe("P_target: the target's prompt prefills of one round (mean over every decoding of the round)."),
      verify_ms_by_drafted: z
        .array(z.number().min(0))
        .describe(
          'v_d in ms for d = 0..max k: one target verification of d drafts, over every candidate and k of the round ' +
            '(a least-squares line in d where none was made).',
        ),
      verify_cost_by_drafted: z.array(z.number().min(0)).describe('v_d / t: in plain decode steps.'),
    })
    .describe(
      "The cost model's shared terms as the rounds paid them (median over the timed rounds of each round's fit): " +
        'a decoding costs P_target + P_draft + Σ_d n_d·(v_d + d·e + o).',
    ),
  load_average: z
    .strictObject({ before: loadAverage.describe('Before.'), after: loadAverage.describe('After.') })
    .describe('os.loadavg() (1, 5, 15 min) before and after.'),
  cpus: z.number().int().min(1).describe('CPUs of the machine.'),
  cpu_model: z.string().describe("The CPU's model name."),
  candidates: z
    .array(
      z.strictObject({
        name: z.string().describe('The candidate (as in `candidates`).'),
        costs_in_run: z
          .strictObject({
            draft_prefill_ms: z
              .number()
              .min(0)
              .describe("P_draft: the draft model's prompt prefills of one round (0: model-free)."),
            draft_evaluation_ms: z
              .number()
              .min(0)
              .describe('e: one draft-model evaluation, over every k (0: model-free).'),
            cost_ratio: z.number().min(0).describe('e / t: c as the rounds paid it.'),
            step_overhead_ms: z
              .number()
              .min(0)
              .describe(
                "o: a step's time outside target and draft-model calls (KV-cache erases, a model-free proposer's " +
                  'own work, JavaScript), over every k.',
              ),
          })
          .describe("This candidate's terms of the cost model (median over the timed rounds)."),
        by_k: z
          .array(
            z.strictObject({
              k: z.number().int().min(1).describe('Draft tokens per step at most.'),
              tau: z.number().min(1).describe('Measured τ: tokens / target verification passes.'),
              simulated_tau: z.number().min(1).describe("The simulator's τ on the same prompts and outputs."),
              predicted_speedup: z
                .number()
                .min(0)
                .describe(
                  "The cost model's speed-up from the simulated step counts and the costs paid in the same rounds " +
                    '(`costs_in_run`; median over the rounds).',
                ),
              predicted_speedup_cost_phase: z
                .number()
                .min(0)
                .describe(
                  "The same from this candidate's c and v_k of `candidates` (given, or timed in eval's cost phase): " +
                    'Σ tokens / Σ_steps (d·c + v_d).',
                ),
              speedup: spreadSchema.describe('Plain wall time / speculative wall time, per round.'),
              measured_over_predicted: z.number().min(0).describe('Median measured speed-up / predicted.'),
              tokens_per_second: spreadSchema.describe('Speculative decoding.'),
              steps: z.number().int().min(0).describe('Target verification passes per round.'),
              drafted: z.number().int().min(0).describe('Draft tokens proposed per round.'),
              accepted: z.number().int().min(0).describe('Draft tokens accepted per round.'),
              draft_evaluations: z.number().int().min(0).describe('Draft-model evaluations per round (0: model-free).'),
              draft_ms: z.number().min(0).describe('Median ms per round spent drafting.'),
              target_ms: z.number().min(0).describe('Median ms per round in target verification passes.'),
              wall_ms: z.number().min(0).describe('Median ms per round in all (prompt prefill included).'),
              verify_cost_in_run: z
                .number()
                .min(0)
                .describe(
                  'Mean target verification pass of this run / t (one plain decode step): v as the ' +
                    'decoding paid it, beside the separately timed v_k.',
                ),
              draft_cost_in_run: z
                .number()
                .min(0)
                .describe('Mean draft evaluation of this run / t: c as paid (0: model-free).'),
            }),
          )
          .describe('One entry per measured k.'),
      }),
    )
    .describe('Per candidate, per k.'),
});

export const reportSchema = z.strictObject({
  kind: z.literal(REPORT_KIND).describe('Always `eval-report`.'),
  schema_version: z
    .literal(REPORT_SCHEMA_VERSION)
    .describe('Reports of another version are refused with a hint to re-run `fireopt eval`.'),
  fireopt_version: z.string().describe('The fireopt that wrote the report.'),
  created_at: z.string().describe('When the report was written (ISO 8601).'),
  k_max: z.number().int().min(1).describe('The largest k simulated (8).'),
  data: z
    .strictObject({
      path: z.string().describe('The targets file evaluated.'),
      split: z.enum(['heldout', 'train']).describe('The split evaluated.'),
      rows: z.number().int().min(0).describe('Rows evaluated.'),
      conversations: z.number().int().min(0).describe('Conversations among them.'),
      tokens: z.number().int().min(0).describe('Completion tokens evaluated.'),
      sha256: z.string().describe('sha256 of the evaluated Arrow file: compare refuses reports on different data.'),
      rows_with_top_k: z.number().int().min(0).describe('Rows with top-k target log-probabilities.'),
      suffix_train_tokens: z
        .number()
        .int()
        .min(0)
        .describe('Completion tokens the suffix speculator was built from (train split).'),
      tokenizer: z
        .strictObject({
          sha256: z.string().describe('sha256 of the token table (pieces and special flags).'),
          vocab_size: z.number().int().describe('Tokens in the vocabulary.'),
          bos_id: z.number().int().nullable().describe('Beginning-of-sequence id.'),
          eos_id: z.number().int().nullable().describe('End-of-sequence id.'),
        })
        .nullable()
        .describe('Identity of the tokenizer the targets were distilled with (null: targets older than the record).'),
    })
    .describe('The data every candidate was measured on.'),
  candidates: z.array(candidateSchema).min(1).describe('The candidate first, then the baselines, in the order given.'),
  winner: z.string().describe('The candidate with the largest best-k speed-up.'),
  measured: measuredSpeedupSchema
    .nullable()
    .default(null)
    .describe('The measured speed-up (`--measure-speedup llama-cpp`), else null.'),
  config: z.unknown().describe('The resolved config.'),
});

export type EvalReport = z.infer<typeof reportSchema>;
export type CandidateReport = z.infer<typeof candidateSchema>;
export type SliceReport = z.infer<typeof sliceSchema>;
export type CostMeasurement = z.infer<typeof costMeasurementSchema>;
export type MeasuredSpeedup = z.infer<typeof measuredSpeedupSchema>;
