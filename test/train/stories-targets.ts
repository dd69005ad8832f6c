/**
 * Real distillation targets for the train tests: the stories260K target (converted to GGUF by
 * fireopt), real ShareGPT prompt openings, `fireopt ingest` and `fireopt distill` as users run them.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { SHAREGPT, sharedPath } from '../helpers/shared.js';
import { writeStoriesGguf } from '../targets/stories-gguf.js';

export interface StoriesTargets {
  work: string;
  targets: string;
  remove(): void;
}

interface ShareGpt {
  conversations: Array<{ from: string; value: string }>;
}

/** Ingest `prompts` ShareGPT openings (25% held out) and distill greedy completions with top-4 log-probabilities. */
export async function makeStoriesTargets(prompts: number, maxTokens: number): Promise<StoriesTargets> {
  const work = mkdtempSync(join(tmpdir(), 'fireopt-train-'));
  const gguf = writeStoriesGguf();
  try {
    const sharegpt = JSON.parse(readFileSync(sharedPath(SHAREGPT), 'utf8')) as ShareGpt[];
    const lines = sharegpt
      .slice(0, prompts)
      .map((c) => JSON.stringify({ prompt: c.conversations[0].value.split(/\s+/).slice(0, 6).join(' ') }));
    writeFileSync(join(work, 'prompts.jsonl'), lines.join('\n') + '\n');
    const ingested = await runCli([
      '--quiet',
      'ingest',
      join(work, 'prompts.jsonl'),
      '--out',
      join(work, 'dataset'),
      '--heldout',
      '0.25',
    ]);
    expect(ingested.code, ingested.stderr).toBe(0);
    const targets = join(work, 'targets');
    const distilled = await runCli([
      '--quiet',
      'distill',
      join(work, 'dataset'),
      '--out',
      targets,
      '--target-model',
      gguf.path,
      '--max-tokens',
      String(maxTokens),
      '--top-logprobs',
      '4',
      '--set',
      'target.kv_cache_type=f32',
    ]);
    expect(distilled.code, distilled.stderr).toBe(0);
    return { work, targets, remove: () => rmSync(work, { recursive: true, force: true }) };
  } finally {
    gguf.remove();
  }
}
