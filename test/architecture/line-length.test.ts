import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/shared.js';

/** The longest line Biome formats to (biome.json `lineWidth`); it cannot break long strings and comments. */
const MAX_LINE_CHARACTERS = 120;

/** Files written by a generator, not by hand (none are .ts or .mjs today). */
const GENERATED: readonly string[] = [];

/** The tracked and new (not ignored) .ts and .mjs files of the repository, relative to its root. */
function sourceFiles(): string[] {
  const listed = execFileSync(
    'git',
    ['ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', '*.ts', '*.mjs'],
    { cwd: repoRoot, encoding: 'utf8' },
  );
  const files = [...new Set(listed.split('\0').filter(Boolean))];
  // A file deleted in the working tree but not yet in the index is still listed by --cached.
  return files.filter((file) => !GENERATED.includes(file) && existsSync(join(repoRoot, file))).sort();
}

/** `file:line (n characters)` for every line of `text` longer than `max` characters (code points, as editors count). */
function longLines(file: string, text: string, max: number): string[] {
  const found: string[] = [];
  text.split('\n').forEach((line, index) => {
    const characters = [...line.replace(/\r$/, '')].length;
    if (characters > max) found.push(`${file}:${index + 1} (${characters} characters)`);
  });
  return found;
}

describe('line length', () => {
  it('counts characters, not bytes or UTF-16 units, and names file, line and length', () => {
    expect(longLines('a.ts', `${'x'.repeat(120)}\n${'τ'.repeat(120)}\n${'😀'.repeat(120)}\r\n`, 120)).toEqual([]);
    expect(longLines('a.ts', `ok\n${'x'.repeat(121)}\nok\n${'τ'.repeat(130)}`, 120)).toEqual([
      'a.ts:2 (121 characters)',
      'a.ts:4 (130 characters)',
    ]);
  });

  it(`no .ts or .mjs line is longer than ${MAX_LINE_CHARACTERS} characters`, () => {
    const files = sourceFiles();
    expect(files.length).toBeGreaterThan(100); // the listing found the tree, not an empty folder
    const tooLong = files.flatMap((file) =>
      longLines(file, readFileSync(join(repoRoot, file), 'utf8'), MAX_LINE_CHARACTERS),
    );
    expect(tooLong).toEqual([]);
  });
});
