import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RunError } from '../../src/errors.js';
import { runIngest } from '../../src/ingest/index.js';
import { luhnValid } from '../../src/ingest/redact.js';
import { splitOf } from '../../src/ingest/samples.js';
import { haveShared, repoRoot } from '../helpers/shared.js';
import {
  alpaca,
  chatFromAlpaca,
  INGEST_TRACES,
  chatFromTaskmaster,
  ingestConfig,
  readDataset,
  taskmaster,
  tempDir,
  writeJsonl,
} from './fixtures.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const at = (name: string) => join(tmp.dir, name);

// Read at collection time, so empty without ../shared (every test that uses them is skipped then).
const haveTraces = haveShared(...INGEST_TRACES);
const outputs = haveTraces ? alpaca() : [];
const dialogues = haveTraces ? [...taskmaster('00'), ...taskmaster('01')] : [];

describe('held-out split', () => {
  it.skipIf(!haveTraces)(
    'keeps conversations whole, is identical on rerun, and never moves a row when traces are appended',
    async () => {
      const first = writeJsonl(at('day1.jsonl'), chatFromTaskmaster(dialogues.slice(0, 600)));
      const second = writeJsonl(at('day2.jsonl'), chatFromTaskmaster(dialogues.slice(600)));
      await runIngest(ingestConfig([first], at('split-a')));
      await runIngest(ingestConfig([first], at('split-b')));
      await runIngest(ingestConfig([first, second], at('split-appended')));
      const a = await readDataset(at('split-a'));
      const b = await readDataset(at('split-b'));
      const appended = await readDataset(at('split-appended'));

      const splitById = (rows: typeof a.all) => new Map(rows.map((r) => [r.id, r.split]));
      expect(splitById(b.all)).toEqual(splitById(a.all));
      const after = splitById(appended.all);
      for (const row of a.all) expect(after.get(row.id)).toBe(row.split);
      expect(appended.all.length).toBeGreaterThan(a.all.length);

      const splitsPerConversation = new Map<string, Set<string>>();
      for (const row of appended.all) {
        const set = splitsPerConversation.get(row.conversation_id) ?? new Set();
        set.add(row.split);
        splitsPerConversation.set(row.conversation_id, set);
      }
      expect([...splitsPerConversation.values()].every((s) => s.size === 1)).toBe(true);
      const heldoutConversations = [...splitsPerConversation.values()].filter((s) => s.has('heldout')).length;
      const fraction = heldoutConversations / splitsPerConversation.size;
      expect(fraction).toBeGreaterThan(0.07); // 1000 conversations at 0.1: ±3 standard deviations
      expect(fraction).toBeLessThan(0.13);
    },
  );

  it('is a pure function of salt and id', () => {
    expect(splitOf('dlg-1', 's', 0)).toBe('train');
    expect(splitOf('dlg-1', 's', 1)).toBe('heldout');
    const ids = Array.from({ length: 2000 }, (_, i) => `conversation-${i}`);
    const heldout = ids.filter((id) => splitOf(id, 'salt-a', 0.25) === 'heldout');
    expect(heldout.length / ids.length).toBeGreaterThan(0.22);
    expect(heldout.length / ids.length).toBeLessThan(0.28);
    const other = ids.filter((id) => splitOf(id, 'salt-b', 0.25) === 'heldout');
    expect(other).not.toEqual(heldout);
  });
});

describe.skipIf(!haveTraces)('dedup', () => {
  it('keeps identical samples once, within and across files, and counts them; --no-dedup keeps all', async () => {
    const chat = chatFromAlpaca(outputs.slice(0, 200));
    const a = writeJsonl(at('dup-a.jsonl'), [...chat, ...chat.slice(0, 50)]);
    // Same samples with another model name and id: still the same context and completion.
    const b = writeJsonl(
      at('dup-b.jsonl'),
      chat.slice(150).map((c) => ({ ...c, model: 'other', id: 'x' })),
    );
    const summary = await runIngest(ingestConfig([a, b], at('dedup')));
    expect(summary.samples_before_dedup).toBe(250 + 50);
    expect(summary.rows.total).toBe(200);
    expect(summary.duplicates_removed).toBe(100);
    const { all } = await readDataset(at('dedup'));
    expect(new Set(all.map((r) => r.id)).size).toBe(200);
    expect(all.every((r) => r.source_file === a)).toBe(true); // the first occurrence is kept
    const kept = await runIngest(ingestConfig([a, b], at('no-dedup'), ['ingest.dedup=false']));
    expect(kept.rows.total).toBe(300);
    expect(kept.duplicates_removed).toBe(0);
  });
});

