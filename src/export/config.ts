/**
 * The `export` config section: which draft to export, in which formats, for which target.
 *
 * ```yaml
 * export:
 *   model: out/run/draft          # a draft checkpoint (what `fireopt train` writes)
 *   out: out/export               # replaced atomically
 *   format: all                   # hf | gguf | all
 *   dtype: f16                    # f32 | f16
 *   target: models/Llama-3.2-1B   # the target: HF folder, GGUF, llama2.c .bin, or a tokenizer GGUF
 *   serving_context: 8192         # the context the target is served with
 * ```
 */
import { z } from 'zod';

export const EXPORT_FORMATS = ['hf', 'gguf', 'all'] as const;
export const EXPORT_DTYPES = ['f32', 'f16'] as const;
/** Engines the preflight checks and the printed serving commands cover. */
export const SERVING_ENGINES = ['vllm', 'sglang', 'transformers', 'llama-cpp'] as const;
export type ServingEngine = (typeof SERVING_ENGINES)[number];

export const exportSchema = z
  .strictObject({
    model: z.string().min(1).optional().describe('The draft checkpoint directory (`--model`).'),
    out: z.string().min(1).optional().describe('Output directory, replaced atomically (`--out`).'),
    format: z
      .enum(EXPORT_FORMATS)
      .default('all')
      .describe(
        '`hf`: a Hugging Face folder (vLLM, SGLang, transformers); `gguf`: one GGUF file (llama.cpp); `all`: both ' +
          '(`--format`).',
      ),
    dtype: z
      .enum(EXPORT_DTYPES)
      .default('f32')
      .describe(
        "Weight precision of both formats (GGUF keeps norm weights in f32, as llama.cpp's converter does; `--dtype`).",
      ),
    target: z
      .string()
      .min(1)
      .optional()
      .describe(
        'The target the draft will serve beside (`--target`): a Hugging Face ' +
          'folder, a GGUF (a vocab-only one works), ' +
          'or a llama2.c checkpoint. Its vocab_size, special tokens, context and tokenizer are checked and copied; ' +
          "without it only the draft's own facts are used.",
      ),
    serving_context: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(
        "Context length the target is served with (default: the target's, else the draft's; `--serving-context`).",
      ),
    extend_context: z
      .boolean()
      .default(false)
      .describe(
        'Write a context longer than the draft was trained for (RoPE extrapolates; acceptance may drop past it).',
      ),
    engines: z
      .array(z.enum(SERVING_ENGINES))
      .min(1)
      .default([...SERVING_ENGINES])
      .describe('Engines to check and print commands for (those whose format is exported).'),
    name: z
      .string()
      .min(1)
      .optional()
      .describe(
        "File and model name of the export (default: the draft folder's name); sanitised to a file name (`--name`).",
      ),
    reference_prompts: z
      .number()
      .int()
      .min(0)
      .max(8)
      .default(4)
      .describe(
        'Prompts whose logits fireopt writes beside the HF export for scripts/gpu/check-hf-export.sh (0 = none).',
      ),
    backend: z
      .enum(['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'])
      .default('auto')
      .describe('tfjs backend for the reference logits and the row probe.'),
  })
  .prefault({});

export type ExportConfig = z.infer<typeof exportSchema>;
