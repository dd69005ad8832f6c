/**
 * OpenAI tool-call traces (assistant turns with `content: null`) rendered by a real chat template
 * that concatenates content (Phi-3's, from llama.cpp's vocab-only GGUF): every row of
 * datasets/example-traces.jsonl distills, through the spawned CLI.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBin, runCli } from '../helpers/cli.js';
import { haveShared, repoRoot, sharedPath } from '../helpers/shared.js';

const PHI3_VOCAB = 'models/vocab/ggml-vocab-phi-3.gguf';

describe.skipIf(!haveShared(PHI3_VOCAB))("null message content with Phi-3's chat template", () => {
  const work = mkdtempSync(join(tmpdir(), 'fireopt-null-content-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('renders the tool-call traces (content null) without failing a row', async () => {
    const dataset = join(work, 'dataset');
    const ingested = await runCli([
      '--quiet',
      'ingest',
      join(repoRoot, 'datasets/example-traces.jsonl'),
      '--out',
      dataset,
    ]);
    expect(ingested.code, ingested.stderr).toBe(0);
    const out = join(work, 'targets');
    const run = runBin([
      '--json',
      '--quiet',
      'distill',
      dataset,
      '--out',
      out,
      '--mode',
      'traces',
      '--tokenizer',
      sharedPath(PHI3_VOCAB),
    ]);
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout) as { counts: { ok: number; failed: number } };
    expect(summary.counts.failed).toBe(0);
    expect(summary.counts.ok).toBeGreaterThan(10);
  });
});
