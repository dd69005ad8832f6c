import { createHash, hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { nativeHashing, type NativeHashing } from '../backend/native.js';

/** sha256 of a file, streamed (hex). */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * A number in [0, 1) fixed by `text` forever: the first 4 bytes of its sha256, big-endian, / 2^32.
 * Decides the held-out split and distill's shards, so a row never moves as the dataset grows.
 * `native`: the addon's hashing (null: crypto.hash; the same digest either way).
 */
export function hashUnit(text: string, native: NativeHashing | null = nativeHashing() ?? null): number {
  let first32: number;
  if (native) first32 = native.sha256Prefix32(text);
  else {
    // 'binary' (latin1, one char per byte): a short heap string is cheaper to make than a Buffer.
    const digest = hash('sha256', text, 'binary');
    first32 =
      ((digest.charCodeAt(0) << 24) |
        (digest.charCodeAt(1) << 16) |
        (digest.charCodeAt(2) << 8) |
        digest.charCodeAt(3)) >>>
      0;
  }
  return first32 / 2 ** 32;
}
