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
  /** Seed prompts: a text file (one per line), JSONL / JSON (strings or {prompt | instruction | question | text | messages}), or an ingested dataset directory. */
  seed_prompts: z.string().min(1).optional(),
  /** New prompts to write. */
  n: z.number().int().positive().optional(),
  /** Output dataset directory (an ingest dataset). */
  out: z.string().min(1).optional(),
  /** Example prompts listed in each few-shot prompt (seeds, and after the first rounds two earlier synthetic ones). */
  examples_per_request: z.number().int().min(1).max(32).default(6),
  /** Completions drawn per few-shot prompt. */
  samples_per_request: z.number().int().min(1).max(64).default(4),
  /** Few-shot prompts sent at once (the engine bounds its own parallelism too). */
  concurrency: z.number().int().min(1).max(256).default(4),
  /** Most tokens per written prompt. */
  max_tokens: z.number().int().positive().default(96),
  temperature: z.number().min(0).default(1),
  top_p: z.number().gt(0).max(1).default(0.95),
  top_k: z.number().int().min(0).default(0),
  seed: z.number().int().min(0).default(0),
  /** Prompts shorter or longer than this (characters, after trimming) are rejected. */
  min_chars: z.number().int().min(1).default(12),
  max_chars: z.number().int().min(1).default(2000),
  /** A prompt whose character 4-gram Jaccard similarity to a seed or an accepted prompt reaches this is a near-duplicate. */
  near_duplicate_threshold: z.number().gt(0).max(1).default(0.7),
  /** Give up after this many completions (0 = 20 × n) and write what was accepted. */
  max_completions: z.number().int().min(0).default(0),
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
