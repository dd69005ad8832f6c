/**
 * Where the real models and data live: `../shared` beside the checkout, or `FIREOPT_SHARED` (read in
 * place, never copied). A fresh clone may not have it: tests that need it skip, saying why, unless
 * `FIREOPT_REQUIRE_SHARED=1` (CI), where a missing file fails the test file instead.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const sharedDir = process.env.FIREOPT_SHARED ?? resolve(repoRoot, '../shared');
export const requireShared = process.env.FIREOPT_REQUIRE_SHARED === '1';

/** The path of a shared file; throws when it is missing (guard the test with `haveShared` first). */
export function sharedPath(...parts: string[]): string {
  const path = join(sharedDir, ...parts);
  if (!existsSync(path)) throw new Error(`missing shared file ${path}: tests read real models and data from ../shared`);
  return path;
}

const warned = new Set<string>();

/**
 * Whether every named shared file (each a path relative to the shared folder) exists. When one is
 * missing it prints one line saying which test skips and why, or throws when FIREOPT_REQUIRE_SHARED=1.
 * Use as `describe.skipIf(!haveShared('models/stories260K/stories260K.bin'))(...)`.
 */
export function haveShared(...relativePaths: string[]): boolean {
  const missing = relativePaths.filter((p) => !existsSync(join(sharedDir, p)));
  if (missing.length === 0) return true;
  const line = `missing shared file(s) ${missing.map((p) => join(sharedDir, p)).join(', ')}`;
  if (requireShared) throw new Error(`${line} (FIREOPT_REQUIRE_SHARED=1: real models and data must be present)`);
  if (!warned.has(line)) {
    warned.add(line);
    console.warn(`skipping tests that need real data: ${line} (set FIREOPT_SHARED or run npm run fetch-test-data)`);
  }
  return false;
}

export const STORIES260K = 'models/stories260K/stories260K.bin';
export const TOK512 = 'models/stories260K/tok512.bin';
export const stories260K = () => sharedPath(STORIES260K);
export const tok512 = () => sharedPath(TOK512);
export const SHAREGPT = 'data/sharegpt_prompts/ShareGPT_V3_filtered_500.json';
/** What `makeStoriesTargets` (test/train/stories-targets.ts) reads: the target model and ShareGPT prompts. */
export const STORIES_TARGETS = [STORIES260K, TOK512, SHAREGPT] as const;
