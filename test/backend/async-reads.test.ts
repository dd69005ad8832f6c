/**
 * Decoding, evaluation, export and the tfjs target engine read tensors only asynchronously, which is
 * what lets those commands run on the webgpu backend (under Node it cannot read a GPU tensor
 * synchronously) and `auto` choose a found adapter for every command. Checked for real without a
 * GPU, as test/train/async-reads.test.ts does for training: on the cpu backend every synchronous read
 * throws while the model core decodes the real stories260K, `fireopt eval` scores a draft beside the
 * model-free baselines, `fireopt export` writes reference logits and probes a reduced-vocabulary
 * draft, and `fireopt distill` runs the tfjs target engine. The results are then checked against
 * one full forward pass read synchronously with the guard lifted, or against llama.cpp.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { readDraftCheckpoint, writeDraftCheckpoint } from '../../src/formats/draft-checkpoint.js';
import { readLlamaGguf } from '../../src/formats/gguf-llama.js';
import { readHfLlama } from '../../src/formats/safetensors.js';
import { readTargetRows } from '../../src/formats/targets-schema.js';
import { readLlama2cCheckpoint } from '../../src/formats/llama2c.js';
import { DecodeSession, LlamaModel, argmax, generate, nextTokenDistributions } from '../../src/model/index.js';
import type { LlamaWeights } from '../../src/model/weights.js';
import {
  DraftModel,
  DraftModelProposer,
  matchesWithProposer,
  teacherForcedDraft,
} from '../../src/speculation/index.js';
import { samplingOptions } from '../../src/targets/engine.js';
import { TfjsEngine } from '../../src/targets/tfjs/engine.js';
import { reportSchema } from '../../src/evaluate/report-schema.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { haveShared, STORIES_TARGETS, stories260K } from '../helpers/shared.js';
import { forbidSyncReads } from '../helpers/sync-reads.js';
import { writeNoisyDraft, type NoisyDraft } from '../speculation/fixtures.js';
import { makeStoriesTargets, type StoriesTargets } from '../train/stories-targets.js';

const BOS = 1;
let data: StoriesTargets;
let draft: NoisyDraft;

beforeAll(async () => {
  data = await makeStoriesTargets(24, 32); // real ShareGPT openings, distilled by llama.cpp
  draft = writeNoisyDraft({ noise: 0.05, keepLayers: 4 });
  await initBackend('cpu'); // what `--set *.backend=cpu` selects, started before any guard
});

afterAll(() => {
  data?.remove();
  draft?.remove();
});

/** Run `body` with every synchronous read throwing; fails the test if one was attempted. */
async function withoutSyncReads<T>(path: string, body: () => Promise<T>): Promise<T> {
  const guard = forbidSyncReads(path);
  let result: T;
  try {
    // The guard is effective.
    const probe = tf.scalar(1);
    expect(() => probe.dataSync()).toThrow(/synchronous read/);
    probe.dispose();
    guard.attempts.length = 0;
    result = await body();
  } finally {
    guard.restore();
  }
  expect(guard.attempts).toEqual([]);
  return result;
}

/** Logits of one full forward pass, read synchronously: [tokens.length × V]. */
function forwardLogits(model: LlamaModel, tokens: number[]): Float32Array {
  const logits = tf.tidy(() => model.forward(tf.tensor2d(tokens, [1, tokens.length], 'int32')));
  try {
    return logits.dataSync() as Float32Array;
  } finally {
    logits.dispose();
  }
}

/** Natural-log softmax of one row, in float64. */
function logSoftmax(logits: Float32Array, offset: number, length: number): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < length; i++) max = Math.max(max, logits[offset + i]);
  let sum = 0;
  for (let i = 0; i < length; i++) sum += Math.exp(logits[offset + i] - max);
  const logSum = max + Math.log(sum);
  return Float64Array.from({ length }, (_, i) => logits[offset + i] - logSum);
}

function expectExit0(result: CliResult): void {
  expect(result.code, result.stderr).toBe(0);
}

