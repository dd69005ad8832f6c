/**
 * OpenAI Batch API input files (`{"custom_id","method","url","body":{model,messages,...}}`), indexed
 * by custom_id so that batch output lines can be joined to the request they answer. The index
 * holds each request body as its JSON text: one batch input file is capped by OpenAI at 200 MB, and
 * text is the most compact form JavaScript offers.
 */
import type { Readable } from 'node:stream';
import { InputError } from '../errors.js';
import { isObject, type JsonObject } from './records.js';
import { openSource, splitRecords } from './sources.js';

export class BatchInputIndex {
  private readonly bodies = new Map<string, string>();

  get size(): number {
    return this.bodies.size;
  }

  /** Index one batch input file; throws InputError naming the line of a malformed or duplicate entry. */
  async addFile(
    file: string,
    stdin: Readable | undefined,
    maxLineBytes: number,
  ): Promise<{ bytes: number; sha256: string }> {
    const source = openSource(file, stdin, () => {});
    for await (const records of splitRecords(source.chunks, maxLineBytes, () => {})) {
      for (const record of records) {
        if (!record.ok) throw new InputError(`${file}:${record.line}: batch input line rejected: ${record.reason}`);
        let value: unknown;
        try {
          value = JSON.parse(record.text);
        } catch (error) {
          throw new InputError(`${file}:${record.line}: batch input line is not JSON (${(error as Error).message})`);
        }
        if (!isObject(value) || typeof value.custom_id !== 'string' || !isObject(value.body)) {
          throw new InputError(`${file}:${record.line}: not a batch input line (expected {"custom_id", "body"})`);
        }
        if (this.bodies.has(value.custom_id)) {
          throw new InputError(
            `${file}:${record.line}: duplicate custom_id ${JSON.stringify(value.custom_id)} in batch inputs`,
          );
        }
        this.bodies.set(value.custom_id, JSON.stringify(value.body));
      }
    }
    const stats = source.stats();
    return { bytes: stats.bytes, sha256: stats.sha256 };
  }

  /** The request body for `customId`, parsed afresh (callers may modify it). */
  lookup(customId: string): JsonObject | undefined {
    const text = this.bodies.get(customId);
    return text === undefined ? undefined : (JSON.parse(text) as JsonObject);
  }
}
