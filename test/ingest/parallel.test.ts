/**
 * Parse workers must not change the output: a ~12 MB JSON Lines file of real traces (single-turn
 * AlpacaEval chats, multi-turn Taskmaster dialogues, BFCL tool calls with tool schemas, planted
 * duplicates and bad lines) is ingested on one thread, with one parse worker (the main thread
 * parsing the blocks that find it busy) and with two, and the Arrow files, the rejects and the
 * summaries must be byte-for-byte the same, with row counts checked against an independent count
 * of the input.
 *
 * Workers run compiled JavaScript, so this test runs the built `dist/` (`npm test` builds it first)
 * beside the TypeScript sources vitest runs.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { gzipSync } from 'node:zlib';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { idleCpusNow, runIngest, workersFor, type IngestSummary } from '../../src/ingest/index.js';
import { haveShared } from '../helpers/shared.js';
import {
  alpaca,
  bfcl,
  bfclAnswers,
  chatFromAlpaca,
  chatFromTaskmaster,
  INGEST_TRACES,
  ingestConfig,
  readRows,
  taskmaster,
  tempDir,
  toolCallChatFromBfcl,
} from './fixtures.js';

const tmp = tempDir('fireopt-parallel-');
afterAll(() => tmp.cleanup());
const at = (name: string) => join(tmp.dir, name);

const distIndex = resolve('dist/ingest/index.js');

type IngestModule = typeof import('../../src/ingest/index.js');

/** The built ingest module, checked to be at least as new as the sources it was built from. */
async function builtIngest(): Promise<IngestModule> {
  if (!existsSync(distIndex))
    throw new Error('dist/ is missing: run `npx tsc -p tsconfig.json` (npm test does) before this test');
  const built = statSync(distIndex).mtimeMs;
  for (const source of [
    'index.ts',
    'process.ts',
    'samples.ts',
    'columns.ts',
    'parse-pool.ts',
    'parse-worker.ts',
    'sources.ts',
    'writer.ts',
  ]) {
    if (statSync(resolve('src/ingest', source)).mtimeMs > built + 1000)
      throw new Error(`dist/ is older than src/ingest/${source}: rebuild with \`npx tsc -p tsconfig.json\``);
  }
  return (await import(pathToFileURL(distIndex).href)) as IngestModule;
}

interface Expected {
  samples: number;
  duplicates: number;
  rejected: number;
}

interface ChatRecord {
  messages: Array<{ role: string; content: string | null }>;
  tools?: unknown;
}

/** The record with its first message's text made unique to `round` (so rounds are not duplicates of each other). */
function inRound<T extends ChatRecord>(record: T, round: number): T {
  const [first, ...rest] = record.messages;
  return { ...record, messages: [{ ...first, content: `[${round}] ${first.content ?? ''}` }, ...rest] };
}

