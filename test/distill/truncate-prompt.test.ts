/**
 * `distill.truncate_prompt` through the spawned CLI, in `traces` mode (no target engine needed):
 * `error` (the default) fails long prompts, `left` keeps their last max_prompt_tokens tokens and
 * counts them in the summary and the manifest.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DistillSummary } from '../../src/distill/index.js';
import { readTargetRows, type TargetRow } from '../../src/formats/targets-schema.js';
import { runBin, runCli } from '../helpers/cli.js';
import { haveShared, repoRoot, sharedPath } from '../helpers/shared.js';

const MAX_PROMPT = 24;
const PHI3_VOCAB = 'models/vocab/ggml-vocab-phi-3.gguf';

async function rows(targets: string): Promise<Map<string, TargetRow>> {
  const byId = new Map<string, TargetRow>();
  for (const split of ['train', 'heldout']) {
    for await (const row of readTargetRows(join(targets, `${split}.arrow`))) byId.set(row.id, row);
  }
  return byId;
}

describe.skipIf(!haveShared(PHI3_VOCAB))('distill --truncate-prompt', () => {
  let work: string;
  let dataset: string;
  const distill = (out: string, ...extra: string[]) =>
    runBin([
      '--json',
      '--quiet',
      'distill',
      dataset,
      '--out',
      join(work, out),
      '--mode',
      'traces',
      '--tokenizer',
      sharedPath(PHI3_VOCAB),
      // Plain text: phi-3's template fails on the example's tool-call turns (null content).
      '--set',
      'distill.chat_template=none',
      ...extra,
    ]);

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'fireopt-truncate-'));
    dataset = join(work, 'dataset');
    const traces = join(repoRoot, 'datasets/example-traces.jsonl');
    const ingested = await runCli(['--quiet', 'ingest', traces, '--out', dataset]);
    expect(ingested.code, ingested.stderr).toBe(0);
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('error (default): a prompt over max_prompt_tokens fails its row with the reason, and the run exits 1', () => {
    const run = distill('strict', '--set', `distill.max_prompt_tokens=${MAX_PROMPT}`);
    expect(run.code).toBe(1);
    const reason = `prompt is \\d+ tokens, more than distill.max_prompt_tokens \\(${MAX_PROMPT}\\)`;
    expect(run.stderr).toMatch(new RegExp(reason));
  });

  it('left: keeps the last max_prompt_tokens tokens of each long prompt and counts them', async () => {
    const full = distill('full');
    expect(full.code, full.stderr).toBe(0);
    const cut = distill('cut', '--set', `distill.max_prompt_tokens=${MAX_PROMPT}`, '--truncate-prompt', 'left');
    expect(cut.code, cut.stderr).toBe(0);
    const summary = JSON.parse(cut.stdout) as DistillSummary;
    const fullRows = await rows(join(work, 'full'));
    const cutRows = await rows(join(work, 'cut'));
    expect([...cutRows.keys()].sort()).toEqual([...fullRows.keys()].sort()); // no row dropped
    let truncatedRows = 0;
    let droppedTokens = 0;
    for (const [id, row] of fullRows) {
      const prompt = Array.from(row.prompt_token_ids);
      const kept = Array.from((cutRows.get(id) as TargetRow).prompt_token_ids);
      expect(kept).toEqual(prompt.slice(Math.max(0, prompt.length - MAX_PROMPT)));
      const completion = Array.from((cutRows.get(id) as TargetRow).completion_token_ids);
      expect(completion).toEqual(Array.from(row.completion_token_ids));
      if (prompt.length > MAX_PROMPT) {
        truncatedRows++;
        droppedTokens += prompt.length - MAX_PROMPT;
      }
    }
    expect(truncatedRows).toBeGreaterThan(0);
    expect(truncatedRows).toBeLessThan(fullRows.size); // some prompts fit and are untouched
    expect(summary.counts.truncated).toBe(truncatedRows);
    expect(summary.tokens.truncated).toBe(droppedTokens);
    expect(summary.counts.failed).toBe(0);
    const manifest = JSON.parse(readFileSync(join(work, 'cut', 'manifest.json'), 'utf8')) as {
      counts: DistillSummary['counts'];
      tokens: DistillSummary['tokens'];
      config: { distill: { truncate_prompt: string } };
    };
    expect(manifest.counts.truncated).toBe(truncatedRows);
    expect(manifest.tokens.truncated).toBe(droppedTokens);
    expect(manifest.config.distill.truncate_prompt).toBe('left');
  });

  it('rejects an unknown side with exit 2', () => {
    const run = distill('bad', '--truncate-prompt', 'right');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--truncate-prompt.*right.*Allowed choices are error, left/s);
  });
});
