/** Find the target's tokenizer and chat template from the config (no argv or environment here). */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError, InputError } from '../errors.js';
import { readGguf } from '../formats/gguf.js';
import { tokenizerIdentity, type TokenizerIdentity } from '../tokenizer/identity.js';
import { loadTokenizer } from '../tokenizer/load.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { sha256File } from '../util/hash.js';
import type { TargetConfig } from './config.js';
import { tfjsTargetTokenizer } from './tfjs/tokenizer.js';

/** The settings that choose the tokenizer and template (`distill.tokenizer`, `distill.chat_template`). */
export interface TokenizerSettings {
  /** A tokenizer file, or `auto`: the target's own. */
  tokenizer: string;
  /** A template file, `auto` (the tokenizer's own) or `none`. */
  chat_template: string;
}

/** What manifests record about the tokenizer: its file and the identity of its token table. */
export interface TokenizerRecord {
  source: string;
  /** sha256 of the file. */
  sha256: string;
  identity: TokenizerIdentity;
}

export interface TargetTokenizer {
  tokenizer: Tokenizer;
  /** Where it came from and what it is, recorded in the manifest. */
  identity: TokenizerRecord;
  /** Undefined: plain text rendering. */
  chatTemplate?: string;
  /** Where the template came from, for the log. */
  templateSource: string;
}

/** The target's tokenizer: `settings.tokenizer`, or the one the target's model file carries. */
export async function resolveTargetTokenizer(
  settings: TokenizerSettings,
  target: TargetConfig | undefined,
): Promise<TargetTokenizer> {
  let source = settings.tokenizer;
  let tokenizer: Tokenizer | undefined;
  if (source === 'auto') {
    if (target?.engine === 'llama-cpp') source = target.model;
    else if (target?.engine === 'tfjs') ({ tokenizer, source } = await tfjsTargetTokenizer(target));
    else
      throw new ConfigError(
        "distill.tokenizer: set it to the target's tokenizer (a GGUF or " +
          'tokenizer.json) — only the llama-cpp and tfjs engines can supply it',
        [],
      );
  }
  if (!existsSync(source)) throw new InputError(`${source}: tokenizer file not found`);
  tokenizer ??= await loadTokenizer(source);
  const identity = { source, sha256: await sha256File(source), identity: tokenizerIdentity(tokenizer) };
  const { chatTemplate, templateSource } = resolveChatTemplate(settings.chat_template, source);
  return { tokenizer, identity, chatTemplate, templateSource };
}

function resolveChatTemplate(
  setting: string,
  tokenizerSource: string,
): { chatTemplate?: string; templateSource: string } {
  if (setting === 'none') return { templateSource: 'none (plain text)' };
  if (setting !== 'auto') {
    if (!existsSync(setting)) throw new InputError(`${setting}: chat template file not found (distill.chat_template)`);
    return { chatTemplate: readFileSync(setting, 'utf8'), templateSource: setting };
  }
  const head = readFileSync(tokenizerSource).subarray(0, 4).toString('latin1');
  if (head === 'GGUF') {
    const template = readGguf(tokenizerSource).metadata.get('tokenizer.chat_template');
    if (typeof template === 'string' && template.trim())
      return { chatTemplate: template, templateSource: `${tokenizerSource} (tokenizer.chat_template)` };
    return { templateSource: `none: ${tokenizerSource} has no chat template (plain text)` };
  }
  const configPath = join(dirname(tokenizerSource), 'tokenizer_config.json');
  if (existsSync(configPath)) {
    const config = JSON.parse(readFileSync(configPath, 'utf8')) as { chat_template?: unknown };
    const template = config.chat_template;
    if (typeof template === 'string') return { chatTemplate: template, templateSource: configPath };
    if (Array.isArray(template)) {
      // Newer tokenizer_config.json files hold named templates: use the default one.
      const named = template.find((t: { name?: string }) => t.name === 'default') as { template?: string } | undefined;
      if (named?.template) return { chatTemplate: named.template, templateSource: `${configPath} (default)` };
    }
  }
  return { templateSource: 'none: no chat template found (plain text)' };
}