/** ~12 MB of real traces, with duplicates and bad lines spread through it, and what ingest should make of it. */
function buildInput(path: string): Expected {
  const chats = chatFromAlpaca(alpaca());
  const dialogues = chatFromTaskmaster(taskmaster('00'));
  const toolCalls = toolCallChatFromBfcl(bfcl('BFCL_v4_simple_python'), bfclAnswers('BFCL_v4_simple_python'));
  const lines: Buffer[] = [];
  const expected: Expected = { samples: 0, duplicates: 0, rejected: 0 };
  // An independent count of samples and duplicates: one per assistant turn (and one for a
  // conversation that ends unanswered), keyed by tools, context and reply.
  const seen = new Set<string>();
  const add = (record: ChatRecord & Record<string, unknown>): void => {
    lines.push(Buffer.from(JSON.stringify(record)));
    const { messages } = record;
    const keys = messages.flatMap((m, i) =>
      m.role === 'assistant' && i > 0 ? [JSON.stringify([record.tools, messages.slice(0, i), m])] : [],
    );
    if (messages[messages.length - 1].role !== 'assistant') keys.push(JSON.stringify([record.tools, messages, null]));
    for (const key of keys) {
      expected.samples++;
      if (seen.has(key)) expected.duplicates++;
      seen.add(key);
    }
  };
  let bytes = 0;
  for (let round = 0; bytes < 12e6; round++) {
    // Every 5th round repeats round 0's texts (under new ids): all of its samples are duplicates.
    const text = round % 5 === 4 ? 0 : round;
    chats.forEach((chat, i) => add({ ...inRound(chat, text), conversation_id: `alpaca-${round}-${i}` }));
    for (const dialogue of dialogues)
      add({ ...inRound(dialogue, text), conversation_id: `${dialogue.conversation_id}-${round}` });
    toolCalls.forEach((call) => add({ ...inRound(call, text), id: `${call.id}-${round}` }));
    // Bad lines, each rejected: malformed JSON, invalid UTF-8, an oversized line, a wrong shape.
    lines.push(Buffer.from('{"messages": [{"role": "user", "content": "cut off'));
    lines.push(
      Buffer.concat([
        Buffer.from('{"messages":[{"role":"user","content":"'),
        Buffer.from([0xc3, 0x28]),
        Buffer.from('"}]}'),
      ]),
    );
    lines.push(
      Buffer.from(
        JSON.stringify({
          messages: [
            { role: 'user', content: 'x'.repeat(70_000) },
            { role: 'assistant', content: 'y' },
          ],
        }),
      ),
    );
    lines.push(Buffer.from(JSON.stringify({ messages: 'not a list' })));
    lines.push(Buffer.from('   '));
    expected.rejected += 4;
    bytes = lines.reduce((sum, line) => sum + line.length + 1, 0);
  }
  writeFileSync(path, Buffer.concat(lines.flatMap((line) => [line, Buffer.from('\n')])));
  return expected;
}

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');
const outputs = (dir: string) =>
  ['train.arrow', 'heldout.arrow', 'rejected.jsonl'].map((name) => sha256(join(dir, name)));
const counts = (summary: IngestSummary) => ({
  rows: summary.rows,
  rows_by_format: summary.rows_by_format,
  records: summary.records,
  samples_before_dedup: summary.samples_before_dedup,
  duplicates_removed: summary.duplicates_removed,
  rejected: { count: summary.rejected.count, by_reason: summary.rejected.by_reason, worst: summary.rejected.worst },
  inputs: summary.inputs,
});

