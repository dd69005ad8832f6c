import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runIngest } from '../../src/ingest/index.js';
import type { IngestManifest } from '../../src/ingest/index.js';
import {
  alpaca,
  alpacaPath,
  INGEST_TRACES,
  batchInputFromAlpaca,
  batchOutputFromAlpaca,
  bfcl,
  bfclAnswers,
  chatFromAlpaca,
  chatFromTaskmaster,
  ingestConfig,
  logsFromAlpaca,
  promptCompletionFromAlpaca,
  promptsWithToolsFromBfcl,
  readDataset,
  readJsonFile,
  shareGptFromTaskmaster,
  taskmaster,
  tempDir,
  toolCallChatFromBfcl,
  writeJsonl,
  type TaskmasterDialogue,
} from './fixtures.js';
import { haveShared } from '../helpers/shared.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const at = (name: string) => join(tmp.dir, name);

// Read at collection time, so empty without ../shared (every test that uses them is skipped then).
const haveTraces = haveShared(...INGEST_TRACES);
const outputs = haveTraces ? alpaca() : [];
const dialogues = haveTraces ? taskmaster('00') : [];

/** Independent count of distinct (context, completion) samples in Taskmaster dialogues, as chat. */
function expectedTaskmasterSamples(ds: readonly TaskmasterDialogue[]): { total: number; distinct: number } {
  const keys = new Set<string>();
  let total = 0;
  for (const d of ds) {
    const texts = ['system:You take coffee orders.', ...d.utterances.map((u) => `${u.speaker}:${u.text}`)];
    d.utterances.forEach((u, i) => {
      if (u.speaker !== 'assistant') return;
      total++;
      keys.add(JSON.stringify(texts.slice(0, i + 2)));
    });
    if (d.utterances[d.utterances.length - 1].speaker !== 'assistant') {
      total++;
      keys.add(JSON.stringify([...texts, null]));
    }
  }
  return { total, distinct: keys.size };
}

