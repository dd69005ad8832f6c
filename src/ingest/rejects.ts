/**
 * Rejected records: every one goes to `rejected.jsonl` (file, line, code, reason, excerpt), and a
 * tally by file and reason names the worst offenders in the summary.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import type { RejectCode } from './records.js';

export interface RejectedRecord {
  file: string;
  line: number;
  code: RejectCode;
  reason: string;
  excerpt: string;
}

/** One (file, reason) group in the summary, with the first few line numbers. */
export interface Offender {
  file: string;
  code: RejectCode;
  count: number;
  example_lines: number[];
  example_reason: string;
}

const EXAMPLE_LINES = 5;
const EXCERPT_CHARS = 160;

export class RejectLog {
  private readonly out: WriteStream;
  private readonly groups = new Map<string, Offender>();
  private readonly byCode = new Map<RejectCode, number>();
  count = 0;

  constructor(readonly path: string) {
    this.out = createWriteStream(path);
  }

  async add(record: RejectedRecord): Promise<void> {
    this.count++;
    this.byCode.set(record.code, (this.byCode.get(record.code) ?? 0) + 1);
    const key = `${record.file}\u0000${record.code}`;
    let group = this.groups.get(key);
    if (!group) {
      group = { file: record.file, code: record.code, count: 0, example_lines: [], example_reason: record.reason };
      this.groups.set(key, group);
    }
    group.count++;
    if (group.example_lines.length < EXAMPLE_LINES) group.example_lines.push(record.line);
    const excerpt =
      record.excerpt.length > EXCERPT_CHARS ? `${record.excerpt.slice(0, EXCERPT_CHARS)}…` : record.excerpt;
    if (!this.out.write(JSON.stringify({ ...record, excerpt }) + '\n')) await once(this.out, 'drain');
  }

  /** Counts per reason code. */
  countsByCode(): Record<string, number> {
    return Object.fromEntries([...this.byCode].sort((a, b) => b[1] - a[1]));
  }

  /** The largest (file, reason) groups, largest first. */
  worstOffenders(limit = 10): Offender[] {
    return [...this.groups.values()].sort((a, b) => b.count - a.count || a.file.localeCompare(b.file)).slice(0, limit);
  }

  async close(): Promise<void> {
    this.out.end();
    await once(this.out, 'finish');
  }
}

/** One line per offender, for error messages and the CLI summary (control characters escaped). */
export function describeOffenders(offenders: readonly Offender[]): string[] {
  return offenders.map(
    (o) =>
      `${printable(o.file)}: ${o.count} × ${o.code} ` +
      `(e.g. line ${o.example_lines.join(', ')}: ${printable(o.example_reason)})`,
  );
}

/**
 * Text from a rejected line (JSON.parse quotes the bad input in its message) with control characters
 * escaped as \u00XX: raw bytes from a binary file given by mistake would otherwise reach the terminal,
 * where escape sequences can move the cursor, retitle the window or hide the rest of the message.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
