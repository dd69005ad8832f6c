/**
 * Opening a target, the one way distill, synth and the pipeline all do it: the API key (read by
 * the CLI from the variable `api_key_env` names), the model files checked before any work, the
 * tokenizer and chat template resolved and checked against the target's own, and an engine whose
 * retries and backend choice are reported through the progress sink.
 */
import { existsSync, statSync } from 'node:fs';
import { ConfigError, InputError } from '../errors.js';
import { GGUF_MAGIC } from '../formats/gguf.js';
import { readFileHead } from '../formats/load-model.js';
import type { ProgressSink } from '../progress.js';
import { checkSameTokenizer, tokenizerIdentity } from '../tokenizer/identity.js';
import { loadTokenizer } from '../tokenizer/load.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { TargetConfig } from './config.js';
import { createTargetEngine } from './create.js';
import type { TargetEngine } from './engine.js';
import { tfjsTargetTokenizer } from './tfjs/tokenizer.js';
import { resolveTargetTokenizer, type TargetTokenizer, type TokenizerSettings } from './tokenizer.js';

export interface OpenTargetDeps {
  /** The key's value for an `openai` target (see `readTargetApiKey`). */
  apiKey?: string;
  progress: ProgressSink;
}

export interface OpenedTarget extends TargetTokenizer {
  /** Opens the engine (the caller closes it); undefined without a target (distill `traces` mode). */
  openEngine?: () => Promise<TargetEngine>;
}

/**
 * The API key of an `openai` target from `env` (the CLI passes `process.env`); undefined for other
 * engines or when no variable is named. A named variable that is unset is a config error.
 */
export function readTargetApiKey(
  target: TargetConfig | undefined,
  env: Readonly<Record<string, string | undefined>>,
): string | undefined {
  if (target?.engine !== 'openai' || !target.api_key_env) return undefined;
  const apiKey = env[target.api_key_env];
  if (!apiKey) throw new ConfigError(`target.api_key_env: the environment variable ${target.api_key_env} is not set`);
  return apiKey;
}

/** Refuse a target whose model is missing (or, for llama-cpp, is not a GGUF), before any work starts. */
export function checkTargetFiles(target: TargetConfig | undefined): void {
  if (!target || target.engine === 'openai') return;
  if (!existsSync(target.model)) {
    throw new InputError(
      `target.model: ${target.model}: model not found`,
      'check the path (--target-model or target.model in the config)',
      'E_TARGET_MODEL_MISSING',
    );
  }
  if (target.engine === 'llama-cpp' && statSync(target.model).isFile()) {
    const head = readFileHead(target.model, 4);
    if (head.length < 4 || head.readUInt32LE(0) !== GGUF_MAGIC) {
      throw new InputError(
        `target.model: ${target.model}: not a GGUF file (bad magic ${JSON.stringify(head.toString('latin1'))}, ` +
          'expected "GGUF")',
        'the llama-cpp engine reads GGUF models; convert the model, or use engine: tfjs',
      );
    }
  }
}

/** Resolve the target's tokenizer and template and prepare its engine, reporting through `deps.progress`. */
export async function openTarget(
  target: TargetConfig,
  settings: TokenizerSettings,
  deps: OpenTargetDeps,
): Promise<OpenedTarget & { openEngine: () => Promise<TargetEngine> }>;
export async function openTarget(
  target: TargetConfig | undefined,
  settings: TokenizerSettings,
  deps: OpenTargetDeps,
): Promise<OpenedTarget>;
export async function openTarget(
  target: TargetConfig | undefined,
  settings: TokenizerSettings,
  deps: OpenTargetDeps,
): Promise<OpenedTarget> {
  checkTargetFiles(target);
  const resolved = await resolveTargetTokenizer(settings, target);
  if (settings.tokenizer !== 'auto') await checkAgainstTargetTokenizer(target, resolved);
  deps.progress({ kind: 'log', level: 'info', message: `chat template: ${resolved.templateSource}` });
  if (!target) return resolved;
  const openEngine = (): Promise<TargetEngine> =>
    createTargetEngine(target, {
      apiKey: deps.apiKey,
      tokenizer: resolved.tokenizer,
      onRetry: (e) => {
        const message = `retrying ${e.path} (attempt ${e.attempt}): ${e.reason}`;
        deps.progress({ kind: 'log', level: 'warn', message });
      },
      onReplicaChange: (e) => {
        const message =
          e.state === 'out'
            ? `target replica ${e.baseUrl} taken out${e.outMs === undefined ? '' : ` for ${e.outMs} ms`}: ${e.reason}`
            : `target replica ${e.baseUrl} is back in service`;
        deps.progress({ kind: 'log', level: e.state === 'out' ? 'warn' : 'info', message });
      },
      log: (line) => deps.progress({ kind: 'log', level: 'info', message: line }),
    });
  return { ...resolved, openEngine };
}

/**
 * A tokenizer given explicitly must be the one the target model itself tokenizes with: a table of
 * another model gives the targets wrong prompt ids. (An `openai` target does not say which it uses.)
 */
async function checkAgainstTargetTokenizer(target: TargetConfig | undefined, resolved: TargetTokenizer): Promise<void> {
  let own: { tokenizer: Tokenizer; source: string } | undefined;
  if (target?.engine === 'llama-cpp') own = { tokenizer: await loadTokenizer(target.model), source: target.model };
  else if (target?.engine === 'tfjs') own = await tfjsTargetTokenizer(target);
  if (!own || own.source === resolved.identity.source) return;
  const ownTokenizer = own.tokenizer;
  await checkSameTokenizer(
    {
      identity: tokenizerIdentity(ownTokenizer),
      label: `the target model's (${own.source})`,
      load: async () => ownTokenizer,
    },
    resolved.tokenizer,
    `distill.tokenizer ${resolved.identity.source}`,
    "distill.tokenizer (--tokenizer) must be the target model's own; leave it at auto for llama-cpp and tfjs targets",
  );
}
