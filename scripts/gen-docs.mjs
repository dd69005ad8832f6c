#!/usr/bin/env node
// Writes the generated parts of docs/ (config keys, Arrow columns, report fields) from the schemas
// in the built dist/ (`npm run docs` builds first). `--check`: write nothing, exit 1 when a page is stale.
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderPages, writePages } from '../dist/docs/reference.js';

const root = fileURLToPath(new URL('..', import.meta.url));
if (process.argv.includes('--check')) {
  const stale = [...renderPages(root)].filter(([page, text]) => readFileSync(join(root, page), 'utf8') !== text);
  for (const [page] of stale) console.error(`${page} is out of date: run npm run docs`);
  process.exit(stale.length ? 1 : 0);
}
const changed = writePages(root);
console.log(changed.length ? `updated ${changed.join(', ')}` : 'docs/ already up to date');
