/**
 * Settings of `fireopt synth`: how the target writes new prompts in the style of a few seeds
 * (self-instruct, Wang et al. 2023). The config's `synth` section (so `-c file.yaml` sets them);
 * the command's flags override it.
 *
 * ```yaml
 * synth:
 *   seed_prompts: seeds.txt
 *   n: 500
 *   out: out/synthetic
 *   temperature: 0.9
 * ```
 */
import { z } from 'zod';

const synthSettings = {
  seed_prompts: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Seed prompts (`--seed-prompts`): a text file (one per line), JSONL / JSON (strings or {prompt | instruction | ' +
        'question | text | messages}), or an ingested dataset directory.',
    ),
  n: z.number().int().positive().optional().describe('New prompts to write (`--n`).'),
  out: z.string().min(1).optional().describe('Output dataset directory, an ingest dataset (`--out`).'),
  examples_per_request: z
    .number()
    .int()
    .min(1)
    .max(32)
    .default(6)
    .describe(
      'Example prompts listed in each few-shot prompt (seeds, and after the first rounds two earlier synthetic ones; ' +
        '`--examples`).',
    ),
  samples_per_request: z
    .number()
    .int()
    .min(1)
    .max(64)
    .default(4)
    .describe('Completions drawn per few-shot prompt (`--samples`).'),
  concurrency: z
    .number()
    .int()
    .min(1)
    .max(256)
    .default(4)
    .describe('Few-shot prompts sent at once (the engine bounds its own parallelism too).'),
  max_tokens: z.number().int().positive().default(96).describe('Most tokens per written prompt.'),
  temperature: z.number().min(0).default(1).describe('Sampling temperature.'),
  top_p: z.number().gt(0).max(1).default(0.95).describe('Nucleus sampling mass (1 = off).'),
  top_k: z.number().int().min(0).default(0).describe('Sample among the k most likely tokens (0 = off).'),
  seed: z.number().int().min(0).default(0).describe('Sampling seed.'),
  min_chars: z
    .number()
    .int()
    .min(1)
    .default(12)
    .describe('Prompts shorter than this (characters, after trimming) are rejected.'),
  max_chars: z.number().int().min(1).default(2000).describe('Prompts longer than this (characters) are rejected.'),
  near_duplicate_threshold: z
    .number()
    .gt(0)
    .max(1)
    .default(0.7)
    .describe(
      'A prompt whose character 4-gram Jaccard similarity to a seed or an accepted prompt reaches this is a ' +
        'near-duplicate (`--similarity`).',
    ),
  max_completions: z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe('Give up after this many completions (0 = 20 × n) and write what was accepted.'),
};

/** The config's `synth` section: what to write may also come from the flags (--seed-prompts, --n, --out). */
export const synthSectionSchema = z.strictObject(synthSettings).prefault({});

/** The settings of one synth run: the section with the seeds, the count and the output all given. */
export const synthSchema = z.strictObject({
  ...synthSettings,
  seed_prompts: z.string().min(1),
  n: z.number().int().positive(),
  out: z.string().min(1),
});

export type SynthConfig = z.infer<typeof synthSchema>;
