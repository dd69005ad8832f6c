#!/usr/bin/env node
/**
 * `npm run fetch-test-data [-- --out DIR] [-- --base-url URL] [PATH...]`: downloads the real models and
 * data the tests read (scripts/test-data.tsv: path, repository, commit, source path, bytes, sha256)
 * from their public sources into DIR (default: FIREOPT_SHARED, else ../shared beside the checkout),
 * checking each file's size and sha256 before it is renamed into place. Files already there with the
 * right hash are kept; a file there with another hash is an error, never overwritten.
 * Exit codes: 0 all present, 1 a download failed or a hash did not match, 2 bad usage.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pRetry, { AbortError } from 'p-retry';

const repoRoot = resolve(import.meta.dirname, '..');
const manifestPath = join(repoRoot, 'scripts/test-data.tsv');
/** Where GitHub serves a file of a repository at a commit: `<base>/<owner>/<repo>/<commit>/<path>`. */
const GITHUB_RAW = 'https://raw.githubusercontent.com';

/**
 * @typedef {{
 *   path: string, repository: string, commit: string, source_path: string, bytes: string, sha256: string
 * }} ManifestEntry
 */

/**
 * The manifest rows: one per file, with where it comes from and what it must hash to.
 * @returns {ManifestEntry[]}
 */
export function readManifest(path = manifestPath) {
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line && !line.startsWith('#'));
  const [header, ...rows] = lines.map((line) => line.split('\t'));
  return rows.map(
    (cells) => /** @type {ManifestEntry} */ (Object.fromEntries(header.map((name, i) => [name, cells[i]]))),
  );
}

/**
 * The URL of a manifest entry under a raw.githubusercontent.com-style base.
 * @param {string} baseUrl
 * @param {ManifestEntry} entry
 */
export function sourceUrl(baseUrl, entry) {
  return `${baseUrl.replace(/\/+$/, '')}/${entry.repository}/${entry.commit}/${entry.source_path}`;
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

class UsageError extends Error {}

/** Download one entry into `outDir` (write to a temporary name, check, rename); returns what happened. */
async function fetchEntry(entry, outDir, baseUrl) {
  const target = join(outDir, entry.path);
  if (existsSync(target)) {
    const found = sha256(readFileSync(target));
    if (found === entry.sha256) return 'present';
    throw new Error(
      `${target}: exists with sha256 ${found}, expected ${entry.sha256} (not overwritten: move it away and re-run)`,
    );
  }
  const url = sourceUrl(baseUrl, entry);
  const bytes = await pRetry(
    async () => {
      const response = await fetch(url);
      // A missing file will not appear on a retry; a server error or a dropped connection may pass.
      if (response.status === 404) throw new AbortError(`${url}: 404 Not Found`);
      if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
      return Buffer.from(await response.arrayBuffer());
    },
    { retries: 3, minTimeout: 1000 },
  );
  const got = sha256(bytes);
  if (bytes.length !== Number(entry.bytes) || got !== entry.sha256) {
    throw new Error(
      `${entry.path}: downloaded ${bytes.length} bytes with sha256 ${got} from ${url}, ` +
        `expected ${entry.bytes} bytes with sha256 ${entry.sha256} — refused (nothing written)`,
    );
  }
  mkdirSync(dirname(target), { recursive: true });
  const partial = `${target}.part-${process.pid}`;
  try {
    writeFileSync(partial, bytes);
    renameSync(partial, target);
  } finally {
    rmSync(partial, { force: true });
  }
  return 'downloaded';
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      'base-url': { type: 'string', default: process.env.FIREOPT_TEST_DATA_URL ?? GITHUB_RAW },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(
      'usage: node scripts/fetch-test-data.mjs [--out DIR] [--base-url URL] [PATH...]   ' +
        '(PATH: a path of scripts/test-data.tsv)',
    );
    return 0;
  }
  const outDir = resolve(values.out ?? process.env.FIREOPT_SHARED ?? join(repoRoot, '../shared'));
  const manifest = readManifest();
  const unknown = positionals.filter((path) => !manifest.some((entry) => entry.path === path));
  if (unknown.length > 0) throw new UsageError(`not in scripts/test-data.tsv: ${unknown.join(', ')}`);
  const entries = positionals.length > 0 ? manifest.filter((entry) => positionals.includes(entry.path)) : manifest;
  const failures = [];
  for (const entry of entries) {
    try {
      const outcome = await fetchEntry(entry, outDir, values['base-url']);
      console.log(`${outcome === 'present' ? 'present   ' : 'downloaded'} ${entry.path}`);
    } catch (error) {
      failures.push(entry.path);
      console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (failures.length > 0) {
    console.error(`${failures.length} of ${entries.length} files failed; the others are in ${outDir}`);
    return 1;
  }
  const isDefault = outDir === resolve(repoRoot, '../shared');
  console.log(
    `${entries.length} files verified in ${outDir}` +
      `${isDefault ? '' : `; run the tests with FIREOPT_SHARED=${outDir} npm test`}`,
  );
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  main().then(
    (code) => (process.exitCode = code),
    (error) => {
      console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = error instanceof UsageError || String(error?.code).startsWith('ERR_PARSE_ARGS') ? 2 : 1;
    },
  );
}
