/**
 * The engine gate for `fireopt export`, with drafts trained in the test for the real stories260K
 * target (its real distilled targets, as test/train does):
 * - the exported GGUF loads in llama.cpp and greedy-decodes exactly the tfjs draft's tokens;
 * - the exported safetensors, read by an independent numpy reader, equal the draft tensor for tensor
 *   (F32 bit for bit, F16 as numpy rounds them), and a hand-written PyTorch Llama over them
 *   reproduces fireopt's reference logits (scripts/gpu/check_hf_export.py --engine torch);
 * - a reduced-vocabulary draft, expanded to the 512-token vocabulary, makes the same greedy choices;
 * - real speculative decoding in llama.cpp (target + exported draft) equals plain greedy decoding.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { expandVocabulary } from '../../src/export/index.js';
import { readDraftCheckpoint } from '../../src/formats/draft-checkpoint.js';
import { readLlamaGguf } from '../../src/formats/gguf-llama.js';
import { hfTensorName, tensorsByKey } from '../../src/formats/llama-tensors.js';
import { readTargetRows } from '../../src/formats/targets-schema.js';
import { LlamaModel, argmax, generate, nextTokenDistributions } from '../../src/model/index.js';
import type { LlamaWeights } from '../../src/model/weights.js';
import { LlamaCppSpeculator } from '../../src/speculation/llama-cpp-loop.js';
import { runCli } from '../helpers/cli.js';
import { pythonWith, runPython } from '../helpers/python.js';
import { haveShared, repoRoot, STORIES_TARGETS, stories260K, tok512 } from '../helpers/shared.js';
import { writeStoriesGguf, type StoriesGguf } from '../targets/stories-gguf.js';
import { makeStoriesTargets, type StoriesTargets } from '../train/stories-targets.js';

// Without PyTorch the PyTorch reference test is skipped (counted as skipped) with a warning; the
// numpy reader always runs.
const NUMPY_PYTHON = pythonWith('numpy');
const TORCH_PYTHON = pythonWith('numpy, torch');
if (!TORCH_PYTHON)
  console.warn(
    'export engine test: no Python with PyTorch here (apt-get install ' +
      'python3-torch); the PyTorch reference test is skipped',
  );
const EOS = 2;

const smallDraft = (): string[] => [
  '--set',
  'train.select=off',
  '--set',
  'train.backend=wasm',
  '--set',
  'train.model={preset: draft-nano, dim: 32, n_layers: 2, n_heads: 2, n_kv_heads: 1}',
  '--set',
  'train.seq_len=64',
  '--set',
  'train.batch_size=16',
  '--set',
  'train.warmup_steps=10',
  '--set',
  'train.lr=0.005',
  '--set',
  `train.tokenizer=${tok512()}`,
];

let data: StoriesTargets;
let target: StoriesGguf;
let fullDraft: string;
let reducedDraft: string;
/** Held-out rows: prompt ids and the target's greedy completion. */
let heldout: Array<{ prompt: number[]; completion: number[] }>;

async function train(name: string, extra: string[]): Promise<string> {
  const result = await runCli([
    '--json',
    '--quiet',
    ...smallDraft(),
    ...extra,
    'train',
    data.targets,
    '--out',
    join(data.work, name),
    '--target-model',
    stories260K(),
  ]);
  expect(result.code, result.stderr).toBe(0);
  return (JSON.parse(result.stdout) as { draft: string }).draft;
}

async function exportDraft(model: string, out: string, extra: string[] = []): Promise<{ hf: string; gguf: string }> {
  const result = await runCli([
    '--json',
    '--quiet',
    'export',
    '--model',
    model,
    '--out',
    out,
    '--target',
    target.path,
    '--set',
    'export.backend=wasm',
    ...extra,
  ]);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as { hf: string; gguf: string };
}

function python(
  args: string[],
  interpreter = NUMPY_PYTHON,
): { code: number; json: Array<Record<string, unknown>>; stderr: string } {
  if (!interpreter) throw new Error('no python3 with numpy found: the independent safetensors reader needs it');
  return runPython(interpreter, args);
}

