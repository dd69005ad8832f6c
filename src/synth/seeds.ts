/** Read seed prompts from a text, JSONL or JSON file, or from an ingested traces dataset. */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { readManifest } from '../formats/manifest.js';
import { TRACES_KIND, TRACES_RERUN_HINT, TRACES_SCHEMA_VERSION, readTraceRows } from '../formats/traces-schema.js';

/**
 * The seed prompts of `path`, in file order, exact repeats dropped:
 * - a directory: an ingested dataset; each row's last user message;
 * - `.json`: an array, `.jsonl`: one value per line — a string, or an object with `prompt`,
 *   `instruction`, `question` or `text`, or `messages` / `conversations` (the first user turn);
 * - anything else: one prompt per non-blank line.
 */
export async function readSeedPrompts(path: string): Promise<string[]> {
  if (!existsSync(path)) throw new InputError(`${path}: seed prompts file not found`);
  const prompts: string[] = [];
  if (statSync(path).isDirectory()) {
    readManifest(path, TRACES_KIND, TRACES_SCHEMA_VERSION, TRACES_RERUN_HINT);
    for (const split of ['train', 'heldout']) {
      const file = join(path, `${split}.arrow`);
      if (!existsSync(file)) continue;
      for await (const row of readTraceRows(file)) {
        const user = row.messages.filter((m) => m.role === 'user').at(-1);
        if (user?.content) prompts.push(user.content);
      }
    }
  } else {
    const text = readFileSync(path, 'utf8');
    if (path.endsWith('.json')) {
      const values: unknown = parseJson(text, path);
      if (!Array.isArray(values)) throw new InputError(`${path}: expected a JSON array of seed prompts`);
      values.forEach((value, i) => prompts.push(seedText(value, `${path}[${i}]`)));
    } else if (path.endsWith('.jsonl')) {
      text.split('\n').forEach((line, i) => {
        if (line.trim()) prompts.push(seedText(parseJson(line, `${path}:${i + 1}`), `${path}:${i + 1}`));
      });
    } else {
      for (const line of text.split('\n')) if (line.trim()) prompts.push(line.trim());
    }
  }
  const unique = [...new Set(prompts.map((p) => p.trim()).filter((p) => p))];
  if (unique.length === 0) throw new InputError(`${path}: no seed prompts`);
  return unique;
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new InputError(`${where}: not JSON (${(error as Error).message})`);
  }
}

function seedText(value: unknown, where: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const record = value as Record<string, unknown>;
    for (const key of ['prompt', 'instruction', 'question', 'text'])
      if (typeof record[key] === 'string') return record[key];
    for (const key of ['messages', 'conversations']) {
      const turns = record[key];
      if (!Array.isArray(turns)) continue;
      for (const turn of turns as Array<Record<string, unknown>>) {
        const role = turn.role ?? turn.from;
        const content = turn.content ?? turn.value;
        if ((role === 'user' || role === 'human') && typeof content === 'string') return content;
      }
    }
  }
  throw new InputError(
    `${where}: a seed must be a string or an object with prompt, instruction, question, text or messages`,
  );
}