describe.skipIf(!haveTraces)('--redact', () => {
  it('masks planted e-mails, phones, Luhn-valid cards, IPs and secrets, and counts each kind', async () => {
    const planted = [
      'Please mail the receipt to jane.doe@example.com and call me at +1 415-555-0132.',
      'My card is 4111 1111 1111 1111, not 4111 1111 1111 1112. ' +
        'Server at 192.168.10.42 or 2001:db8:85a3::8a2e:370:7334.',
      'Use key sk-proj-abcdefghijklmnopqrstuvwx12 with header ' +
        'Authorization: Bearer eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJlMTIz',
      'Order #12345 costs 3.50 and 2 + 2 = 4.',
    ];
    const base = chatFromTaskmaster(dialogues.slice(0, 40));
    base[0].messages[1].content = `${planted[0]} ${base[0].messages[1].content}`;
    base[1].messages[2].content = `${planted[1]} ${base[1].messages[2].content}`;
    base[2].messages.push({ role: 'user', content: planted[2] });
    base[3].messages[1].content = planted[3];
    const file = writeJsonl(at('secrets.jsonl'), base);
    const summary = await runIngest(ingestConfig([file], at('redacted'), ['ingest.redact=true']));
    expect(summary.redactions).toEqual({ secret: 2, email: 1, card: 1, ip: 2, phone: 1 });
    const { all } = await readDataset(at('redacted'));
    const text = all.map((r) => JSON.stringify([r.messages, r.completion])).join('\n');
    for (const secret of [
      'jane.doe@example.com',
      '415-555-0132',
      '4111 1111 1111 1111',
      '192.168.10.42',
      '2001:db8',
      'sk-proj-',
      'c2lnbmF0dXJlMTIz',
    ]) {
      expect(text).not.toContain(secret);
    }
    expect(text).toContain('[EMAIL]');
    expect(text).toContain('not 4111 1111 1111 1112'); // fails the Luhn check: not a card
    expect(text).toContain('Order #12345 costs 3.50 and 2 + 2 = 4.');
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
    const plain = await runIngest(ingestConfig([file], at('not-redacted')));
    expect(plain.redactions).toBeNull();
  });
});

