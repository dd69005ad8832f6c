#!/usr/bin/env node
// Writes the generated parts of docs/ (config keys, Arrow columns, report fields) from the schemas
// in the built dist/ (`npm run docs` builds first). `--check`: write nothing, exit 1 when a page is stale.
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderPages, writePages } from '../dist/docs/reference.js';

const root = fileURLToPath(new URL('..', import.meta.url));
try {
  if (process.argv.includes('--check')) {
    const stale = [...renderPages(root)].filter(([page, text]) => readFileSync(join(root, page), 'utf8') !== text);
    for (const [page] of stale) console.error(`${page} is out of date: run npm run docs`);
    process.exitCode = stale.length ? 1 : 0;
  } else {
    const changed = writePages(root);
    console.log(changed.length ? `updated ${changed.join(', ')}` : 'docs/ already up to date');
  }
} catch (error) {
  // A key without a description or a page without its markers: say which, without a stack trace.
  console.error(`gen-docs: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
