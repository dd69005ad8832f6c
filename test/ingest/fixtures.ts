/**
 * Ingest test fixtures: real traces from ../shared/data rewritten, inside each test, into the input
 * formats fireopt ingest reads. Nothing here is copied into the repository.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadConfig } from '../../src/config/load.js';
import type { FireoptConfig } from '../../src/config/schema.js';
import { readTraceRows, type TraceRow } from '../../src/formats/traces-schema.js';
import { sharedPath } from '../helpers/shared.js';

export interface AlpacaOutput {
  dataset: string;
  instruction: string;
  output: string;
  generator: string;
}

export interface TaskmasterDialogue {
  conversation_id: string;
  utterances: Array<{ index: number; speaker: 'user' | 'assistant'; text: string }>;
}

export interface BfclQuestion {
  id: string;
  question: Array<Array<{ role: string; content: string }>>;
  function: Array<{ name: string; description: string; parameters: unknown }>;
}

/** The ../shared files these fixtures read (for `haveShared`). */
export const INGEST_TRACES = [
  'data/alpaca_eval_outputs/gpt-4-turbo-2024-04-09.json',
  'data/taskmaster4_coffee/data_00.json',
  'data/taskmaster4_coffee/data_01.json',
  'data/bfcl/BFCL_v4_simple_python.json',
  'data/bfcl/possible_answer/BFCL_v4_simple_python.json',
];

export const alpacaPath = (): string => sharedPath(INGEST_TRACES[0]);
export const alpaca = (): AlpacaOutput[] => JSON.parse(readFileSync(alpacaPath(), 'utf8')) as AlpacaOutput[];
export const taskmaster = (part = '00'): TaskmasterDialogue[] =>
  JSON.parse(readFileSync(sharedPath(`data/taskmaster4_coffee/data_${part}.json`), 'utf8')) as TaskmasterDialogue[];
export const bfcl = (name: string): BfclQuestion[] =>
  jsonLines<BfclQuestion>(readFileSync(sharedPath(`data/bfcl/${name}.json`), 'utf8'));
export const bfclAnswers = (
  name: string,
): Array<{ id: string; ground_truth: Array<Record<string, Record<string, unknown[]>>> }> =>
  jsonLines(readFileSync(sharedPath(`data/bfcl/possible_answer/${name}.json`), 'utf8'));

function jsonLines<T>(text: string): T[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as T);
}

/** A fresh temp dir, removed by the returned cleanup. */
export function tempDir(prefix = 'fireopt-ingest-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function writeJsonl(path: string, records: readonly unknown[], gzip = false): string {
  const text = records.map((r) => JSON.stringify(r)).join('\n') + '\n';
  writeFileSync(path, gzip ? gzipSync(text) : text);
  return path;
}

// ---- conversions of real data into each input format ------------------------------------------

export const chatFromAlpaca = (rows: readonly AlpacaOutput[]) =>
  rows.map((r) => ({
    messages: [
      { role: 'user', content: r.instruction },
      { role: 'assistant', content: r.output },
    ],
    model: r.generator,
  }));

export const promptCompletionFromAlpaca = (rows: readonly AlpacaOutput[]) =>
  rows.map((r) => ({ prompt: r.instruction, completion: r.output }));

/** Gateway logs: one call per line, with usage and a unix `created` time. */
export const logsFromAlpaca = (rows: readonly AlpacaOutput[]) =>
  rows.map((r, i) => ({
    request: {
      model: r.generator,
      messages: [
        { role: 'system', content: 'You are a helpful assistant.' },
        { role: 'user', content: r.instruction },
      ],
      temperature: 0.7,
    },
    response: {
      id: `chatcmpl-${i}`,
      object: 'chat.completion',
      created: 1_712_000_000 + i,
      model: r.generator,
      choices: [{ index: 0, message: { role: 'assistant', content: r.output }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 10 + i, completion_tokens: 100 + i, total_tokens: 110 + 2 * i },
    },
  }));

export const batchInputFromAlpaca = (rows: readonly AlpacaOutput[]) =>
  rows.map((r, i) => ({
    custom_id: `req-${i}`,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: r.generator, messages: [{ role: 'user', content: r.instruction }], max_tokens: 1024 },
  }));

/** Batch output lines, in a different order than the input (as the Batch API returns them). */
export const batchOutputFromAlpaca = (rows: readonly AlpacaOutput[]) =>
  rows
    .map((r, i) => ({
      id: `batch_req_${i}`,
      custom_id: `req-${i}`,
      response: {
        status_code: 200,
        request_id: `r${i}`,
        body: {
          id: `chatcmpl-${i}`,
          created: 1_712_100_000,
          model: r.generator,
          choices: [{ index: 0, message: { role: 'assistant', content: r.output }, finish_reason: 'stop' }],
        },
      },
      error: null,
    }))
    .reverse();

export const chatFromTaskmaster = (dialogues: readonly TaskmasterDialogue[]) =>
  dialogues.map((d) => ({
    conversation_id: d.conversation_id,
    messages: [
      { role: 'system', content: 'You take coffee orders.' },
      ...d.utterances.map((u) => ({ role: u.speaker, content: u.text })),
    ],
  }));

export const shareGptFromTaskmaster = (dialogues: readonly TaskmasterDialogue[]) =>
  dialogues.map((d) => ({
    id: d.conversation_id,
    conversations: [
      { from: 'system', value: 'You take coffee orders.' },
      ...d.utterances.map((u) => ({ from: u.speaker === 'user' ? 'human' : 'gpt', value: u.text })),
    ],
  }));

const toolsOf = (q: BfclQuestion) => q.function.map((f) => ({ type: 'function', function: f }));

/** BFCL questions as prompts with tools (no completion: distill will generate it). */
export const promptsWithToolsFromBfcl = (questions: readonly BfclQuestion[]) =>
  questions.map((q) => ({ id: q.id, messages: q.question[0], tools: toolsOf(q) }));

/** BFCL questions answered with their ground-truth calls as OpenAI tool calls. */
export const toolCallChatFromBfcl = (questions: readonly BfclQuestion[], answers: ReturnType<typeof bfclAnswers>) => {
  const byId = new Map(answers.map((a) => [a.id, a.ground_truth]));
  return questions.map((q) => ({
    id: q.id,
    tools: toolsOf(q),
    messages: [
      ...q.question[0],
      {
        role: 'assistant',
        content: null,
        tool_calls: (byId.get(q.id) ?? []).map((call, i) => {
          const [name, args] = Object.entries(call)[0];
          const firstChoice = Object.fromEntries(Object.entries(args).map(([k, v]) => [k, v[0]]));
          return { id: `call_${i}`, type: 'function', function: { name, arguments: JSON.stringify(firstChoice) } };
        }),
      },
    ],
  }));
};

// ---- running and reading ----------------------------------------------------------------------

/** A resolved config for `inputs` → `out`, with optional overrides (as `--set` strings). */
export function ingestConfig(inputs: string[], out: string, sets: string[] = []): FireoptConfig {
  return loadConfig({ flags: { 'ingest.inputs': inputs, 'ingest.out': out }, sets });
}

export async function readRows(path: string): Promise<TraceRow[]> {
  const rows: TraceRow[] = [];
  for await (const row of readTraceRows(path)) rows.push(row);
  return rows;
}

export async function readDataset(dir: string): Promise<{ train: TraceRow[]; heldout: TraceRow[]; all: TraceRow[] }> {
  const train = await readRows(join(dir, 'train.arrow'));
  const heldout = await readRows(join(dir, 'heldout.arrow'));
  return { train, heldout, all: [...train, ...heldout] };
}

export function readJsonFile<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}