describe.skipIf(!haveTraces)('ingest: every input format, built from real traces', () => {
  it('AlpacaEval outputs as prompt/completion JSONL, as the original JSON array, and as OpenAI chat', async () => {
    const jsonl = writeJsonl(at('pc.jsonl'), promptCompletionFromAlpaca(outputs));
    const chat = writeJsonl(at('chat.jsonl'), chatFromAlpaca(outputs));
    const summary = await runIngest(ingestConfig([jsonl, alpacaPath(), chat], at('alpaca-ds'), ['ingest.dedup=false']));
    expect(summary.records).toBe(3 * 805);
    expect(summary.rows.total).toBe(3 * 805);
    expect(summary.rows_by_format).toEqual({ 'prompt-completion': 2 * 805, 'openai-chat': 805 });
    expect(summary.inputs.map((i) => [i.container, i.format])).toEqual([
      ['lines', 'prompt-completion'],
      ['json-array', 'prompt-completion'],
      ['lines', 'openai-chat'],
    ]);
    const { all } = await readDataset(at('alpaca-ds'));
    // The same sample reached through three formats has one content id.
    const ids = new Map<string, number>();
    for (const row of all) ids.set(row.id, (ids.get(row.id) ?? 0) + 1);
    expect(ids.size).toBe(805);
    expect([...ids.values()].every((n) => n === 3)).toBe(true);
    const fromArray = all.filter((r) => r.source_file === alpacaPath());
    const first = fromArray.find((r) => r.source_line === 2);
    expect(first).toBeDefined();
    expect(first?.messages).toEqual([
      { role: 'user', content: outputs[0].instruction, name: null, tool_calls: null, tool_call_id: null },
    ]);
    expect(first?.completion).toBe(outputs[0].output);
    expect(first?.model).toBe('gpt-4-turbo-2024-04-09');
    expect(JSON.parse(first?.metadata ?? '{}')).toMatchObject({
      format: 'prompt-completion',
      dataset: outputs[0].dataset,
    });

    // Deduplicated, the three files give each sample once.
    const deduped = await runIngest(ingestConfig([jsonl, alpacaPath(), chat], at('alpaca-dedup')));
    expect(deduped.rows.total).toBe(805);
    expect(deduped.duplicates_removed).toBe(2 * 805);
  });

  it('request/response logs and Batch API output joined to its input by custom_id', async () => {
    const logs = writeJsonl(at('logs.jsonl.gz'), logsFromAlpaca(outputs.slice(0, 300)), true);
    const batchIn = writeJsonl(at('batch_input.jsonl'), batchInputFromAlpaca(outputs.slice(300, 500)));
    const batchOutLines: unknown[] = batchOutputFromAlpaca(outputs.slice(300, 500));
    batchOutLines.push(
      {
        id: 'b-err',
        custom_id: 'req-0',
        response: { status_code: 500, body: { error: { message: 'server error' } } },
        error: null,
      },
      {
        id: 'b-missing',
        custom_id: 'req-9999',
        response: { status_code: 200, body: { choices: [{ message: { role: 'assistant', content: 'orphan' } }] } },
        error: null,
      },
    );
    const batchOut = writeJsonl(at('batch_output.jsonl'), batchOutLines);
    // The batch input is passed among the inputs: it is recognised and joined, not ingested.
    const summary = await runIngest(ingestConfig([logs, batchIn, batchOut], at('logs-ds'), ['ingest.max_rejected=2']));
    expect(summary.rows_by_format).toEqual({ 'openai-log': 300, 'openai-batch': 200 });
    expect(summary.rejected.by_reason).toEqual({ 'batch-error': 1, 'batch-unmatched': 1 });
    expect(summary.inputs.map((i) => [i.path, i.role, i.gzip])).toEqual([
      [batchIn, 'batch-input', false],
      [logs, 'traces', true],
      [batchOut, 'traces', false],
    ]);
    const { all } = await readDataset(at('logs-ds'));
    const log7 = all.find((r) => r.source_file === logs && r.source_line === 8);
    expect(log7?.messages.map((m) => m.role)).toEqual(['system', 'user']);
    expect(log7?.completion).toBe(outputs[7].output);
    expect(log7?.created_at).toBe((1_712_000_000 + 7) * 1000);
    expect(JSON.parse(log7?.metadata ?? '{}')).toMatchObject({
      format: 'openai-log',
      finish_reason: 'stop',
      usage: { prompt_tokens: 17 },
    });
    // Output line 1 answers req-199 (the output file is reversed): joined by custom_id, not by position.
    const batchRow = all.find((r) => r.source_file === batchOut && r.source_line === 1);
    expect(batchRow?.messages[0].content).toBe(outputs[499].instruction);
    expect(batchRow?.completion).toBe(outputs[499].output);
    expect(JSON.parse(batchRow?.metadata ?? '{}')).toMatchObject({ custom_id: 'req-199' });
  });

  it('Taskmaster-4 dialogues as multi-turn OpenAI chat and as ShareGPT: one sample per assistant turn', async () => {
    const chat = writeJsonl(at('tm-chat.jsonl'), chatFromTaskmaster(dialogues));
    const sharegpt = writeJsonl(at('tm-sharegpt.jsonl'), shareGptFromTaskmaster(dialogues));
    const expected = expectedTaskmasterSamples(dialogues);
    const chatSummary = await runIngest(ingestConfig([chat], at('tm-chat')));
    const shareSummary = await runIngest(ingestConfig([sharegpt], at('tm-share')));
    for (const s of [chatSummary, shareSummary]) {
      expect(s.records).toBe(500);
      expect(s.samples_before_dedup).toBe(expected.total);
      expect(s.rows.total).toBe(expected.distinct);
      expect(s.duplicates_removed).toBe(expected.total - expected.distinct);
    }
    const chatRows = (await readDataset(at('tm-chat'))).all;
    const shareRows = (await readDataset(at('tm-share'))).all;
    expect(new Set(shareRows.map((r) => r.id))).toEqual(new Set(chatRows.map((r) => r.id)));

    // Turn expansion of one long dialogue: turn k sees the system prompt and utterances 0..2k.
    const long = dialogues.find((d) => d.utterances.length >= 6 && d.utterances.length % 2 === 0);
    expect(long).toBeDefined();
    const dialogue = long as TaskmasterDialogue;
    const turns = chatRows
      .filter((r) => r.conversation_id === dialogue.conversation_id)
      .sort((a, b) => a.turn_index - b.turn_index);
    expect(turns.map((t) => t.turn_index)).toEqual([...Array(dialogue.utterances.length / 2).keys()]);
    for (const turn of turns) {
      const k = turn.turn_index;
      expect(turn.messages.map((m) => m.content)).toEqual([
        'You take coffee orders.',
        ...dialogue.utterances.slice(0, 2 * k + 1).map((u) => u.text),
      ]);
      expect(turn.messages.map((m) => m.role)).toEqual([
        'system',
        ...dialogue.utterances.slice(0, 2 * k + 1).map((u) => u.speaker),
      ]);
      expect(turn.completion).toBe(dialogue.utterances[2 * k + 1].text);
    }
    expect(new Set(turns.map((t) => t.split)).size).toBe(1);
  });

  it('BFCL questions as prompts with tools, and answered with tool calls', async () => {
    const questions = bfcl('BFCL_v4_simple_python');
    const prompts = writeJsonl(at('bfcl-prompts.jsonl'), promptsWithToolsFromBfcl(questions));
    const calls = writeJsonl(
      at('bfcl-calls.jsonl'),
      toolCallChatFromBfcl(questions, bfclAnswers('BFCL_v4_simple_python')),
    );
    const summary = await runIngest(ingestConfig([prompts, calls], at('bfcl-ds')));
    expect(summary.rows_by_format).toEqual({ 'openai-chat': 2 * questions.length });
    const { all } = await readDataset(at('bfcl-ds'));
    const prompt0 = all.find((r) => r.source_file === prompts && r.source_line === 1);
    expect(prompt0?.completion).toBeNull();
    expect(prompt0?.conversation_id).toBe('simple_python_0');
    expect(prompt0?.messages[0].content).toBe(questions[0].question[0][0].content);
    expect(JSON.parse(prompt0?.tools ?? 'null')[0].function.name).toBe('calculate_triangle_area');
    const call0 = all.find((r) => r.source_file === calls && r.source_line === 1);
    expect(call0?.completion).toBe('');
    expect(JSON.parse(call0?.completion_tool_calls ?? 'null')).toEqual([
      {
        id: 'call_0',
        type: 'function',
        function: {
          name: 'calculate_triangle_area',
          arguments: JSON.stringify({ base: 10, height: 5, unit: 'units' }),
        },
      },
    ]);
  });

  it('prompts only: a text file (one per line), JSONL {"prompt"}, gzip, and stdin', async () => {
    const instructions = outputs.slice(0, 120).map((o) => o.instruction.replace(/\s*\n\s*/g, ' '));
    const text = at('prompts.txt');
    writeFileSync(text, `${instructions.join('\n')}\n\n`);
    const jsonl = writeJsonl(
      at('prompts.jsonl.gz'),
      instructions.slice(0, 50).map((p) => ({ prompt: p })),
      true,
    );
    const stdinText = instructions
      .slice(50, 80)
      .map((p) => JSON.stringify({ prompt: p }))
      .join('\n');
    const summary = await runIngest(ingestConfig([text, jsonl, '-'], at('prompts-ds'), ['ingest.dedup=false']), {
      stdin: Readable.from([Buffer.from(stdinText)]),
    });
    expect(summary.inputs.map((i) => [i.container, i.format, i.records])).toEqual([
      ['text', 'prompts', 120],
      ['lines', 'prompts', 50],
      ['lines', 'prompts', 30],
    ]);
    expect(summary.inputs[2].bytes).toBe(Buffer.byteLength(stdinText));
    const { all } = await readDataset(at('prompts-ds'));
    expect(all).toHaveLength(200);
    expect(all.every((r) => r.completion === null && r.messages.length === 1)).toBe(true);
    expect(new Set(all.filter((r) => r.source_file === '-').map((r) => r.messages[0].content))).toEqual(
      new Set(instructions.slice(50, 80)),
    );
  });

  it('globs, gzip and the manifest (inputs with sha256, config, counts)', async () => {
    const plain = writeJsonl(at('glob-a.jsonl'), chatFromAlpaca(outputs.slice(0, 100)));
    writeFileSync(at('glob-b.jsonl.gz'), gzipSync(readFileSync(plain)));
    copyFileSync(plain, at('glob-c.jsonl'));
    const summary = await runIngest(ingestConfig([join(tmp.dir, 'glob-*.jsonl*')], at('glob-ds'), ['name=glob-test']));
    expect(summary.inputs.map((i) => i.path.slice(tmp.dir.length + 1))).toEqual([
      'glob-a.jsonl',
      'glob-b.jsonl.gz',
      'glob-c.jsonl',
    ]);
    expect(summary.rows.total).toBe(100);
    expect(summary.duplicates_removed).toBe(200);
    const manifest = readJsonFile<IngestManifest & { kind: string; schema_version: number }>(
      at('glob-ds/manifest.json'),
    );
    expect(manifest.kind).toBe('traces');
    expect(manifest.schema_version).toBe(1);
    expect(manifest.config.name).toBe('glob-test');
    expect(manifest.config.ingest.heldout).toBe(0.1);
    expect(manifest.inputs[0].sha256).toBe(manifest.inputs[2].sha256);
    expect(manifest.inputs[0].bytes).toBe(readFileSync(plain).length);
    expect(manifest.inputs[1].gzip).toBe(true);
    expect(manifest.rows).toEqual({ train: summary.rows.train, heldout: summary.rows.heldout, total: 100 });
    expect(manifest.schema.map((f) => f.name)).toContain('conversation_id');
  });
});

beforeAll(() => {
  expect(outputs).toHaveLength(805);
  expect(dialogues).toHaveLength(500);
});