/** expected.json + expected.f32: every tensor fireopt holds, interleaved RoPE layout, for compare_tensors.py. */
function writeExpected(dir: string, weights: LlamaWeights): void {
  mkdirSync(dir, { recursive: true });
  const entries: Array<{ name: string; shape: number[]; offset: number; rope_heads?: number }> = [];
  const blocks: Float32Array[] = [];
  let offset = 0;
  for (const [key, tensor] of tensorsByKey(weights)) {
    const ropeHeads = key.endsWith('.wq')
      ? weights.config.nHeads
      : key.endsWith('.wk')
        ? weights.config.nKvHeads
        : undefined;
    entries.push({
      name: hfTensorName(key),
      shape: tensor.shape,
      offset,
      ...(ropeHeads ? { rope_heads: ropeHeads } : {}),
    });
    blocks.push(tensor.data);
    offset += tensor.data.length;
  }
  const all = new Float32Array(offset);
  let at = 0;
  for (const block of blocks) {
    all.set(block, at);
    at += block.length;
  }
  writeFileSync(join(dir, 'expected.f32'), new Uint8Array(all.buffer));
  writeFileSync(join(dir, 'expected.json'), JSON.stringify({ tensors: entries }));
}

beforeAll(async () => {
  await initBackend('wasm');
  data = await makeStoriesTargets(96, 48);
  target = writeStoriesGguf();
  fullDraft = await train('full', ['--set', 'train.max_steps=100', '--set', 'train.eval_every=50']);
  reducedDraft = await train('reduced', [
    '--set',
    'train.draft_vocab_size=200',
    '--set',
    'train.max_steps=60',
    '--set',
    'train.eval_every=60',
  ]);
  heldout = [];
  for await (const row of readTargetRows(join(data.targets, 'heldout.arrow')))
    heldout.push({ prompt: Array.from(row.prompt_token_ids), completion: Array.from(row.completion_token_ids) });
}, 90_000);

afterAll(() => {
  data?.remove();
  target?.remove();
});

