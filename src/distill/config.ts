/**
 * The `distill` config section: how prompts become target token ids.
 *
 * ```yaml
 * distill:
 *   mode: regenerate      # regenerate | score | traces
 *   max_tokens: 256
 *   temperature: 0        # 0 = greedy
 *   top_logprobs: 8       # alternatives kept per position (0 = none)
 * ```
 */
import { z } from 'zod';

export const DISTILL_MODES = ['regenerate', 'score', 'traces'] as const;
export const TRUNCATE_PROMPT = ['error', 'left'] as const;

export const distillSchema = z
  .strictObject({
    dataset: z
      .string()
      .min(1)
      .optional()
      .describe("The ingested dataset directory to distill (or the command's argument)."),
    out: z.string().min(1).optional().describe('Output targets directory (or `--out`).'),
    mode: z
      .enum(DISTILL_MODES)
      .default('regenerate')
      .describe(
        "`regenerate` (`--mode`): the target writes each completion; `score`: keep the trace's completion and ask " +
          'the target for its log-probabilities over it (prompt-only rows are regenerated); `traces`: tokenize the ' +
          'trace completions as they are, with no target call (prompt-only rows are skipped).',
      ),
    max_tokens: z
      .number()
      .int()
      .positive()
      .default(256)
      .describe('Most tokens per generated completion (the stop token counts; `--max-tokens`).'),
    temperature: z.number().min(0).default(0).describe('Sampling temperature; 0 = greedy.'),
    top_p: z
      .number()
      .gt(0)
      .max(1)
      .default(1)
      .describe('Nucleus sampling: keep the most likely tokens up to this mass (1 = off).'),
    top_k: z.number().int().min(0).default(0).describe('Sample among the k most likely tokens (0 = off).'),
    seed: z.number().int().min(0).default(0).describe('Sampling seed.'),
    n: z.number().int().min(1).max(64).default(1).describe('Completions per prompt (sampled; use temperature > 0).'),
    top_logprobs: z
      .number()
      .int()
      .min(0)
      .max(64)
      .default(8)
      .describe('Top alternatives recorded per completion position (0 = none; `--top-logprobs`).'),
    stop_token_ids: z
      .array(z.number().int().min(0))
      .default([])
      .describe("Extra stop token ids, besides the model's own end-of-generation tokens."),
    chat_template: z
      .string()
      .min(1)
      .default('auto')
      .describe(
        "Chat template: `auto` uses the target's own (GGUF `tokenizer.chat_template`, or the tokenizer_config.json " +
          'beside a tokenizer.json); `none` joins message texts with blank lines (for base models); anything else is ' +
          'the path of a Jinja template file.',
      ),
    tokenizer: z
      .string()
      .min(1)
      .default('auto')
      .describe(
        "Tokenizer of the target (`--tokenizer`): `auto` reads it from the target's GGUF (llama-cpp engine); give a " +
          'GGUF, tokenizer.json or llama2.c tokenizer path for the `openai` engine and `traces` mode.',
      ),
    max_prompt_tokens: z
      .number()
      .int()
      .positive()
      .default(4096)
      .describe('Prompts longer than this many tokens fail (with the reason) instead of being cut.'),
    truncate_prompt: z
      .enum(TRUNCATE_PROMPT)
      .default('error')
      .describe(
        'A prompt longer than max_prompt_tokens: `error` fails the row (with the reason); `left` keeps its last ' +
          "max_prompt_tokens tokens, as serving engines truncate (vLLM's " +
          "truncate_prompt_tokens, HF's truncation_side " +
          'left), and counts the row in the summary and manifest (`--truncate-prompt`).',
      ),
    splits: z
      .array(z.enum(['train', 'heldout']))
      .min(1)
      .default(['train', 'heldout'])
      .describe('Which splits of the dataset to distill.'),
    limit: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('Process at most this many rows per split (0 = all): for quick trials (`--limit`).'),
    concurrency: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .default(4)
      .describe('Rows in flight at once (the engine bounds its own parallelism too).'),
    chunk_rows: z
      .number()
      .int()
      .min(1)
      .default(32)
      .describe('Completed rows per journal chunk: a crash loses at most the rows in flight and one chunk.'),
    max_failures: z
      .number()
      .min(0)
      .default(0.05)
      .describe('Fail the run (exit 1) above this many failed rows: a count (>= 1) or a fraction (< 1).'),
  })
  .prefault({});

export type DistillConfig = z.infer<typeof distillSchema>;
