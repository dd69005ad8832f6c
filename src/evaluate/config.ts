/**
 * The `eval` config section: what `fireopt eval` measures and on which data.
 *
 * ```yaml
 * eval:
 *   model: out/draft          # a draft checkpoint, or prompt-lookup / suffix
 *   data: out/targets         # a distill output (targets) directory
 *   baselines: [prompt-lookup, suffix]
 *   cost_ratio: 0.05          # draft forward / target forward, given
 *   cost:                     # or measured: draft and target decode steps timed in llama.cpp
 *     engine: llama-cpp       # auto (default): measured when target_model is known, else cost_ratio
 *     target_model: target.gguf
 *     threads: 1
 * ```
 */
import { z } from 'zod';

/** Model-free speculators that `--model` / `--baseline` accept by name. */
export const MODEL_FREE_METHODS = ['prompt-lookup', 'suffix'] as const;

export const evalSchema = z
  .strictObject({
    /** The candidate: a draft checkpoint directory, or `prompt-lookup` / `suffix`. */
    model: z.string().min(1).optional(),
    /** A targets directory (what `fireopt distill` writes). */
    data: z.string().min(1).optional(),
    /** Which split to evaluate on; the suffix speculator is always built from `train`. */
    split: z.enum(['heldout', 'train']).default('heldout'),
    /** Other drafts or model-free methods measured on the same data. */
    baselines: z.array(z.string().min(1)).default([]),
    /** Output directory for report.json, report.md and the plots. */
    out: z.string().min(1).optional(),
    /** Cost of one draft forward pass relative to one target forward pass (draft models; model-free methods cost 0). */
    cost_ratio: z.number().min(0).default(0.05),
    /**
     * Where c comes from: `given` (cost_ratio) or `llama-cpp` (each draft written to a temporary F32
     * GGUF and timed against `target_model` in llama.cpp; the target's batched verification of k + 1
     * tokens is timed too and replaces the 1 in k·c + 1). `auto`: llama-cpp when the target GGUF is
     * known (`target_model`; in `fireopt run`, the target's or train.target_model), else given.
     */
    cost: z
      .strictObject({
        engine: z.enum(['auto', 'given', 'llama-cpp']).default('auto'),
        /** The target GGUF (llama-cpp). */
        target_model: z.string().min(1).optional(),
        /** Threads of both llama.cpp contexts. */
        threads: z.number().int().positive().default(1),
        /** Context size of both contexts. */
        context_size: z.number().int().positive().default(1024),
        /** Tokens already in the cache when the steps are timed. */
        context_tokens: z.number().int().positive().default(64),
        /** Decode steps (or verifications) per timed run. */
        steps: z.number().int().positive().default(32),
        /** Timed runs; the median is reported. */
        runs: z.number().int().positive().default(7),
        /** Untimed runs first. */
        warmup_runs: z.number().int().min(0).default(2),
      })
      .prefault({}),
    /** At most this many rows (0 = all): quick trials. */
    limit: z.number().int().min(0).default(0),
    /** tfjs backend for draft models. */
    backend: z.enum(['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu']).default('auto'),
    /** Most tokens (batch × padded length) per teacher-forced draft pass. */
    tokens_per_batch: z.number().int().positive().default(2048),
    /** Rows read and scored per chunk (memory stays bounded by it). */
    chunk_rows: z.number().int().positive().default(256),
    prompt_lookup: z
      .strictObject({
        max_ngram: z.number().int().min(1).default(3),
        min_ngram: z.number().int().min(1).default(1),
      })
      .prefault({}),
    suffix: z
      .strictObject({
        max_pattern: z.number().int().min(1).default(8),
        max_depth: z.number().int().min(2).default(16),
        min_token_probability: z.number().min(0).max(1).default(0.1),
      })
      .prefault({}),
    /** `fireopt compare`: bootstrap resamples over conversations. */
    bootstrap_samples: z.number().int().min(100).default(2000),
    /** `fireopt compare`: promote B only if the 95% CI of Δ speed-up lies above this margin. */
    margin: z.number().default(0),
    /** Seed of the bootstrap resampling. */
    seed: z.number().int().min(0).default(0),
  })
  .prefault({});

export type EvalConfig = z.infer<typeof evalSchema>;
