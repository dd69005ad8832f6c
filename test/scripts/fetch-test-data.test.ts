/**
 * scripts/fetch-test-data.mjs against a local HTTP server that serves ../shared in the layout of
 * raw.githubusercontent.com (these machines reach no public host): it fetches, checks sha256, writes
 * atomically, keeps what is already there, and refuses a corrupted download.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest, sourceUrl } from '../../scripts/fetch-test-data.mjs';
import { runScript } from '../helpers/cli.js';
import { haveShared, sharedPath, STORIES_TARGETS } from '../helpers/shared.js';
import { INGEST_TRACES } from '../ingest/fixtures.js';
import { PIPELINE_TRACES } from '../pipeline/traces.js';
import { CORPUS_FILES } from '../tokenizer/corpus.js';

type ManifestEntry = ReturnType<typeof readManifest>[number];

const manifest = readManifest();
const SAMPLE = [
  'models/stories260K/tok512.bin',
  'models/stories260K/stories260K.bin',
  'data/bfcl/BFCL_v4_simple_python.json',
];
const CORRUPTED = 'models/stories260K/tok512.bin';
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('scripts/test-data.tsv', () => {
  it('lists every shared file the test fixtures read, each with its source, size and a sha256', () => {
    const listed = new Set(manifest.map((entry) => entry.path));
    for (const path of [...STORIES_TARGETS, ...INGEST_TRACES, ...PIPELINE_TRACES, ...CORPUS_FILES])
      expect(listed, path).toContain(path);
    for (const entry of manifest) {
      expect(entry.repository).toMatch(/^[\w.-]+\/[\w.-]+$/);
      expect(entry.commit).toMatch(/^[0-9a-f]{40}$/);
      expect(entry.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(Number(entry.bytes)).toBeGreaterThan(0);
    }
  });
});

describe.skipIf(!haveShared(...SAMPLE))('fetch-test-data through a local mirror of ../shared', () => {
  let server: Server;
  let baseUrl: string;
  let work: string;
  let corrupt = false;
  const requested: string[] = [];

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'fireopt-fetch-'));
    // Serves each manifest entry at its raw.githubusercontent.com path, from the shared copy.
    server = createServer((request, response) => {
      requested.push(request.url ?? '');
      const entry = manifest.find((e) => new URL(sourceUrl(baseUrl, e)).pathname === request.url);
      if (!entry) return void response.writeHead(404).end();
      const bytes = readFileSync(sharedPath(entry.path));
      if (corrupt && entry.path === CORRUPTED) bytes[100] ^= 0xff;
      response.writeHead(200, { 'content-length': bytes.length }).end(bytes);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('downloads the named files byte for byte, then keeps them on a rerun without downloading again', async () => {
    const out = join(work, 'ok');
    const first = await runScript('scripts/fetch-test-data.mjs', ['--base-url', baseUrl, '--out', out, ...SAMPLE]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(`3 files verified in ${out}; run the tests with FIREOPT_SHARED=${out} npm test`);
    for (const path of SAMPLE) {
      const entry = manifest.find((e) => e.path === path) as ManifestEntry;
      expect(sha256(readFileSync(join(out, path)))).toBe(entry.sha256);
      expect(readFileSync(join(out, path)).equals(readFileSync(sharedPath(path)))).toBe(true);
    }
    expect(requested).toContain('/ytmytm/llama2.c64/555629e7500991e6304285cda2a3f5ff37df8876/tok512.bin');
    const before = requested.length;
    const again = await runScript('scripts/fetch-test-data.mjs', ['--base-url', baseUrl, '--out', out, ...SAMPLE]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.match(/^present /gm)).toHaveLength(3);
    expect(requested.length).toBe(before);
  });

  it(
    'refuses a corrupted download (exit 1, both hashes named, nothing written), ' +
      'and a different file already there',
    async () => {
      const out = join(work, 'corrupt');
      corrupt = true;
      try {
        const result = await runScript('scripts/fetch-test-data.mjs', [
          '--base-url',
          baseUrl,
          '--out',
          out,
          CORRUPTED,
          SAMPLE[1],
        ]);
        expect(result.code).toBe(1);
        const entry = manifest.find((e) => e.path === CORRUPTED) as ManifestEntry;
        expect(result.stderr).toContain(`${CORRUPTED}: downloaded ${entry.bytes} bytes with sha256 `);
        expect(result.stderr).toContain(`expected ${entry.bytes} bytes with sha256 ${entry.sha256} — refused`);
        expect(existsSync(join(out, CORRUPTED))).toBe(false);
        expect(readdirSync(join(out, 'models/stories260K'))).toEqual(['stories260K.bin']); // no partial file left
      } finally {
        corrupt = false;
      }
      writeFileSync(join(out, CORRUPTED), 'not the tokenizer');
      const existing = await runScript('scripts/fetch-test-data.mjs', ['--base-url', baseUrl, '--out', out, CORRUPTED]);
      expect(existing.code).toBe(1);
      expect(existing.stderr).toMatch(
        /tok512\.bin: exists with sha256 [0-9a-f]{64}, expected [0-9a-f]{64} \(not overwritten/,
      );
      expect(readFileSync(join(out, CORRUPTED), 'utf8')).toBe('not the tokenizer');
    },
  );

  it('exits 2 for a path that is not in the manifest, and 1 when the server has no such file', async () => {
    const usage = await runScript('scripts/fetch-test-data.mjs', [
      '--base-url',
      baseUrl,
      '--out',
      join(work, 'x'),
      'models/nope.bin',
    ]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('not in scripts/test-data.tsv: models/nope.bin');
    const missing = await runScript('scripts/fetch-test-data.mjs', [
      '--base-url',
      `${baseUrl}/elsewhere`,
      '--out',
      join(work, 'x'),
      CORRUPTED,
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('404 Not Found');
  });
});
