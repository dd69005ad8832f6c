/**
 * Real traces for the pipeline tests, from ../shared/data: AlpacaEval instructions with
 * Llama-3-8B-Instruct's outputs (a general-assistant workload) and Taskmaster-4 coffee-ordering
 * dialogues (a narrow, repetitive one), written as trace files the way customers hand them over.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { sharedPath } from '../helpers/shared.js';

const ALPACA_LLAMA3 = 'data/alpaca_eval_outputs/Meta-Llama-3-8B-Instruct.json';
const TASKMASTER_00 = 'data/taskmaster4_coffee/data_00.json';
/** The ../shared files these writers read (for `haveShared`). */
export const PIPELINE_TRACES = [ALPACA_LLAMA3, TASKMASTER_00];

interface AlpacaOutput {
  instruction: string;
  output: string;
}

interface TaskmasterDialogue {
  conversation_id: string;
  utterances: Array<{ speaker: string; text: string }>;
}

/**
 * `count` AlpacaEval rows as Alpaca records; outputs cut after `maxChars` characters (at a word)
 * to keep the test small.
 */
export function writeAlpacaTraces(path: string, count: number, maxChars: number): void {
  const rows = JSON.parse(readFileSync(sharedPath(ALPACA_LLAMA3), 'utf8')) as AlpacaOutput[];
  const lines = rows.slice(0, count).map((r) => {
    const cut = r.output.length > maxChars ? r.output.slice(0, r.output.lastIndexOf(' ', maxChars)) : r.output;
    return JSON.stringify({ instruction: r.instruction, output: cut });
  });
  writeFileSync(path, lines.join('\n') + '\n');
}

/** `count` Taskmaster-4 coffee dialogues as OpenAI chat conversations (user / assistant turns). */
export function writeTaskmasterTraces(path: string, count: number, offset = 0): void {
  const dialogues = JSON.parse(readFileSync(sharedPath(TASKMASTER_00), 'utf8')) as TaskmasterDialogue[];
  const lines = dialogues.slice(offset, offset + count).map((d) => {
    const messages: Array<{ role: string; content: string }> = [];
    for (const u of d.utterances) {
      const role = u.speaker === 'user' ? 'user' : 'assistant';
      const last = messages[messages.length - 1];
      if (last?.role === role) last.content += ` ${u.text}`;
      else messages.push({ role, content: u.text });
    }
    return JSON.stringify({ id: d.conversation_id, messages });
  });
  writeFileSync(path, lines.join('\n') + '\n');
}