describe.skipIf(!haveShared(...STORIES_TARGETS))('fireopt export: engine gate', () => {
  it(
    'writes a GGUF that llama.cpp loads and greedy-decodes exactly as the ' + 'tfjs draft, on held-out prompts',
    async () => {
      const exported = await exportDraft(fullDraft, join(data.work, 'export-full'));
      const draft = LlamaModel.fromWeights(readDraftCheckpoint(fullDraft).weights, { trainable: false });
      const llama = await LlamaCppSpeculator.open({
        targetModel: exported.gguf,
        draftModel: exported.gguf,
        contextSize: 256,
      });
      let tokens = 0;
      try {
        for (const { prompt } of heldout.slice(0, 10)) {
          const expected = (await generate(draft, prompt, { maxNewTokens: 32, stopIds: [EOS] })).tokens;
          const got = await llama.greedy(prompt, { maxTokens: 32 });
          expect(got.tokens).toEqual(expected);
          tokens += expected.length;
        }
      } finally {
        await llama.close();
        draft.dispose();
      }
      expect(tokens).toBeGreaterThan(200);
    },
  );

  it('writes safetensors that an independent numpy reader finds equal tensor for tensor (F32 and F16)', async () => {
    const weights = readDraftCheckpoint(fullDraft).weights;
    const expectedDir = join(data.work, 'expected-full');
    writeExpected(expectedDir, weights);
    for (const dtype of ['f32', 'f16'] as const) {
      const exported = await exportDraft(fullDraft, join(data.work, `export-hf-${dtype}`), [
        '--format',
        'hf',
        '--dtype',
        dtype,
      ]);
      const compared = python([
        join(repoRoot, 'test/export/compare_tensors.py'),
        join(exported.hf, 'model.safetensors'),
        expectedDir,
      ]);
      expect(compared.code, compared.stderr).toBe(0);
      const tensorCount = tensorsByKey(weights).size;
      expect(compared.json[0]).toMatchObject({
        tensors: tensorCount,
        in_file: tensorCount,
        extra: [],
        mismatches: [],
        dtypes: [dtype.toUpperCase()],
      });
      expect(compared.json[0].data_end).toBe(compared.json[0].data_bytes);
    }
  });

  // PyTorch is optional (.ci/run installs python3-torch when it can): without it this check is skipped, not passed.
  it.skipIf(!TORCH_PYTHON)(
    'a PyTorch Llama over the exported safetensors reproduces fireopt ' +
      'logits (F32, F16, and an expanded reduced-vocabulary draft)',
    async () => {
      for (const dtype of ['f32', 'f16'] as const) {
        const exported = await exportDraft(fullDraft, join(data.work, `export-torch-${dtype}`), [
          '--format',
          'hf',
          '--dtype',
          dtype,
        ]);
        const checked = python(
          [
            join(repoRoot, 'scripts/gpu/check_hf_export.py'),
            '--export',
            exported.hf,
            '--engine',
            'torch',
            '--device',
            'cpu',
          ],
          TORCH_PYTHON,
        );
        expect(checked.code, checked.stderr + JSON.stringify(checked.json)).toBe(0);
        const torchResult = checked.json[0];
        expect(torchResult).toMatchObject({ engine: 'torch', passed: true, greedy_agreement: 1 });
        expect(torchResult.positions as number).toBeGreaterThan(30);
        expect(torchResult.max_abs_diff as number).toBeLessThan(1e-4);
        console.log(
          `${dtype} export: PyTorch Llama logits vs fireopt: max |Δ| ` +
            `${(torchResult.max_abs_diff as number).toExponential(2)} over ` +
            `${torchResult.positions} positions (|logit| ≤ ${(torchResult.max_abs_logit as number).toFixed(1)})`,
        );
      }
      // The HF export of the expanded draft (untied, lm_head with the mean rows) runs in PyTorch too.
      const expanded = await exportDraft(reducedDraft, join(data.work, 'export-torch-reduced'));
      const checked = python(
        [
          join(repoRoot, 'scripts/gpu/check_hf_export.py'),
          '--export',
          expanded.hf,
          '--engine',
          'torch',
          '--device',
          'cpu',
        ],
        TORCH_PYTHON,
      );
      expect(checked.code, checked.stderr + JSON.stringify(checked.json)).toBe(0);
      expect(checked.json[0]).toMatchObject({ passed: true, greedy_agreement: 1 });
    },
  );

  it(
    'expands a reduced-vocabulary draft to the full vocabulary with the ' +
      'same greedy choices on held-out data (teacher-forced and in llama.cpp)',
    async () => {
      const checkpoint = readDraftCheckpoint(reducedDraft);
      const map = checkpoint.draftVocabulary?.draftToTarget as Int32Array;
      expect(map.length).toBe(200);
      const unk = checkpoint.training.unk_draft_id as number;
      const rowOf = new Map<number, number>();
      map.forEach((id, row) => rowOf.set(id, row));
      const toDraft = (ids: number[]) => ids.map((id) => rowOf.get(id) ?? unk);

      const exported = await exportDraft(reducedDraft, join(data.work, 'export-reduced'));
      const { weights: expandedWeights } = readLlamaGguf(exported.gguf);
      expect(expandedWeights.config.vocabSize).toBe(512);
      const reduced = LlamaModel.fromWeights(checkpoint.weights, { trainable: false });
      const expanded = LlamaModel.fromWeights(expandedWeights, { trainable: false });
      // The same expansion averaging all draft rows (the default), for the sampling mass it leaves outside.
      const allRows = LlamaModel.fromWeights(
        expandVocabulary(checkpoint.weights, { draftToTarget: map, unkDraftId: unk, vocabSize: 512 }).weights,
        { trainable: false },
      );
      let positions = 0;
      let same = 0;
      let outsideMass = 0;
      let allRowsOutsideMass = 0;
      try {
        for (const { prompt, completion } of heldout) {
          const sequence = [...prompt, ...completion.slice(0, -1)];
          const reducedLogProbs = await nextTokenDistributions(reduced, toDraft(sequence));
          const expandedLogProbs = await nextTokenDistributions(expanded, sequence);
          const allRowsLogProbs = await nextTokenDistributions(allRows, sequence);
          for (let t = 0; t < sequence.length; t++) {
            const draftChoice = map[argmax(reducedLogProbs.subarray(t * 200, (t + 1) * 200))];
            const row = expandedLogProbs.subarray(t * 512, (t + 1) * 512);
            positions++;
            if (argmax(row) === draftChoice) same++;
            for (let id = 0; id < 512; id++) {
              if (rowOf.has(id)) continue;
              outsideMass += Math.exp(row[id]);
              allRowsOutsideMass += Math.exp(allRowsLogProbs[t * 512 + id]);
            }
          }
        }
        expect(positions).toBeGreaterThan(800);
        expect(same / positions).toBeGreaterThanOrEqual(0.999);
        console.log(
          `reduced vocabulary 200/512: greedy agreement ${same}/${positions} ` +
            `held-out positions; mean probability on the 312 ids outside the draft vocabulary ` +
            `${(outsideMass / positions).toExponential(2)} (mean of the 16 lowest ` +
            `rows) vs ${(allRowsOutsideMass / positions).toExponential(2)} (mean of all rows)`,
        );
        expect(outsideMass).toBeLessThan(0.5 * allRowsOutsideMass);

        // Generation: llama.cpp on the exported GGUF against the reduced tfjs draft decoding greedily.
        const llama = await LlamaCppSpeculator.open({
          targetModel: exported.gguf,
          draftModel: exported.gguf,
          contextSize: 256,
        });
        try {
          for (const { prompt } of heldout.slice(0, 6)) {
            const expected: number[] = [];
            const context = [...prompt];
            while (expected.length < 24) {
              const logProbs = await nextTokenDistributions(reduced, toDraft(context));
              const next = map[argmax(logProbs.subarray(logProbs.length - 200))];
              expected.push(next);
              context.push(next);
              if (next === EOS) break;
            }
            expect((await llama.greedy(prompt, { maxTokens: 24 })).tokens).toEqual(expected);
          }
        } finally {
          await llama.close();
        }
      } finally {
        reduced.dispose();
        expanded.dispose();
        allRows.dispose();
      }
    },
  );

  it('the mean output row never wins: its logit is the mean of the draft logits, below their maximum', () => {
    const checkpoint = readDraftCheckpoint(reducedDraft);
    const { weights, outsideIds } = expandVocabulary(checkpoint.weights, {
      draftToTarget: checkpoint.draftVocabulary?.draftToTarget,
      unkDraftId: 0,
      vocabSize: 512,
    });
    expect(outsideIds).toBe(312);
    expect(weights.config.tiedEmbeddings).toBe(false);
    // For random final hidden states h, logit(outside) = mean_j logit(draft row j) < max_j.
    const dim = weights.config.dim;
    const output = weights.output?.data as Float32Array;
    const map = checkpoint.draftVocabulary?.draftToTarget as Int32Array;
    const outsideId = [...Array(512).keys()].find((id) => !map.includes(id)) as number;
    let seed = 1;
    const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
    for (let trial = 0; trial < 200; trial++) {
      const h = Float32Array.from({ length: dim }, random);
      const logit = (id: number) => output.subarray(id * dim, (id + 1) * dim).reduce((s, w, i) => s + w * h[i], 0);
      const draftLogits = Array.from(map, logit);
      const mean = draftLogits.reduce((a, b) => a + b, 0) / draftLogits.length;
      expect(logit(outsideId)).toBeCloseTo(mean, 4);
      expect(logit(outsideId)).toBeLessThan(Math.max(...draftLogits));
    }
  });

  it(
    'runs real speculative decoding in llama.cpp (stories260K target + ' +
      'exported draft): output equals plain greedy decoding',
    async () => {
      const gguf = (await exportDraft(fullDraft, join(data.work, 'export-spec'), ['--format', 'gguf'])).gguf;
      expect(existsSync(gguf)).toBe(true);
      const speculator = await LlamaCppSpeculator.open({
        targetModel: target.path,
        draftModel: gguf,
        contextSize: 256,
      });
      let drafted = 0;
      let accepted = 0;
      let steps = 0;
      let tokens = 0;
      let speculativeMs = 0;
      let plainMs = 0;
      try {
        for (const { prompt } of heldout) {
          const plain = await speculator.greedy(prompt, { maxTokens: 48 });
          const run = await speculator.decode(prompt, { k: 4, maxTokens: 48 });
          expect(run.tokens).toEqual(plain.tokens);
          drafted += run.drafted;
          accepted += run.accepted;
          steps += run.steps;
          tokens += run.tokens.length;
          speculativeMs += run.wallMs;
          plainMs += plain.wallMs;
        }
      } finally {
        await speculator.close();
      }
      const acceptance = accepted / drafted;
      console.log(
        `speculative decoding, stories260K target + exported draft (k = 4, ` +
          `${heldout.length} held-out prompts, ${tokens} tokens): ` +
          `acceptance ${(100 * acceptance).toFixed(1)}%, τ ${(tokens / steps).toFixed(2)}, ` +
          `${((1000 * tokens) / speculativeMs).toFixed(0)} tokens/s speculative ` +
          `vs ${((1000 * tokens) / plainMs).toFixed(0)} tokens/s plain (llama.cpp CPU, 1 thread)`,
      );
      expect(tokens).toBeGreaterThan(500);
      // τ = 1 would mean no draft token was ever accepted.
      expect(acceptance).toBeGreaterThan(0.1);
      expect(tokens / steps).toBeGreaterThan(1.3);
    },
  );
});
