/**
 * Shards: `fireopt distill --shard i/n` takes the rows whose id hashes to part i of n. The hash is the
 * row id's alone (not its position), so a row keeps its shard when the dataset grows, as a
 * conversation keeps its held-out split; `fireopt merge` puts the shards back in dataset order.
 */
import { UsageError } from '../errors.js';
import { hashUnit } from './hash.js';

/** Part `index` (0-based) of `count`. */
export interface ShardSpec {
  index: number;
  count: number;
}

/** Parse `i/n` (0 ≤ i < n), as `--shard $(JOB_COMPLETION_INDEX)/N` gives it. */
export function parseShard(text: string): ShardSpec {
  const match = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = match ? Number(match[1]) : Number.NaN;
  const count = match ? Number(match[2]) : Number.NaN;
  if (!match || count < 1 || index >= count || count > 1_000_000) {
    throw new UsageError(
      `--shard ${text}: expected i/n with 0 <= i < n (e.g. 0/4 … 3/4)`,
      'HINT: in a Kubernetes Indexed Job: --shard $(JOB_COMPLETION_INDEX)/<completions>',
    );
  }
  return { index, count };
}

/** The shard (0 … count-1) a row id belongs to. */
export function shardOf(rowId: string, count: number): number {
  // Salted apart from the held-out split's hash, so a shard is not correlated with the split.
  return Math.min(count - 1, Math.floor(hashUnit(`fireopt-shard\u0000${rowId}`) * count));
}

/** `i/n`, as users write it. */
export function shardName(shard: ShardSpec): string {
  return `${shard.index}/${shard.count}`;
}
