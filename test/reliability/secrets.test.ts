/**
 * Secrets in server errors (issue 17 item 4): a server that echoes the request's headers in its error
 * bodies must not make fireopt print or store the API key — not on stderr, in the distill journal,
 * failed.jsonl or the manifest. `fireopt serve` over stories260K answers half the prompts; a fault
 * proxy in front of it answers the other half with 500s and 400s that quote the headers.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveModel, type ServingModel } from '../../src/serve/open.js';
import { scrubCredentials } from '../../src/targets/openai/http.js';
import { runBinAsync, runCli, ingestPrompts } from '../helpers/cli.js';
import { haveShared, STORIES260K, TOK512 } from '../helpers/shared.js';
import { startFaultProxy, type FaultProxy } from '../targets/fault-proxy.js';
import { writeStoriesGguf, type StoriesGguf } from '../targets/stories-gguf.js';

const KEY = 'sk-live-7f3a9c2e41d8b6aa0c5e';
const PROMPTS = [
  'Once upon a time',
  'The little dog',
  'She went to the park',
  'Tom and his mom',
  'The sun was',
  'A big fish',
  'Lily had a ball',
  'One day',
];

/** Every file under `dir` (recursively), as text. */
function allText(dir: string): string {
  if (!existsSync(dir)) return '';
  return readdirSync(dir)
    .map((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? allText(path) : readFileSync(path, 'latin1');
    })
    .join('\n');
}

describe('scrubCredentials', () => {
  it('removes the key and Authorization/Bearer values in JSON, header-line and dict forms', () => {
    const echoed = [
      `{"authorization":"Bearer ${KEY}","x":1}`,
      `Authorization: Bearer ${KEY}`,
      `{'Authorization': 'Basic dXNlcjpwYXNz'}`,
      `token=${encodeURIComponent(KEY)} bearer abc.def-ghi`,
    ].join('\n');
    const scrubbed = scrubCredentials(echoed, KEY);
    expect(scrubbed).not.toContain(KEY);
    expect(scrubbed).not.toContain('dXNlcjpwYXNz');
    expect(scrubbed).not.toContain('abc.def-ghi');
    expect(scrubbed).toContain('"x":1');
    expect(JSON.parse(scrubbed.split('\n')[0])).toEqual({ authorization: '[redacted]', x: 1 });
  });
});

describe.skipIf(!haveShared(STORIES260K, TOK512))(
  'fireopt distill against a server that echoes request headers',
  () => {
    let work: string;
    let gguf: StoriesGguf;
    let serving: ServingModel;
    let proxy: FaultProxy;
    let dataset: string;

    beforeAll(async () => {
      work = mkdtempSync(join(tmpdir(), 'fireopt-secrets-'));
      gguf = writeStoriesGguf();
      serving = await serveModel({
        model: gguf.path,
        host: '127.0.0.1',
        port: 0,
        contextSize: 256,
        threads: 1,
        sequences: 2,
        batchSize: 256,
        kvCacheType: 'f32',
      });
      // Every other prompt is faulted on every attempt: those rows fail, after retries, quoting the headers.
      proxy = await startFaultProxy({
        upstream: serving.url,
        faults: ['echo-headers-500', 'echo-headers-400'],
        faultsFor: (ordinal) => (ordinal % 2 ? Infinity : 0),
      });
      dataset = await ingestPrompts(work, PROMPTS);
      writeFileSync(
        join(work, 'distill.yaml'),
        [
          'target:',
          '  engine: openai',
          `  base_url: ${proxy.url}/v1`,
          '  model: stories260K',
          '  api_key_env: FIREOPT_TEST_API_KEY',
          '  concurrency: 2',
          '  timeout_ms: 5000',
          '  max_retries: 2',
          '  retry_min_delay_ms: 1',
          '  retry_max_delay_ms: 5',
          'distill:',
          `  tokenizer: ${gguf.path}`,
          '  max_tokens: 6',
          '',
        ].join('\n'),
      );
    });

    afterAll(async () => {
      await proxy?.close();
      await serving?.close();
      gguf?.remove();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    it('keeps the key out of stderr, the journal, failed.jsonl and the manifest', async () => {
      const out = join(work, 'targets');
      const args = ['-c', join(work, 'distill.yaml'), 'distill', dataset, '--out', out];
      const env = { FIREOPT_TEST_API_KEY: KEY };

      // Too many failures for the default max_failures: exit 1, the journal stays for a resume.
      const failed = await runBinAsync(args, { env });
      expect(failed.code, failed.stderr).toBe(1);
      expect(failed.stderr).toContain('[redacted]'); // the echoed headers did reach the messages
      expect(failed.stderr).not.toContain(KEY);
      const journal = join(work, '.targets.distill-journal');
      expect(existsSync(journal)).toBe(true);
      const journalText = allText(journal);
      expect(journalText).toContain('[redacted]');
      expect(journalText).not.toContain(KEY);

      // Resumed with the failures allowed: the output holds failed.jsonl and the manifest.
      const finished = await runBinAsync([...args, '--set', 'distill.max_failures=100'], { env });
      expect(finished.code, finished.stderr).toBe(0);
      expect(finished.stdout + finished.stderr).not.toContain(KEY);
      const failedRows = readFileSync(join(out, 'failed.jsonl'), 'utf8');
      expect(failedRows.trim().split('\n')).toHaveLength(PROMPTS.length / 2);
      expect(failedRows).toContain('[redacted]');
      expect(allText(out)).not.toContain(KEY);
      expect(proxy.injected.get('echo-headers-400')! + proxy.injected.get('echo-headers-500')!).toBeGreaterThan(0);
    });
  },
);
