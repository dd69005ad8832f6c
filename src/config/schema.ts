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
import { synthSectionSchema } from '../synth/config.js';

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
    inputs: z
      .array(z.string().min(1))
      .default([])
      .describe('Trace files, globs, or `-` for stdin (command-line files replace these).'),
    out: z.string().min(1).optional().describe('Output dataset directory (written atomically; `--out` replaces it).'),
    format: z
      .enum(INGEST_FORMATS)
      .default('auto')
      .describe(
        'Input format (`--format`); `auto` detects it per file from its first record (`.txt` files: one prompt per ' +
          'line).',
      ),
    heldout: z
      .number()
      .min(0)
      .max(1)
      .default(0.1)
      .describe('Fraction of conversations put in the held-out split, by a hash of the conversation id (`--heldout`).'),
    dedup: z
      .boolean()
      .default(true)
      .describe('Keep identical samples (same tools, context and completion) once (`--no-dedup` turns it off).'),
    redact: z
      .boolean()
      .default(false)
      .describe('Mask e-mails, phone numbers, card numbers, IP addresses and secrets (`--redact`).'),
    max_rejected: z
      .number()
      .min(0)
      .default(0.05)
      .describe(
        'Fail the run (exit 1) above this many rejected lines: a count (>= 1) or a fraction (< 1) (`--max-rejected`).',
      ),
    max_line_bytes: z
      .number()
      .int()
      .positive()
      .default(16 * 1024 * 1024)
      .describe(
        'Lines (or JSON array elements) longer than this many bytes are rejected as oversized (`--max-line-bytes`).',
      ),
    batch_rows: z.number().int().positive().default(2048).describe('Rows per Arrow record batch.'),
    batch_inputs: z
      .array(z.string())
      .default([])
      .describe(
        'OpenAI Batch API input files (JSONL with custom_id and body) joined to batch output lines by custom_id ' +
          '(`--batch-input`).',
      ),
    split_salt: z
      .string()
      .default('fireopt-split-v1')
      .describe('Salt for the split hash; change it only to draw a new split on purpose.'),
  })
  .prefault({});

export const configSchema = z
  .strictObject({
    name: z.string().default('fireopt').describe('Free-form name recorded in manifests.'),
    ingest: ingestSchema,
    target: targetSchema
      .optional()
      .describe('The target model that distill runs (absent: distill can only run in `traces` mode).'),
    distill: distillSchema,
    /** `fireopt synth`: the target writes new prompts in the style of seed prompts. */
    synth: synthSectionSchema,
    eval: evalSchema,
    train: trainSchema,
    export: exportSchema,
    ...pipelineSections,
  })
  .prefault({});

export type FireoptConfig = z.infer<typeof configSchema>;
export type IngestConfig = z.infer<typeof ingestSchema>;
