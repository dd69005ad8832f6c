/**
 * `fireopt distill` keeps the target's end of generation: on stories260K (whose stories end with
 * its end token: see writeStoriesGguf), the targets written through the llama-cpp engine, the tfjs
 * engine and the openai engine against `fireopt serve` are the same token for token, equal
 * llama.cpp's own greedy output, end with the end token where the model stopped (`stop`), and
 * never hold an empty completion.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTargetRows, type TargetRow } from '../../src/formats/targets-schema.js';
import { serveModel, type ServingModel } from '../../src/serve/open.js';
import { matchesFromTeacherForcing, simulateGreedy } from '../../src/speculation/acceptance.js';
import { samplingOptions } from '../../src/targets/engine.js';
import { epochBatches } from '../../src/train/data.js';
import { fullVocab } from '../../src/train/vocab.js';
import { LlamaCppEngine } from '../../src/targets/llama-cpp/engine.js';
import { runCli } from '../helpers/cli.js';
import { haveShared, STORIES260K, TOK512 } from '../helpers/shared.js';
import { BOS, writeStoriesGguf, type StoriesGguf } from '../targets/stories-gguf.js';

const MAX_TOKENS = 64;

describe.skipIf(!haveShared(STORIES260K, TOK512))('fireopt distill keeps the end of generation', () => {
  let work: string;
  let gguf: StoriesGguf;
  let reference: LlamaCppEngine;
  let serving: ServingModel;
  let dataset: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'fireopt-distill-eos-'));
    gguf = writeStoriesGguf({ endsWithBos: true });
    const local = {
      model: gguf.path,
      contextSize: 512,
      threads: 1,
      sequences: 1,
      batchSize: 512,
      kvCacheType: 'f32',
    } as const;
    reference = await LlamaCppEngine.open(local);
    serving = await serveModel({ ...local, host: '127.0.0.1', port: 0 });
    // Prompts: openings of the story the model tells from BOS, cut near its end so that it stops
    // within MAX_TOKENS, and one short opening it continues past MAX_TOKENS.
    const [story] = await reference.generate({ tokenIds: [BOS] }, samplingOptions({ maxTokens: 400 }));
    const openings = [300, 315, 325, 335].map((n) => reference.detokenize(story.tokenIds.slice(0, n)));
    const traces = join(work, 'traces.jsonl');
    const lines = [...openings, 'Once upon a time'].map((prompt) => JSON.stringify({ prompt }));
    writeFileSync(traces, lines.join('\n') + '\n');
    dataset = join(work, 'dataset');
    const ingested = await runCli(['--quiet', 'ingest', traces, '--out', dataset, '--heldout', '0']);
    expect(ingested.code, ingested.stderr).toBe(0);
  });

  afterAll(async () => {
    await serving?.close();
    await reference?.close();
    gguf?.remove();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  async function distill(name: string, targetArgs: string[]): Promise<TargetRow[]> {
    const out = join(work, name);
    const limits = ['--max-tokens', String(MAX_TOKENS), '--top-logprobs', '2'];
    const result = await runCli(['--quiet', ...targetArgs, 'distill', dataset, '--out', out, ...limits]);
    expect(result.code, `${name}: ${result.stderr}`).toBe(0);
    const rows: TargetRow[] = [];
    for await (const row of readTargetRows(join(out, 'train.arrow'))) rows.push(row);
    return rows;
  }

  it('llama-cpp, tfjs and openai-through-serve targets agree with llama.cpp, end token included', async () => {
    const f32 = ['--set', 'target.kv_cache_type=f32', '--set', 'target.context_size=512'];
    const model = ['--set', `target.model=${gguf.path}`];
    const viaLlamaCpp = await distill('llama-cpp', [...f32, '--set', 'target.engine=llama-cpp', ...model]);
    const viaTfjs = await distill('tfjs', ['--set', 'target.engine=tfjs', ...model, '--set', 'target.backend=wasm']);
    const viaServe = await distill('openai', [
      '--set',
      'target.engine=openai',
      '--set',
      `target.base_url=${serving.url}/v1`,
      '--set',
      'target.model=stories260K',
      '--set',
      `distill.tokenizer=${gguf.path}`,
    ]);
    expect(viaLlamaCpp).toHaveLength(5);
    const summary = (rows: TargetRow[]) =>
      rows.map((row) => ({
        prompt: [...row.prompt_token_ids],
        completion: [...row.completion_token_ids],
        finish: row.finish_reason,
      }));
    expect(summary(viaTfjs)).toEqual(summary(viaLlamaCpp));
    expect(summary(viaServe)).toEqual(summary(viaLlamaCpp));

    for (const row of viaLlamaCpp) {
      const greedy = samplingOptions({ maxTokens: MAX_TOKENS });
      const [expected] = await reference.generate({ tokenIds: [...row.prompt_token_ids] }, greedy);
      const completion = [...row.completion_token_ids];
      expect(completion).toEqual(expected.tokenIds);
      expect(completion.length).toBeGreaterThan(0);
      expect(completion.slice(0, -1)).not.toContain(BOS);
      if (row.finish_reason === 'stop') expect(completion.at(-1)).toBe(BOS);
      else expect(row.finish_reason === 'length' && completion.length === MAX_TOKENS).toBe(true);
      // the end token's position has the target's log-probabilities like every other
      expect(row.token_logprobs!.length).toBe(completion.length);
      expect(row.top_ids![(completion.length - 1) * 2]).toBe(completion.at(-1));
    }
    expect(viaLlamaCpp.map((row) => row.finish_reason)).toEqual(['stop', 'stop', 'stop', 'stop', 'length']);
  });

  it("train learns the end token (a weighted target) and eval's simulator stops at it", async () => {
    const file = join(work, 'llama-cpp', 'train.arrow');
    const rows: TargetRow[] = [];
    for await (const row of readTargetRows(file)) rows.push(row);
    // Packed training windows: the end token is the trained target after the completion's
    // last text token, and what follows it (the next row's prompt) carries no loss.
    let endTargets = 0;
    let afterEnd = 0;
    const options = { file, vocab: fullVocab(512), seqLen: 48, batchSize: 1, shuffleRows: 1, seed: 0, topK: 2 };
    for await (const batch of epochBatches(options, 0)) {
      for (let i = 0; i < batch.targets.length; i++) {
        if (batch.targets[i] === BOS && batch.weights[i] === 1) endTargets++;
        if (batch.inputs[i] === BOS && i > 0 && batch.targets[i - 1] === BOS) afterEnd += batch.weights[i];
      }
    }
    // windows overlap by one token, so an end token on a window's edge may be counted twice
    expect(endTargets).toBeGreaterThanOrEqual(4);
    expect(afterEnd).toBe(0);
    // A perfect draft: every completion is produced exactly once, the end token last, and the
    // simulator never drafts past it.
    for (const row of rows) {
      const completion = [...row.completion_token_ids];
      for (const k of [1, 4, 8]) {
        const counts = simulateGreedy(matchesFromTeacherForcing(completion, completion), k);
        expect(counts.tokens).toBe(completion.length);
        expect(counts.accepted + counts.steps).toBe(completion.length);
        expect(counts.drafted).toBeLessThanOrEqual(completion.length - 1);
      }
    }
  });
});
