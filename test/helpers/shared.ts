/** Where the real models and data live: `../shared` beside the checkout (read in place, never copied). */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const sharedDir = process.env.FIREOPT_SHARED ?? resolve(repoRoot, '../shared');

export function sharedPath(...parts: string[]): string {
  const path = join(sharedDir, ...parts);
  if (!existsSync(path)) throw new Error(`missing shared file ${path}: tests read real models and data from ../shared`);
  return path;
}

export const stories260K = () => sharedPath('models/stories260K/stories260K.bin');
export const tok512 = () => sharedPath('models/stories260K/tok512.bin');
