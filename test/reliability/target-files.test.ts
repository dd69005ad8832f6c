/**
 * A missing or wrong target model is reported as what it is (issue 17 item 7): a missing
 * `--target-model` as a missing model (not "tokenizer file not found"), in `fireopt run` before
 * ingest runs; a file named `.gguf` that is not one as "not a GGUF file" (not a truncated llama2.c
 * checkpoint).
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../src/formats/load-model.js';
import { runBin } from '../helpers/cli.js';

let work: string;
let dataset: string;
let notGguf: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'fireopt-target-files-'));
  writeFileSync(
    join(work, 'traces.jsonl'),
    ['Once upon a time', 'The little dog'].map((prompt) => JSON.stringify({ prompt })).join('\n') + '\n',
  );
  dataset = join(work, 'dataset');
  const ingested = runBin(['--quiet', 'ingest', join(work, 'traces.jsonl'), '--out', dataset, '--heldout', '0']);
  expect(ingested.code, ingested.stderr).toBe(0);
  // A llama2.c-looking header (7 int32) in a file named .gguf: it used to be read as a llama2.c checkpoint.
  notGguf = join(work, 'model.gguf');
  writeFileSync(notGguf, Buffer.from(new Int32Array([64, 172, 5, 8, 4, 512, 512, 0, 0]).buffer));
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('target model files', () => {
  it('distill --target-model <missing> names the missing model, exit 2', () => {
    const missing = join(work, 'no-such-model.gguf');
    const result = runBin(['distill', dataset, '--out', join(work, 'targets'), '--target-model', missing]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(`target.model: ${missing}: model not found`);
    expect(result.stderr).not.toContain('tokenizer file not found');
  });

  it('distill --target-model <not a GGUF>.gguf says it is not a GGUF, exit 2', () => {
    const result = runBin(['distill', dataset, '--out', join(work, 'targets'), '--target-model', notGguf]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(`target.model: ${notGguf}: not a GGUF file (bad magic`);
  });

  it('any checkpoint reader refuses a non-GGUF .gguf as such, not as a truncated llama2.c checkpoint', () => {
    expect(() => loadModel(notGguf)).toThrow(`${notGguf}: not a GGUF file (bad magic`);
  });

  it('fireopt run with a missing target model fails before ingest runs', () => {
    const runDir = join(work, 'run');
    writeFileSync(
      join(work, 'pipeline.yaml'),
      [
        'ingest:',
        `  inputs: [${JSON.stringify(join(work, 'traces.jsonl'))}]`,
        'target:',
        '  engine: llama-cpp',
        `  model: ${JSON.stringify(join(work, 'missing-target.gguf'))}`,
        'run:',
        `  dir: ${JSON.stringify(runDir)}`,
        'promotion:',
        `  release: ${JSON.stringify(join(work, 'release'))}`,
        '',
      ].join('\n'),
    );
    const result = runBin(['-c', join(work, 'pipeline.yaml'), 'run']);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(`target.model: ${join(work, 'missing-target.gguf')}: model not found`);
    expect(existsSync(runDir) ? readdirSync(runDir) : []).not.toContain('1-ingest');
  });
});
