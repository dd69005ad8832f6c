/**
 * The `target` config section: which engine runs the target model, and its settings. One strict
 * object per engine, chosen by `engine`, so a key that belongs to another engine is reported.
 *
 * ```yaml
 * target:
 *   engine: llama-cpp            # a local GGUF through node-llama-cpp (the default)
 *   model: models/target.gguf
 *   context_size: 2048
 *   threads: 1                   # 0 = all cores; 1 is fastest for tiny models
 *   sequences: 1                 # requests evaluated in parallel (batched) in one context
 * ---
 * target:
 *   engine: openai               # any OpenAI-compatible server
 *   base_url: http://127.0.0.1:8000/v1
 *   model: meta-llama/Llama-3.1-8B-Instruct
 *   api: completions             # or chat (generation only; scoring needs completions)
 *   api_key_env: OPENAI_API_KEY  # the variable's name, never the key
 *   token_ids: auto              # server | tokenizer | auto: how completion token ids are known
 *   concurrency: 8
 *   requests_per_second: 0       # 0 = no rate limit
 *   timeout_ms: 60000
 *   max_retries: 6
 *   # base_urls: [http://10.0.0.1:8000/v1, http://10.0.0.2:8000/v1]   # a fleet of replicas instead
 * ---
 * target:
 *   engine: tfjs                 # fireopt's own model core (no native library)
 *   model: models/stories260K.bin  # llama2.c, safetensors (file or HF folder) or GGUF
 *   tokenizer: models/tok512.bin   # optional: default the checkpoint's own, or tokenizer.bin beside it
 *   backend: auto                # auto | tensorflow | webgpu | wasm | cpu
 * ```
 */
import { z } from 'zod';
import { ConfigError } from '../errors.js';

export const llamaCppTargetSchema = z.strictObject({
  engine: z.literal('llama-cpp'),
  model: z.string().min(1).describe('Path of the GGUF model file.'),
  context_size: z.number().int().positive().default(2048).describe('Context window in tokens (prompt + completion).'),
  threads: z.number().int().min(0).default(1).describe('CPU threads per evaluation; 0 = all cores.'),
  sequences: z
    .number()
    .int()
    .min(1)
    .max(64)
    .default(1)
    .describe('Requests evaluated concurrently (batched) in one context.'),
  batch_size: z.number().int().positive().default(512).describe('Tokens per batch when evaluating prompts.'),
  kv_cache_type: z
    .enum(['f16', 'f32'])
    .default('f16')
    .describe(
      "KV cache precision: `f16` (llama.cpp's default, as most servers run) or `f32` (exact: generated and " +
        'teacher-forced probabilities then agree to ~1e-6 instead of ~1e-3; ' +
        'flash attention is turned off with it, as ' +
        'it computes in F16).',
    ),
});

export const OPENAI_TOKEN_ID_MODES = ['auto', 'server', 'tokenizer'] as const;

