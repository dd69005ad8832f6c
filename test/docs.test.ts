/** The docs: generated parts match the schemas, every relative link resolves, the README stays one screenful. */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { configSchema } from '../src/config/schema.js';
import { renderPages, replaceGenerated } from '../src/docs/reference.js';
import { repoRoot } from './helpers/shared.js';

const read = (path: string): string => readFileSync(join(repoRoot, path), 'utf8');

describe('generated reference docs', () => {
  it('match what `npm run docs` writes from the schemas', () => {
    for (const [page, expected] of renderPages(repoRoot)) {
      expect(read(page), `${page} is out of date: run npm run docs`).toBe(expected);
    }
  });

  it('list every config key with its default, as the schema resolves it', () => {
    const configPage = read('docs/config.md');
    const rowOf = (path: string): string | undefined =>
      configPage.split('\n').find((line) => line.startsWith(`| \`${path}\` |`));
    // Walk the defaults zod itself fills in (independent of the generator's JSON Schema walk).
    const check = (value: unknown, path: string): void => {
      if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length) {
        for (const [key, child] of Object.entries(value)) check(child, `${path}.${key}`);
        return;
      }
      const row = rowOf(path);
      expect(row, `no row for ${path}`).toBeDefined();
      const shown = typeof value === 'string' ? value : JSON.stringify(value);
      expect(row, `${path}: default ${shown} not shown`).toContain(`\`${shown}\``);
    };
    const defaults = configSchema.parse({}) as Record<string, unknown>;
    for (const [key, value] of Object.entries(defaults)) check(value, key);
  });

  it('replace only the text between their markers, and name the page when markers are missing', () => {
    const begin = '<!-- generated:x (npm run docs; do not edit by hand) -->';
    const page = `intro\n${begin}\nold\n<!-- /generated:x -->\noutro\n`;
    expect(replaceGenerated('p.md', page, 'x', 'new')).toBe(`intro\n${begin}\n\nnew\n\n<!-- /generated:x -->\noutro\n`);
    expect(() => replaceGenerated('p.md', 'no markers', 'x', 'new')).toThrow(/p\.md: markers for "x" not found/);
  });
});

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchorsIn(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let inFence = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) inFence = !inFence;
    const heading = !inFence && line.match(/^#{1,6}\s+(.*)$/);
    if (!heading) continue;
    const base = anchorOf(heading[1]);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count ? `${base}-${count}` : base);
  }
  return anchors;
}

function markdownFiles(): string[] {
  const files = ['README.md', 'bench/RESULTS.md'];
  for (const folder of ['docs', 'bench/history']) {
    if (!existsSync(join(repoRoot, folder))) continue;
    for (const name of readdirSync(join(repoRoot, folder)).sort()) {
      if (name.endsWith('.md')) files.push(`${folder}/${name}`);
    }
  }
  return files;
}

describe('README and docs/', () => {
  it('link only to files and headings that exist', () => {
    const broken: string[] = [];
    for (const file of markdownFiles()) {
      const text = read(file).replace(/```[\s\S]*?```/g, '');
      for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const link = match[1];
        if (/^[a-z]+:/i.test(link)) continue; // https:, mailto: — not checked (no network here)
        const [target, anchor] = link.split('#');
        const path = target ? join(dirname(join(repoRoot, file)), decodeURIComponent(target)) : join(repoRoot, file);
        if (!existsSync(path)) {
          broken.push(`${file}: ${link} (no such file)`);
        } else if (anchor && statSync(path).isFile() && path.endsWith('.md')) {
          if (!anchorsIn(readFileSync(path, 'utf8')).has(anchor)) {
            broken.push(`${file}: ${link} (no heading #${anchor} in ${relative(repoRoot, path)})`);
          }
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it('show configs that fireopt accepts', () => {
    const blocks = markdownFiles().flatMap((file) =>
      [...read(file).matchAll(/```yaml\n([\s\S]*?)```/g)].map((match) => ({ file, yaml: match[1] })),
    );
    expect(blocks.length).toBeGreaterThan(0);
    const dir = mkdtempSync(join(tmpdir(), 'fireopt-docs-'));
    try {
      blocks.forEach(({ file, yaml }, index) => {
        const path = join(dir, `${index}.yaml`);
        writeFileSync(path, yaml);
        expect(() => loadConfig({ file: path }), `the config in ${file}`).not.toThrow();
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keep the README to one screenful of 250 lines at most', () => {
    expect(read('README.md').trimEnd().split('\n').length).toBeLessThanOrEqual(250);
  });
});
