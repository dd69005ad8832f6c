/**
 * The config sections of the whole loop (`fireopt run`, `fireopt drift`, the promotion gate and data
 * retention). The other stages keep their own sections; the pipeline reads them as they are.
 *
 * ```yaml
 * run:
 *   dir: runs/acme            # run directory: deployed/ 1-ingest/ … 7-promote/, run.json
 * drift:
 *   threshold: 0.1            # retraining is due when acceptance falls by more than 10%
 * promotion:
 *   release: release/acme     # where the deployed draft lives; a promoted draft is copied here
 * retention:
 *   enabled: true             # delete raw traces and intermediate data after a successful run
 * ```
 */
import { z } from 'zod';

/**
 * `accepted_tokens`: τ − 1, draft tokens accepted per target forward pass (τ itself always counts the
 * target's own token, which hides a falling acceptance); `acceptance_length`: τ; `hit_rate`: the
 * teacher-forced top-1 agreement.
 */
export const DRIFT_METRICS = ['accepted_tokens', 'acceptance_length', 'hit_rate'] as const;

export const runSchema = z
  .strictObject({
    dir: z
      .string()
      .min(1)
      .optional()
      .describe('The run directory: one numbered folder per stage, each with its `stage.json` (`--dir`).'),
    force: z
      .boolean()
      .default(false)
      .describe('Retrain even when the drift check finds the deployed draft still good (`--force`).'),
  })
  .prefault({});

export const driftSchema = z
  .strictObject({
    metric: z
      .enum(DRIFT_METRICS)
      .default('accepted_tokens')
      .describe(
        'What is compared with the value recorded when the deployed draft was promoted: `accepted_tokens` (τ − 1, ' +
          'draft tokens accepted per target pass), `acceptance_length` (τ) or `hit_rate`.',
      ),
    threshold: z
      .number()
      .min(0)
      .max(1)
      .default(0.1)
      .describe(
        'Retraining is due when the metric fell by more than this fraction of its recorded value (`--threshold`).',
      ),
  })
  .prefault({});

export const promotionSchema = z
  .strictObject({
    release: z
      .string()
      .min(1)
      .optional()
      .describe(
        'The release location (`--release`): the deployed draft (`draft/`), its ' +
          'export (`export/`), `report.json` and `promotion.json`.',
      ),
    incremental: z
      .boolean()
      .default(false)
      .describe('Start the new draft from the deployed one (`train.init: draft`) instead of from scratch.'),
    first_must_beat: z
      .enum(['none', 'prompt-lookup', 'suffix'])
      .default('none')
      .describe(
        'With nothing deployed yet, promote the first draft only if it beats this model-free method too (`none`: ' +
          'promote it).',
      ),
    beat_model_free: z
      .boolean()
      .default(true)
      .describe(
        "Never promote a draft whose expected speed-up is below prompt lookup's " +
          "or suffix decoding's (both are always " +
          'measured beside it). Turn off only to exercise the loop with a toy draft.',
      ),
  })
  .prefault({});

export const retentionSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        'After a successful run, delete what `delete_traces` and `delete_intermediate` name. Off by default: the ' +
          "customer's data is kept until they opt in.",
      ),
    delete_traces: z
      .boolean()
      .default(true)
      .describe('Delete the raw trace files named by `ingest.inputs` after a successful run.'),
    delete_intermediate: z
      .boolean()
      .default(true)
      .describe(
        'Delete the ingested dataset, the distillation targets and distill journal, and the training resume states ' +
          '(drafts, reports, exports and stage records stay).',
      ),
  })
  .prefault({});

/** The pipeline's top-level sections, spread into the one config schema. */
export const pipelineSections = {
  run: runSchema,
  drift: driftSchema,
  promotion: promotionSchema,
  retention: retentionSchema,
};

export type RunConfig = z.infer<typeof runSchema>;
export type DriftConfig = z.infer<typeof driftSchema>;
export type PromotionConfig = z.infer<typeof promotionSchema>;
export type RetentionConfig = z.infer<typeof retentionSchema>;