export const openAiTargetSchema = z.strictObject({
  engine: z.literal('openai'),
  base_url: z
    .url()
    .optional()
    .describe('Base URL including the version prefix, e.g. `http://127.0.0.1:8000/v1` (or `base_urls` for a fleet).'),
  base_urls: z
    .array(z.url())
    .min(1)
    .optional()
    .describe(
      'Several replicas of one target (instead of `base_url`): requests go to the replica with the fewest ' +
        'outstanding; a failing replica is taken out with backoff and probed back in; every replica must serve the ' +
        'same model (checked before the first row). `concurrency` and `requests_per_second` apply per replica.',
    ),
  model: z.string().min(1).describe('Model name sent in every request and recorded in the manifest.'),
  api: z
    .enum(['completions', 'chat'])
    .default('completions')
    .describe('`completions` takes token-id prompts and can score; `chat` sends `messages` and only generates.'),
  prompt_format: z
    .enum(['token_ids', 'text'])
    .default('token_ids')
    .describe('Prompt as token ids (vLLM, SGLang, llama.cpp server, fireopt serve) or as text.'),
  api_key_env: z
    .string()
    .min(1)
    .optional()
    .describe('Name of the environment variable that holds the API key (the key itself never goes in a config).'),
  token_ids: z
    .enum(OPENAI_TOKEN_ID_MODES)
    .default('auto')
    .describe(
      '`server`: ask for `return_tokens_as_token_ids` (vLLM; tokens come back as `token_id:123`) and fail if the ' +
        'server ignores it; `tokenizer`: map the returned token strings to ids ' +
        'with the target tokenizer and check they ' +
        'decode back to the returned text; `auto`: ask for ids and fall back to ' +
        'the tokenizer when the server returns ' +
        'plain strings.',
    ),
  send_stop_token_ids: z
    .boolean()
    .default(true)
    .describe('Send `stop_token_ids` (vLLM, SGLang, fireopt serve); completions are also cut client-side.'),
  concurrency: z.number().int().min(1).max(1024).default(8).describe('Requests in flight at once.'),
  requests_per_second: z.number().min(0).default(0).describe('Requests started per second; 0 = unlimited.'),
  timeout_ms: z
    .number()
    .int()
    .positive()
    .default(60_000)
    .describe("One attempt's time limit; a request past it is aborted and retried."),
  max_retries: z
    .number()
    .int()
    .min(0)
    .default(6)
    .describe(
      'Retries after the first attempt (on 408, 409, 429, 5xx, timeouts, dropped connections, malformed bodies).',
    ),
  retry_min_delay_ms: z
    .number()
    .int()
    .min(0)
    .default(500)
    .describe('First backoff delay; doubles each retry (randomised ×1–2), capped at `retry_max_delay_ms`.'),
  retry_max_delay_ms: z.number().int().min(0).default(30_000).describe('Longest backoff delay between retries.'),
});

export const tfjsTargetSchema = z.strictObject({
  engine: z.literal('tfjs'),
  model: z
    .string()
    .min(1)
    .describe('llama2.c checkpoint, safetensors file or Hugging Face folder, or GGUF (F32/F16/BF16 tensors).'),
  tokenizer: z
    .string()
    .min(1)
    .optional()
    .describe(
      "Tokenizer file (llama2.c tokenizer.bin or a GGUF); default: the checkpoint's own, or tokenizer.bin beside a " +
        'llama2.c checkpoint.',
    ),
  backend: z
    .enum(['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'])
    .default('auto')
    .describe(
      'TensorFlow.js backend: `auto` takes tfjs-node-gpu, tfjs-node, webgpu (an adapter found), ' + 'then wasm.',
    ),
});

/** The `target` section. */
export const targetSchema = z
  .discriminatedUnion('engine', [llamaCppTargetSchema, openAiTargetSchema, tfjsTargetSchema])
  .superRefine((target, ctx) => {
    if (target.engine !== 'openai') return;
    if (target.base_url !== undefined && target.base_urls !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['base_urls'],
        message: 'target.base_url and target.base_urls are both set: use base_urls alone for several replicas',
      });
    } else if (target.base_url === undefined && target.base_urls === undefined) {
      ctx.addIssue({ code: 'custom', path: ['base_url'], message: 'set target.base_url (or base_urls for a fleet)' });
    }
    const seen = new Set<string>();
    for (const [i, url] of (target.base_urls ?? []).entries()) {
      const normalised = url.replace(/\/+$/, '');
      if (seen.has(normalised))
        ctx.addIssue({ code: 'custom', path: ['base_urls', i], message: `${url} is listed twice` });
      seen.add(normalised);
    }
  });

/** The replica URLs of an `openai` target: `base_urls`, or the one `base_url`. */
export function openAiBaseUrls(config: Pick<OpenAiTargetConfig, 'base_url' | 'base_urls'>): string[] {
  const urls = config.base_urls ?? (config.base_url === undefined ? [] : [config.base_url]);
  if (urls.length === 0) throw new ConfigError('target.base_url: set base_url (or base_urls for a fleet)');
  return urls;
}

export type TargetConfig = z.infer<typeof targetSchema>;
export type LlamaCppTargetConfig = z.infer<typeof llamaCppTargetSchema>;
export type OpenAiTargetConfig = z.infer<typeof openAiTargetSchema>;
export type TfjsTargetConfig = z.infer<typeof tfjsTargetSchema>;
