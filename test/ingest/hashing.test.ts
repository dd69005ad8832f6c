/**
 * Sample ids and splits: each row's id checked against sha256 of the documented encoding of its
 * sample, computed here from the rows read back; and the native addon's hashing (one call per
 * block, src/backend/native.ts) against crypto.hash's, which must give byte-identical datasets.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeHashing, setNativeEnabled } from '../../src/backend/native.js';
import type { TraceRow } from '../../src/formats/traces-schema.js';
import { runIngest } from '../../src/ingest/index.js';
import { splitOf } from '../../src/ingest/samples.js';
import { haveShared } from '../helpers/shared.js';
import {
  alpaca,
  bfcl,
  bfclAnswers,
  chatFromAlpaca,
  INGEST_TRACES,
  chatFromTaskmaster,
  ingestConfig,
  promptsWithToolsFromBfcl,
  readDataset,
  taskmaster,
  tempDir,
  toolCallChatFromBfcl,
  writeJsonl,
} from './fixtures.js';

const tmp = tempDir('fireopt-hashing-');
afterAll(() => {
  setNativeEnabled(true);
  tmp.cleanup();
});
const at = (name: string) => join(tmp.dir, name);

/**
 * Real traces of every shape the encoding has: single- and multi-turn, tool calls and tool schemas, prompts without a
 * reply, non-ASCII text.
 */
function writeTraces(): string {
  const dialogues = taskmaster('00').slice(0, 300);
  return writeJsonl(at('traces.jsonl'), [
    ...chatFromAlpaca(alpaca().slice(0, 300)),
    ...chatFromTaskmaster(dialogues),
    // The same dialogues cut before their last reply: each ends with a prompt sample (null completion).
    ...chatFromTaskmaster(dialogues).map((d) => ({
      ...d,
      conversation_id: `${d.conversation_id}-open`,
      messages: d.messages.slice(0, -1),
    })),
    ...toolCallChatFromBfcl(bfcl('BFCL_v4_simple_python'), bfclAnswers('BFCL_v4_simple_python')),
    ...promptsWithToolsFromBfcl(bfcl('BFCL_v4_simple_python').slice(0, 50)),
  ]);
}

/** The sample hash as README and src/ingest/samples.ts define it: tools \x01 enc(context…) \x02 enc(reply). */
function expectedId(row: TraceRow): string {
  const enc = (m: {
    role: string;
    content: string | null;
    name: string | null;
    tool_calls: string | null;
    tool_call_id: string | null;
  }): string => `${m.role}\0${m.content ?? ''}\0${m.name ?? ''}\0${m.tool_calls ?? ''}\0${m.tool_call_id ?? ''}\x03`;
  let text = `${row.tools ?? ''}\x01`;
  for (const message of row.messages) text += enc(message);
  text += '\x02';
  // Replies in these traces carry no name or tool_call_id; a tool-call-only reply has no content, stored as ''.
  if (row.completion !== null)
    text += enc({
      role: 'assistant',
      content: row.completion,
      name: null,
      tool_calls: row.completion_tool_calls,
      tool_call_id: null,
    });
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 32);
}

const files = (dir: string) =>
  ['train.arrow', 'heldout.arrow'].map((name) =>
    createHash('sha256')
      .update(readFileSync(join(dir, name)))
      .digest('hex'),
  );

const haveTraces = haveShared(...INGEST_TRACES);

describe.skipIf(!haveTraces)('sample ids', () => {
  it('are the sha256 of each sample’s tools, context and reply, and splits follow the conversation id', async () => {
    const input = writeTraces();
    await runIngest(ingestConfig([input], at('ids')));
    const { all } = await readDataset(at('ids'));
    expect(all.length).toBeGreaterThan(1000);
    expect(all.some((row) => row.completion === null)).toBe(true);
    expect(all.some((row) => row.tools !== null && row.completion_tool_calls !== null)).toBe(true);
    expect(all.some((row) => row.messages.length > 4)).toBe(true);
    for (const row of all) {
      expect(row.id).toBe(expectedId(row));
      expect(row.split).toBe(splitOf(row.conversation_id, 'fireopt-split-v1', 0.1, null));
    }
  });
});

describe.skipIf(!nativeHashing())('native hashing', () => {
  it.skipIf(!haveTraces)('gives the same dataset as crypto.hash', async () => {
    const input = writeTraces();
    await runIngest(ingestConfig([input], at('native')));
    setNativeEnabled(false);
    try {
      expect(nativeHashing()).toBeUndefined();
      await runIngest(ingestConfig([input], at('crypto')));
    } finally {
      setNativeEnabled(true);
    }
    expect(files(at('native'))).toEqual(files(at('crypto')));
  });

  it('splits conversations as crypto.hash does, for any id', () => {
    const native = nativeHashing() ?? null;
    const ids = [
      'dlg-1',
      '',
      'é漢字😀',
      'lone \ud800 surrogate',
      'x'.repeat(509),
      `${'a'.repeat(507)}漢`,
      'z'.repeat(5000),
    ];
    for (let i = 0; i < 2000; i++) ids.push(`conversation-${i}`);
    for (const id of ids) {
      for (const fraction of [0.1, 0.5, 0.9])
        expect(splitOf(id, 'salt', fraction, native)).toBe(splitOf(id, 'salt', fraction, null));
    }
  });
});
