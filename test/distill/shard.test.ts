/** Distill's shard choice: `i/n` parsing, and a row id's shard (fixed by the id, about 1/n of the rows each). */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseShard, shardOf } from '../../src/util/shard.js';
import { UsageError } from '../../src/errors.js';
import { hashUnit } from '../../src/util/hash.js';

/** Row ids as ingest writes them: 32 hex digits of a sha256. */
const rowIds = Array.from({ length: 4000 }, (_, i) =>
  createHash('sha256').update(`row ${i}`).digest('hex').slice(0, 32),
);

describe('shards', () => {
  it('parses i/n and refuses anything else with a usage error', () => {
    expect(parseShard('3/8')).toEqual({ index: 3, count: 8 });
    expect(parseShard('0/1')).toEqual({ index: 0, count: 1 });
    for (const bad of ['8/8', '1/0', '-1/4', 'a/4', '2', '1/2/3', '']) {
      expect(() => parseShard(bad), bad).toThrow(UsageError);
    }
  });

  it("puts each row id in one shard, by its id's hash only, about evenly", () => {
    const counts = new Array<number>(4).fill(0);
    for (const id of rowIds) counts[shardOf(id, 4)]++;
    for (const count of counts) expect(Math.abs(count - 1000)).toBeLessThan(120); // ±3.8σ of a binomial
    // the same id, the same shard, whatever else is in the dataset
    expect(rowIds.map((id) => shardOf(id, 4))).toEqual(rowIds.map((id) => shardOf(id, 4)));
    // the shard is sha256("fireopt-shard\0" + id)'s first 4 bytes scaled to n, as documented
    const id = rowIds[0];
    const first32 = createHash('sha256').update(`fireopt-shard\u0000${id}`).digest().readUInt32BE(0);
    expect(shardOf(id, 7)).toBe(Math.floor((first32 / 2 ** 32) * 7));
    expect(hashUnit(`fireopt-shard\u0000${id}`, null)).toBe(first32 / 2 ** 32);
  });
});
