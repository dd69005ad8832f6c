/** Load a YAML config, apply `--set key.path=value` overrides, validate, and list every problem. */
import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { configSchema, type FireoptConfig } from './schema.js';

export interface ConfigSources {
  /** Path of a YAML file, if any. */
  file?: string;
  /** `key.path=value` strings; values are parsed as YAML scalars/flow values (`true`, `3`, `[a, b]`). */
  sets?: string[];
  /** Values from command-line flags, applied after the file and before `--set`. */
  flags?: Record<string, unknown>;
}

/** Read, merge and validate a config; throws ConfigError listing every problem with its path. */
export function loadConfig(sources: ConfigSources = {}): FireoptConfig {
  return loadWithSchema(configSchema, sources);
}

export function loadWithSchema<S extends z.ZodType>(schema: S, sources: ConfigSources): z.infer<S> {
  const where = sources.file ?? 'config';
  let raw: unknown = {};
  if (sources.file) raw = readYamlFile(sources.file);
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`${where}: the top level must be a mapping of keys to values`);
  }
  const merged = raw as Record<string, unknown>;
  for (const [dotted, value] of Object.entries(sources.flags ?? {})) {
    if (value !== undefined) setPath(merged, dotted, value);
  }
  for (const assignment of sources.sets ?? []) {
    const eq = assignment.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--set ${assignment}: expected key.path=value`);
    const key = assignment.slice(0, eq).trim();
    const text = assignment.slice(eq + 1);
    let value: unknown;
    try {
      value = text === '' ? '' : parseYaml(text);
    } catch {
      value = text;
    }
    setPath(merged, key, value);
  }
  const result = schema.safeParse(merged);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const path = issue.path.length ? issue.path.join('.') : '(top level)';
      return `${path}: ${issue.message}`;
    });
    throw new ConfigError(
      `${where}: invalid config (${problems.length} problem${problems.length > 1 ? 's' : ''})`,
      problems,
    );
  }
  return result.data;
}

function readYamlFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `${file}: cannot read config file (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
  try {
    return parseYaml(text, { prettyErrors: true });
  } catch (error) {
    if (error instanceof YAMLParseError) {
      const line = error.linePos?.[0];
      throw new ConfigError(
        `${file}${line ? `:${line.line}:${line.col}` : ''}: YAML syntax error: ${error.message.split('\n')[0]}`,
      );
    }
    throw error;
  }
}

function setPath(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let node: Record<string, unknown> = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (next === undefined || next === null) node[part] = {};
    else if (typeof next !== 'object' || Array.isArray(next)) {
      throw new ConfigError(`--set ${dotted}: '${part}' is not a section`);
    }
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]] = value;
}
