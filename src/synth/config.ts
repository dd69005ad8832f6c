/**
 * Settings of `fireopt synth`: how the target writes new prompts in the style of a few seeds
 * (self-instruct, Wang et al. 2023). Validated once by the command from its flags.
 */
import { z } from 'zod';

export const synthSchema = z.strictObject({
  /** Seed prompts: a text file (one per line), JSONL / JSON (strings or {prompt | instruction | question | text | messages}), or an ingested dataset directory. */
  seed_prompts: z.string().min(1),
  /** New prompts to write. */
  n: z.number().int().positive(),
  /** Output dataset directory (an ingest dataset). */
  out: z.string().min(1),
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
});

export type SynthConfig = z.infer<typeof synthSchema>;