describe.skipIf(!haveShared(...INGEST_TRACES))('ingest with parse workers', () => {
  it('writes the same rows, in the same order, as on one thread (12 MB of real traces)', async () => {
    const input = at('traces.jsonl');
    const expected = buildInput(input);
    const built = await builtIngest();
    // Small batches and lines, so that batches, read chunks and worker blocks all cut across each other.
    const sets = ['ingest.batch_rows=500', 'ingest.max_line_bytes=65536', 'ingest.max_rejected=0.5'];
    const inProcess = await runIngest(ingestConfig([input], at('src-ds'), sets));
    const oneThread = await built.runIngest(ingestConfig([input], at('one-thread-ds'), sets), { workers: 0 });
    const twoWorkers = await built.runIngest(ingestConfig([input], at('workers-ds'), sets), { workers: 2 });
    // One worker: the main thread parses every block that finds the worker busy, so blocks from both threads
    // interleave.
    const oneWorker = await built.runIngest(ingestConfig([input], at('one-worker-ds'), sets), { workers: 1 });

    expect(inProcess.rows.total).toBe(expected.samples - expected.duplicates);
    expect(inProcess.duplicates_removed).toBe(expected.duplicates);
    expect(inProcess.rejected.count).toBe(expected.rejected);
    expect(inProcess.rejected.by_reason).toEqual({
      'malformed-json': expected.rejected / 4,
      'invalid-utf8': expected.rejected / 4,
      'oversized-line': expected.rejected / 4,
      'wrong-shape': expected.rejected / 4,
    });
    expect(inProcess.rows.heldout).toBeGreaterThan(0);

    expect(counts(oneThread)).toEqual(counts(inProcess));
    expect(counts(twoWorkers)).toEqual(counts(inProcess));
    expect(counts(oneWorker)).toEqual(counts(inProcess));
    const reference = outputs(at('src-ds'));
    expect(outputs(at('one-thread-ds'))).toEqual(reference);
    expect(outputs(at('workers-ds'))).toEqual(reference);
    expect(outputs(at('one-worker-ds'))).toEqual(reference);

    // And the rows read back: ids unique, in input order within each split.
    const rows = await readRows(at('workers-ds/train.arrow'));
    expect(new Set(rows.map((r) => r.id)).size).toBe(rows.length);
    const lines = rows.map((r) => r.source_line);
    expect(lines.every((line, i) => i === 0 || line >= lines[i - 1])).toBe(true);

    // Gzip: zlib reuses its output chunks, so they are copied for the workers instead of handed over.
    writeFileSync(at('traces.jsonl.gz'), gzipSync(readFileSync(input)));
    const gzipOneThread = await built.runIngest(ingestConfig([at('traces.jsonl.gz')], at('gzip-one-thread-ds'), sets), {
      workers: 0,
    });
    const gzipWorkers = await built.runIngest(ingestConfig([at('traces.jsonl.gz')], at('gzip-workers-ds'), sets), {
      workers: 2,
    });
    expect(gzipWorkers.parse_workers).toBe(2);
    expect(gzipOneThread.rows).toEqual(inProcess.rows);
    expect(counts(gzipWorkers)).toEqual(counts(gzipOneThread));
    expect(outputs(at('gzip-workers-ds'))).toEqual(outputs(at('gzip-one-thread-ds')));
  }, 120_000);

  it('reads prompts-only text files the same way (by extension, and with --format prompts)', async () => {
    // One prompt per line: AlpacaEval instructions, newlines folded, repeated with a round tag to ~3 MB.
    const instructions = alpaca().map((r) => r.instruction.replace(/\s*\n\s*/g, ' '));
    const prompts: string[] = [];
    for (let round = 0; prompts.length * 200 < 3e6; round++)
      prompts.push(...instructions.map((text) => `${text} (${round})`));
    writeFileSync(at('prompts.txt'), prompts.join('\n') + '\n');
    writeFileSync(at('prompts.lines'), prompts.join('\n') + '\n');
    const built = await builtIngest();
    for (const [file, sets] of [
      ['prompts.txt', []],
      ['prompts.lines', ['ingest.format=prompts']],
    ] as const) {
      const reference = await runIngest(ingestConfig([at(file)], at(`${file}-src`), [...sets]));
      const workers = await built.runIngest(ingestConfig([at(file)], at(`${file}-workers`), [...sets]), { workers: 2 });
      expect(reference.rows.total + reference.duplicates_removed).toBe(prompts.length);
      expect(reference.inputs[0].container).toBe('text');
      expect(counts(workers)).toEqual(counts(reference));
      expect(outputs(at(`${file}-workers`))).toEqual(outputs(at(`${file}-src`)));
    }
  }, 120_000);
});

describe('the default number of parse workers', () => {
  const twoCpus = { inputBytes: 1e9, cpus: 2, idleCpus: 2 };

  it('uses a worker per CPU besides the main thread (at most two) while at least half a CPU is idle', () => {
    expect(workersFor(twoCpus)).toBe(1);
    expect(workersFor({ ...twoCpus, idleCpus: 0.7 })).toBe(1);
    expect(workersFor({ ...twoCpus, idleCpus: 0.3 })).toBe(0); // other work fills the machine
    expect(workersFor({ ...twoCpus, cpus: 3, idleCpus: 3 })).toBe(2);
    expect(workersFor({ ...twoCpus, cpus: 16, idleCpus: 10 })).toBe(2);
  });

  it('stays on one thread for small inputs and on one CPU', () => {
    expect(workersFor({ ...twoCpus, inputBytes: 1e6 })).toBe(0);
    expect(workersFor({ ...twoCpus, cpus: 1, idleCpus: 1 })).toBe(0);
  });

  it(
    'measures idle CPUs from the kernel counters: ' + 'near all of them while a busy loop runs elsewhere is not',
    async () => {
      const idle = await idleCpusNow(200);
      expect(idle).toBeGreaterThanOrEqual(0);
      expect(idle).toBeLessThanOrEqual(availableParallelism() + 0.05);
      // A busy child process takes about one CPU away.
      const child = spawn(process.execPath, ['-e', 'const end = Date.now() + 1500; while (Date.now() < end);']);
      try {
        await new Promise((resolve) => setTimeout(resolve, 150));
        const busy = await idleCpusNow(300);
        expect(busy).toBeLessThan(availableParallelism() - 0.5);
      } finally {
        child.kill();
      }
    },
  );
});
