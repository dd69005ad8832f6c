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

/** The suffix tree paired with the evaluated draft (`--baseline hybrid`). */
export const HYBRID = 'hybrid';

export const evalSchema = z
  .strictObject({
    model: z
      .string()
      .min(1)
      .optional()
      .describe('The candidate: a draft checkpoint directory, or `prompt-lookup` / `suffix` (`--model`).'),
    data: z.string().min(1).optional().describe('A targets directory (what `fireopt distill` writes; `--data`).'),
    split: z
      .enum(['heldout', 'train'])
      .default('heldout')
      .describe(
        'Which split to evaluate on (`--split`); the suffix speculator is ' +
          'always built from `train` (so on `train` it has seen the completions).',
      ),
    baselines: z
      .array(z.string().min(1))
      .default([])
      .describe('Other drafts, model-free methods or `hybrid` measured on the same data (`--baseline`, repeatable).'),
    out: z.string().min(1).optional().describe('Output directory for report.json, report.md and the plots (`--out`).'),
    cost_ratio: z
      .number()
      .min(0)
      .default(0.05)
      .describe(
        'Cost of one draft forward pass relative to one target forward pass ' +
          '(draft models; model-free methods cost 0; `--cost-ratio`).',
      ),
    cost: z
      .strictObject({
        engine: z
          .enum(['auto', 'given', 'llama-cpp'])
          .default('auto')
          .describe(
            '`given`: c is `eval.cost_ratio`; `llama-cpp`: c measured per draft in llama.cpp (`--measure-cost ' +
              'llama-cpp`); `auto`: llama-cpp when the target GGUF is known (`target_model`; in `fireopt run`, the ' +
              "target's or `train.target_model`), else given.",
          ),
        target_model: z
          .string()
          .min(1)
          .optional()
          .describe('The target GGUF the drafts are timed against (`--target-model`).'),
        threads: z
          .number()
          .int()
          .positive()
          .default(1)
          .describe('Threads of both llama.cpp contexts (`--cost-threads`).'),
        context_size: z.number().int().positive().default(1024).describe('Context size of both contexts.'),
        context_tokens: z
          .number()
          .int()
          .positive()
          .default(64)
          .describe('Tokens already in the cache when the steps are timed.'),
        steps: z.number().int().positive().default(32).describe('Decode steps (or verifications) per timed run.'),
        runs: z.number().int().positive().default(7).describe('Timed runs; the median is reported.'),
        warmup_runs: z.number().int().min(0).default(2).describe('Untimed runs first.'),
      })
      .prefault({})
      .describe(
        'Where c comes from: `given` (cost_ratio) or `llama-cpp` (each draft written to a temporary F32 GGUF and ' +
          "timed against `target_model` in llama.cpp; the target's batched verification of k + 1 tokens is timed too " +
          'and replaces the 1 in k·c + 1).',
      ),
    speedup: z
      .strictObject({
        engine: z
          .enum(['off', 'llama-cpp'])
          .default('off')
          .describe(
            '`llama-cpp`: measure the real speed-up (`--measure-speedup llama-cpp`): each candidate decodes sampled ' +
              'prompts speculatively in llama.cpp against `eval.cost.target_model`, ' +
              'timed against plain greedy decoding.',
          ),
        k: z
          .array(z.number().int().min(1).max(8))
          .min(1)
          .default([1, 2, 4, 6, 8])
          .describe('Draft lengths measured (`--speedup-k 2,4`).'),
        prompts: z
          .number()
          .int()
          .positive()
          .default(8)
          .describe('Prompts decoded, sampled from the evaluated split (seeded by `eval.seed`).'),
        max_tokens: z.number().int().positive().default(64).describe('New tokens per prompt.'),
        threads: z.number().int().positive().default(1).describe('Threads of each llama.cpp context.'),
        runs: z
          .number()
          .int()
          .positive()
          .default(5)
          .describe('Timed rounds, plain and speculative interleaved; the median is reported (`--speedup-runs`).'),
        warmup_runs: z.number().int().min(0).default(1).describe('Untimed rounds first.'),
      })
      .prefault({})
      .describe(
        'Measured speed-up: real greedy speculative decoding in llama.cpp ' +
          '(drafts exported to GGUF, prompt lookup and ' +
          "suffix by fireopt's own proposers), with the output checked equal to plain greedy decoding.",
      ),
    limit: z.number().int().min(0).default(0).describe('At most this many rows (0 = all): quick trials.'),
    backend: z
      .enum(['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'])
      .default('auto')
      .describe('tfjs backend for draft models.'),
    tokens_per_batch: z
      .number()
      .int()
      .positive()
      .default(2048)
      .describe(
        'Most tokens (batch × padded length) per teacher-forced draft pass ' +
          '(also capped so its logits stay within 128 MiB).',
      ),
    chunk_rows: z
      .number()
      .int()
      .positive()
      .default(256)
      .describe('Rows read and scored per chunk (memory stays bounded by it).'),
    prompt_lookup: z
      .strictObject({
        max_ngram: z.number().int().min(1).default(3).describe('Longest n-gram matched.'),
        min_ngram: z.number().int().min(1).default(1).describe('Shortest n-gram matched.'),
      })
      .prefault({})
      .describe(
        "The prompt-lookup speculator (vLLM's `ngram`): the last `max_ngram`…`min_ngram` tokens matched at their " +
          'most recent earlier occurrence in the context.',
      ),
    suffix: z
      .strictObject({
        max_pattern: z.number().int().min(1).default(8).describe('Longest context suffix matched in the trie.'),
        max_depth: z.number().int().min(2).default(16).describe('Depth of the trie (tokens per stored continuation).'),
        min_token_probability: z
          .number()
          .min(0)
          .max(1)
          .default(0.1)
          .describe("Stop proposing where the continuation's frequency falls below this."),
      })
      .prefault({})
      .describe(
        "The suffix speculator (SuffixDecoding-style): a frequency-counted trie of the train split's completions " +
          "plus the request's own context; the longest matching suffix proposes its most frequent continuation.",
      ),
    hybrid: z
      .strictObject({
        min_match: z
          .number()
          .int()
          .min(1)
          .optional()
          .describe(
            'The suffix tree answers where it matched a context suffix of at least this many tokens, the draft ' +
              'elsewhere; unset: chosen on a slice of the train split.',
          ),
        calibration_rows: z
          .number()
          .int()
          .min(1)
          .default(200)
          .describe(
            'Train rows (every tenth) held out of the tree to choose `min_match` on; the tree is rebuilt without them.',
          ),
      })
      .prefault({})
      .describe(
        'The hybrid speculator (`--baseline hybrid`; SuffixDecoding with a ' +
          'draft): the suffix tree where its match is long enough, the evaluated draft elsewhere.',
      ),
    bootstrap_samples: z
      .number()
      .int()
      .min(100)
      .default(2000)
      .describe('`fireopt compare`: bootstrap resamples over conversations.'),
    margin: z
      .number()
      .default(0)
      .describe(
        '`fireopt compare` and the promotion gate: promote B only if the 95% CI of Δ speed-up lies above this margin ' +
          '(`--margin`).',
      ),
    seed: z.number().int().min(0).default(0).describe('Seed of the bootstrap resampling.'),
  })
  .prefault({});

export type EvalConfig = z.infer<typeof evalSchema>;
