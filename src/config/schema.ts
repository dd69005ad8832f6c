/**
 * The one typed fireopt config. A YAML file (plus `--set key.path=value` overrides) is validated
 * once, at the CLI edge, against this schema: unknown keys are rejected and every problem is
 * reported with its path. Each stage reads only its own section.
 */
import { z } from 'zod';
import { distillSchema } from '../distill/config.js';
import { evalSchema } from '../evaluate/config.js';
import { exportSchema } from '../export/config.js';
import { targetSchema } from '../targets/config.js';
import { trainSchema } from '../train/config.js';
import { pipelineSections } from '../pipeline/config.js';

export const INGEST_FORMATS = [
  'auto',
  'openai-chat',
  'openai-log',
  'openai-batch',
  'sharegpt',
  'prompt-completion',
  'prompts',
] as const;

export const ingestSchema = z
  .strictObject({
    /** Trace files, globs, or `-` for stdin (command-line files replace these). */
    inputs: z.array(z.string().min(1)).default([]),
    /** Output dataset directory (written atomically; `--out` replaces it). */
    out: z.string().min(1).optional(),
    /** Input format; `auto` detects it per file from its first record (`.txt` files: one prompt per line). */
    format: z.enum(INGEST_FORMATS).default('auto'),
    /** Fraction of conversations put in the held-out split (by a hash of the conversation id). */
    heldout: z.number().min(0).max(1).default(0.1),
    /** Keep identical samples (same context and completion) once. */
    dedup: z.boolean().default(true),
    /** Mask e-mails, phone numbers, card numbers, IP addresses and secrets. */
    redact: z.boolean().default(false),
    /** Fail the run (exit 1) above this many rejected lines: a count (>= 1) or a fraction (< 1). */
    max_rejected: z.number().min(0).default(0.05),
    /** Lines (or JSON array elements) longer than this many bytes are rejected as oversized. */
    max_line_bytes: z.number().int().positive().default(16 * 1024 * 1024),
    /** Rows per Arrow record batch. */
    batch_rows: z.number().int().positive().default(2048),
    /** OpenAI Batch API input files (JSONL with custom_id and body) joined to batch output lines by custom_id. */
    batch_inputs: z.array(z.string()).default([]),
    /** Salt for the split hash; change it only to draw a new split on purpose. */
    split_salt: z.string().default('fireopt-split-v1'),
  })
  .prefault({});

export const configSchema = z
  .strictObject({
    /** Free-form name recorded in manifests. */
    name: z.string().default('fireopt'),
    ingest: ingestSchema,
    /** The target model that distill runs (absent: distill can only run in `traces` mode). */
    target: targetSchema.optional(),
    distill: distillSchema,
    eval: evalSchema,
    train: trainSchema,
    export: exportSchema,
    ...pipelineSections,
  })
  .prefault({});

export type FireoptConfig = z.infer<typeof configSchema>;
export type IngestConfig = z.infer<typeof ingestSchema>;