describe.skipIf(!haveTraces)('bad input, nothing lost', () => {
  const good = chatFromAlpaca(outputs.slice(0, 30)).map((r) => JSON.stringify(r));
  const badLines: Array<[string | Buffer, string]> = [
    ['{"messages": [{"role": "user", "content": "hi"}', 'malformed-json'],
    [Buffer.from([0x7b, 0x22, 0x6d, 0xff, 0xfe, 0x22, 0x7d]), 'invalid-utf8'],
    [
      JSON.stringify({
        messages: [
          { role: 'user', content: 'x'.repeat(5000) },
          { role: 'assistant', content: 'y' },
        ],
      }),
      'oversized-line',
    ],
    ['{"messages": "not a list"}', 'wrong-shape'],
    ['{"messages": [{"role": "user"}, {"role": "assistant", "content": "ok"}]}', 'missing-field'],
    ['{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "   "}]}', 'empty-field'],
    ['{"messages": [{"role": "wizard", "content": "hi"}]}', 'bad-role'],
    [
      '{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}, ' +
        '{"role": "assistant", "content": "a cat"}]}',
      'unsupported-content',
    ],
    ['[1, 2, 3]', 'wrong-shape'],
  ];

  function writeBadFile(path: string): Map<number, string> {
    const parts: Buffer[] = [Buffer.from('{"hello": "an unknown shape before any valid record"}\n')];
    const expected = new Map<number, string>([[1, 'unknown-shape']]);
    let line = 1;
    good.forEach((g, i) => {
      parts.push(Buffer.from(g + '\n'));
      line++;
      const bad = badLines[i];
      if (bad) {
        parts.push(Buffer.isBuffer(bad[0]) ? bad[0] : Buffer.from(bad[0]), Buffer.from('\r\n'));
        line++;
        expected.set(line, bad[1]);
      }
    });
    writeFileSync(path, Buffer.concat(parts));
    return expected;
  }

  it('rejects each bad line with file, line and reason, and names the worst offenders', async () => {
    const file = at('bad.jsonl');
    const expected = writeBadFile(file);
    const summary = await runIngest(
      ingestConfig([file], at('bad-ds'), ['ingest.max_rejected=20', 'ingest.max_line_bytes=4096']),
    );
    expect(summary.rows.total).toBe(30);
    expect(summary.rejected.count).toBe(expected.size);
    const rejected = readFileSync(at('bad-ds/rejected.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { file: string; line: number; code: string; reason: string });
    expect(new Map(rejected.map((r) => [r.line, r.code]))).toEqual(expected);
    expect(rejected.every((r) => r.file === file && r.reason.length > 0)).toBe(true);
    expect(rejected.find((r) => r.code === 'missing-field')?.reason).toBe('messages[0].content: missing');
    expect(summary.rejected.worst[0]).toMatchObject({ file, code: 'wrong-shape', count: 2 });
    expect(summary.rejected.by_reason['wrong-shape']).toBe(2);
  });

  it('fails with exit code 1 above --max-rejected (count or fraction), leaving an earlier dataset intact', async () => {
    const file = at('bad2.jsonl');
    const expected = writeBadFile(file);
    const out = at('kept-ds');
    const clean = writeJsonl(at('clean.jsonl'), chatFromAlpaca(outputs.slice(0, 10)));
    await runIngest(ingestConfig([clean], out));
    const manifestBefore = readFileSync(join(out, 'manifest.json'), 'utf8');
    for (const limit of [String(expected.size - 1), '0.2']) {
      const run = runIngest(ingestConfig([file], out, [`ingest.max_rejected=${limit}`, 'ingest.max_line_bytes=4096']));
      await expect(run).rejects.toBeInstanceOf(RunError);
      await expect(run).rejects.toMatchObject({ exitCode: 1, code: 'E_TOO_MANY_REJECTED' });
      expect(readFileSync(join(out, 'manifest.json'), 'utf8')).toBe(manifestBefore);
      expect(readdirSync(tmp.dir).filter((n) => n.startsWith('.kept-ds.tmp-'))).toEqual([]);
      expect(readFileSync(`${out}.rejected.jsonl`, 'utf8').trim().split('\n')).toHaveLength(expected.size);
    }
    // Exactly at the limit passes.
    await runIngest(ingestConfig([file], out, [`ingest.max_rejected=${expected.size}`, 'ingest.max_line_bytes=4096']));
  });

  it('a run killed midway leaves no partial output and keeps the earlier dataset', async () => {
    const out = at('killed-ds');
    await runIngest(ingestConfig([writeJsonl(at('small.jsonl'), chatFromAlpaca(outputs.slice(0, 5)))], out));
    const manifestBefore = readFileSync(join(out, 'manifest.json'), 'utf8');
    const child = spawn(process.execPath, [join(repoRoot, 'bin/fireopt'), 'ingest', '-', '--out', out, '--quiet'], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    child.stdin.on('error', () => {}); // EPIPE once the child is killed: expected here
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, signal) => resolve(signal)),
    );
    const lines =
      chatFromAlpaca(outputs)
        .map((r) => JSON.stringify(r))
        .join('\n') + '\n';
    child.stdin.write(lines);
    // Wait until the run has created its staging folder and written into it, then kill it.
    const staging = (): string[] => readdirSync(tmp.dir).filter((n) => n.startsWith('.killed-ds.tmp-'));
    // Polled for up to a minute: a loaded machine may take seconds to start the child.
    for (let i = 0; i < 2400 && !(staging().length && existsSync(join(tmp.dir, staging()[0], 'train.arrow'))); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(staging()).toHaveLength(1);
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    expect(readFileSync(join(out, 'manifest.json'), 'utf8')).toBe(manifestBefore);
    expect(readdirSync(out).sort()).toEqual(['heldout.arrow', 'manifest.json', 'rejected.jsonl', 'train.arrow']);
    // The next run clears the dead run's staging folder.
    await runIngest(ingestConfig([at('small.jsonl')], out));
    expect(staging()).toEqual([]);
  });

  it('Ctrl-C (SIGINT) while reading stdin: exit code 130, staging removed, earlier dataset kept', async () => {
    const out = at('interrupted-ds');
    await runIngest(ingestConfig([writeJsonl(at('small2.jsonl'), chatFromAlpaca(outputs.slice(0, 5)))], out));
    const manifestBefore = readFileSync(join(out, 'manifest.json'), 'utf8');
    const child = spawn(process.execPath, [join(repoRoot, 'bin/fireopt'), 'ingest', '-', '--out', out, '--quiet'], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    child.stdin.on('error', () => {}); // EPIPE once the child has exited: expected here
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => void (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    child.stdin.write(
      chatFromAlpaca(outputs.slice(0, 100))
        .map((r) => JSON.stringify(r))
        .join('\n') + '\n',
    );
    const staging = (): string[] => readdirSync(tmp.dir).filter((n) => n.startsWith('.interrupted-ds.tmp-'));
    for (let i = 0; i < 2400 && staging().length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(staging()).toHaveLength(1);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toContain('ingest interrupted (SIGINT): no dataset written');
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(staging()).toEqual([]);
    expect(readFileSync(join(out, 'manifest.json'), 'utf8')).toBe(manifestBefore);
  });
});