describe.skipIf(!haveShared(...STORIES_TARGETS))(
  'decoding, eval, export and the tfjs target without synchronous reads',
  () => {
    it('the model core decodes, scores and proposes (stories260K) while every synchronous read throws', async () => {
      const model = LlamaModel.fromWeights(readLlama2cCheckpoint(stories260K()), { trainable: false });
      const V = model.config.vocabSize;
      try {
        const run = await withoutSyncReads('decoding', async () => {
          const greedy = await generate(model, [BOS], { maxNewTokens: 48 });
          const sampled = await generate(model, [BOS], { maxNewTokens: 24, temperature: 0.9, topP: 0.95, seed: 5 });
          const sequence = [BOS, ...greedy.tokens.slice(0, -1)];
          const logProbs = await nextTokenDistributions(model, sequence, 'logprobs');
          // Chunks, a rolled-back draft, and the rest.
          const session = new DecodeSession(model);
          const chunks: Float32Array[] = [];
          try {
            chunks.push(await session.feed(sequence.slice(0, 20)));
            await session.feed([7, 8, 9]);
            session.truncate(20);
            chunks.push(await session.feed(sequence.slice(20)));
          } finally {
            session.dispose();
          }
          const draftModel = new DraftModel(model);
          const incremental = await matchesWithProposer(new DraftModelProposer(draftModel), [BOS], greedy.tokens);
          const [teacherForced] = await teacherForcedDraft(draftModel, [
            { promptIds: [BOS], completionIds: greedy.tokens },
          ]);
          return { greedy, sampled, sequence, logProbs, chunks, incremental, teacherForced };
        });

        expect(run.greedy.tokens).toHaveLength(48);
        expect(run.sampled.tokens).toHaveLength(24);
        expect(run.sampled.tokens).not.toEqual(run.greedy.tokens.slice(0, 24));
        // Against one full pass read synchronously (on cpu the cached and full passes agree exactly).
        const full = forwardLogits(model, run.sequence);
        run.greedy.tokens.forEach((token, t) => expect(token).toBe(argmax(full, t * V, V)));
        let worst = 0;
        for (let t = 0; t < run.sequence.length; t++) {
          const expected = logSoftmax(full, t * V, V);
          for (let i = 0; i < V; i++) worst = Math.max(worst, Math.abs(run.logProbs[t * V + i] - expected[i]));
        }
        expect(worst).toBeLessThan(1e-5);
        const fed = new Float32Array(full.length);
        fed.set(run.chunks[0]);
        fed.set(run.chunks[1], run.chunks[0].length);
        // Chunked vs full pass: the native sgemm (products with ≥ 16 rows) sums in another order than
        // the backend's own kernel, a few float32 ulps on logits of ~22 (as in stories-golden.test.ts).
        expect(Math.max(...fed.map((value, i) => Math.abs(value - full[i])))).toBeLessThan(3e-5);
        // The model as its own draft proposes its greedy continuation: every proposal matches in full.
        const n = run.greedy.tokens.length;
        expect(Array.from(run.incremental.matchLengths)).toEqual(
          Array.from({ length: n }, (_, t) => Math.min(8, n - t)),
        );
        expect(Array.from(run.teacherForced.predicted)).toEqual(run.greedy.tokens);
      } finally {
        model.dispose();
      }
    });

    it('fireopt eval scores a draft and the model-free baselines', async () => {
      const out = join(data.work, 'eval');
      const result = await withoutSyncReads('eval', () =>
        runCli([
          '--quiet',
          'eval',
          '--model',
          draft.checkpoint,
          '--data',
          data.targets,
          '--baseline',
          'prompt-lookup',
          '--baseline',
          'suffix',
          '--cost-ratio',
          '0.1',
          '--set',
          'eval.backend=cpu',
          '--out',
          out,
        ]),
      );
      expectExit0(result);
      const report = reportSchema.parse(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')));
      expect(report.candidates.map((c) => c.kind)).toEqual(['draft', 'prompt-lookup', 'suffix']);
      const [scored] = report.candidates;
      expect(scored.sampling_acceptance?.positions).toBe(report.data.tokens);
      expect(scored.by_k[7].tau).toBeGreaterThan(1.5); // a real draft of its own target: it hits often
    });

    it('fireopt export writes reference logits and probes a reduced-vocabulary draft', async () => {
      // A reduced-vocabulary draft: the noisy draft's rows for the specials and 197 merged pieces.
      const checkpoint = readDraftCheckpoint(draft.checkpoint);
      const draftToTarget = Int32Array.from([0, 1, 2, ...Array.from({ length: 197 }, (_, i) => 259 + i)]);
      const reduced = join(data.work, 'reduced-draft');
      const weights: LlamaWeights = {
        ...checkpoint.weights,
        config: { ...checkpoint.weights.config, vocabSize: draftToTarget.length },
        tokenEmbedding: {
          shape: [draftToTarget.length, checkpoint.weights.config.dim],
          data: rowsOf(checkpoint.weights.tokenEmbedding.data, checkpoint.weights.config.dim, draftToTarget),
        },
      };
      expect(checkpoint.weights.output).toBeUndefined(); // tied head: the embedding rows are the output rows
      writeDraftCheckpoint(
        reduced,
        {
          weights,
          vocabulary: checkpoint.vocabulary,
          draftVocabulary: { draftToTarget, targetVocabSize: 512 },
          target: checkpoint.target,
          training: { made_by: 'test: reduced rows of a noisy stories260K', unk_draft_id: 0 },
        },
        {},
      );

      const outFull = join(data.work, 'export-full');
      const outReduced = join(data.work, 'export-reduced');
      const [full, reducedExport] = await withoutSyncReads('export', async () => [
        await runCli([
          '--json',
          '--quiet',
          'export',
          '--model',
          draft.checkpoint,
          '--out',
          outFull,
          '--target',
          draft.targetGguf,
          '--format',
          'hf',
          '--set',
          'export.backend=cpu',
        ]),
        await runCli([
          '--json',
          '--quiet',
          'export',
          '--model',
          reduced,
          '--out',
          outReduced,
          '--target',
          draft.targetGguf,
          '--set',
          'export.backend=cpu',
        ]),
      ]);
      expectExit0(full);
      expectExit0(reducedExport);
      // The probe ran: the reduced draft came out expanded to the target's 512 rows.
      const expandedTo = JSON.parse(reducedExport.stdout) as { gguf: string; vocabulary: Record<string, unknown> };
      expect(expandedTo.vocabulary).toMatchObject({
        draftRows: 200,
        reduced: true,
        gguf: { rows: 512, outsideIds: 312 },
      });
      expect(readLlamaGguf(expandedTo.gguf).weights.config.vocabSize).toBe(512);

      // The reference logits equal one forward pass of the exported weights, read synchronously.
      const hf = (JSON.parse(full.stdout) as { hf: string }).hf;
      const reference = JSON.parse(readFileSync(join(hf, 'reference', 'reference.json'), 'utf8')) as {
        vocab_size: number;
        rows: number;
        prompts: Array<{ token_ids: number[]; row: number }>;
      };
      const bytes = readFileSync(join(hf, 'reference', 'logits.f32'));
      const written = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      expect(reference.prompts.length).toBeGreaterThan(1);
      expect(written.length).toBe(reference.rows * reference.vocab_size);
      const exported = LlamaModel.fromWeights(readHfLlama(hf).weights, { trainable: false });
      try {
        for (const prompt of reference.prompts) {
          const expected = forwardLogits(exported, prompt.token_ids);
          expect(
            written.subarray(prompt.row * reference.vocab_size, prompt.row * reference.vocab_size + expected.length),
          ).toEqual(expected);
        }
      } finally {
        exported.dispose();
      }
    });

    it(
      'the tfjs target engine generates and scores, ' + 'and `fireopt distill` with it gives llama.cpp’s greedy tokens',
      async () => {
        const targetsByLlamaCpp = new Map<string, number[]>();
        for await (const row of readTargetRows(join(data.targets, 'train.arrow')))
          targetsByLlamaCpp.set(row.id, Array.from(row.completion_token_ids));
        const engine = await TfjsEngine.open({ model: draft.targetGguf, backend: 'cpu' });
        const prompt = [BOS, 403, 407, 261];
        const out = join(data.work, 'distill-tfjs');
        try {
          const run = await withoutSyncReads('tfjs target', async () => {
            const [greedy, ...samples] = await engine.generate(
              { tokenIds: prompt },
              samplingOptions({ maxTokens: 16, topLogprobs: 4 }),
            );
            const sampled = await engine.generate(
              { tokenIds: prompt },
              samplingOptions({ maxTokens: 16, temperature: 1, seed: 3, n: 2 }),
            );
            const scored = await engine.score({ tokenIds: prompt }, greedy.tokenIds, { topLogprobs: 4 });
            const distilled = await runCli([
              '--quiet',
              'distill',
              join(data.work, 'dataset'),
              '--out',
              out,
              '--set',
              `target={engine: tfjs, model: ${draft.targetGguf}, backend: cpu}`,
              '--max-tokens',
              '32',
              '--top-logprobs',
              '4',
            ]);
            return { greedy, samples, sampled, scored, distilled };
          });
          expect(run.samples).toEqual([]);
          expect(run.sampled).toHaveLength(2);
          expect(run.sampled[0].tokenIds).not.toEqual(run.sampled[1].tokenIds);
          // Generation and scoring against one full pass read synchronously.
          const sequence = [...prompt, ...run.greedy.tokenIds.slice(0, -1)];
          const full = forwardLogits(engine.model, sequence);
          const V = engine.model.config.vocabSize;
          run.greedy.tokenIds.forEach((token, j) => {
            const row = (prompt.length - 1 + j) * V;
            expect(token).toBe(argmax(full, row, V));
            const expected = logSoftmax(full, row, V);
            expect(run.scored[j].tokenLogprob).toBeCloseTo(expected[token], 5);
            expect(run.greedy.logprobs?.[j].tokenLogprob).toBeCloseTo(expected[token], 5);
          });

          expectExit0(run.distilled);
          let rows = 0;
          for await (const row of readTargetRows(join(out, 'train.arrow'))) {
            expect(Array.from(row.completion_token_ids)).toEqual(targetsByLlamaCpp.get(row.id));
            rows++;
          }
          expect(rows).toBe(targetsByLlamaCpp.size);
          expect(rows).toBeGreaterThan(10);
        } finally {
          await engine.close();
        }
      },
    );
  },
);

/** The rows `ids` of a row-major [*, width] matrix. */
function rowsOf(data: Float32Array, width: number, ids: Int32Array): Float32Array {
  const out = new Float32Array(ids.length * width);
  ids.forEach((id, row) => out.set(data.subarray(id * width, (id + 1) * width), row * width));
  return out;
}
