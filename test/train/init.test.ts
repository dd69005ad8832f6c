/**
 * `fireopt train` starting from the target's knowledge, on real distillation targets of stories260K
 * (as a GGUF, so c is measured in llama.cpp): a `target-layers` draft of every layer predicts exactly
 * what the target does; a narrowed one (fewer blocks, SwiGLU channels and attention heads) trains and
 * exports to a GGUF llama.cpp loads and decodes exactly as fireopt does, and to HF safetensors fireopt
 * reads back as the same model; a bad cut is a config error;
 * automatic selection sizes its candidates to the target, records c and where it came from, and says
 * (in the leaderboard, the summary and the exit status) whether a draft is worth serving.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { readDraftCheckpoint } from '../../src/formats/draft-checkpoint.js';
import { loadModel } from '../../src/formats/load-model.js';
import { readTargetRows } from '../../src/formats/targets-schema.js';
import { generate, LlamaModel, presetConfig, randomWeights } from '../../src/model/index.js';
import { writeLlamaGguf } from '../../src/formats/gguf-llama.js';
import { readLlama2cTokenizer } from '../../src/formats/llama2c-tokenizer.js';
import { LlamaCppSpeculator } from '../../src/speculation/llama-cpp-loop.js';
import type { TrainSummary } from '../../src/train/index.js';
import { parameterCount } from '../../src/train/search.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { haveShared, STORIES_TARGETS, tok512 } from '../helpers/shared.js';
import { writeStoriesGguf, type StoriesGguf } from '../targets/stories-gguf.js';
import { makeStoriesTargets, type StoriesTargets } from './stories-targets.js';

const EOS = 2;
const STORIES_PARAMETERS = 260_032;
const QUICK = [
  '--set',
  'train.backend=wasm',
  '--set',
  'train.seq_len=64',
  '--set',
  'train.batch_size=16',
  '--set',
  'train.warmup_steps=5',
  '--set',
  'train.eval_every=20',
  // Timing c in llama.cpp: fewer runs than eval's default, enough for a tiny model.
  '--set',
  'eval.cost.runs=3',
  '--set',
  'eval.cost.warmup_runs=1',
];

let data: StoriesTargets;
let target: StoriesGguf;

/** `fireopt train` of the stories targets against the stories260K GGUF: `options` (global flags, `--set`s) first. */
function trainOnStories(out: string, options: string[], extra: string[] = []): Promise<CliResult> {
  return runCli([...options, 'train', data.targets, '--out', out, '--target-model', target.path, ...extra]);
}

beforeAll(async () => {
  await initBackend('wasm');
  data = await makeStoriesTargets(96, 48);
  target = writeStoriesGguf();
}, 120_000);

afterAll(() => {
  data?.remove();
  target?.remove();
});

describe.skipIf(!haveShared(...STORIES_TARGETS))('fireopt train: drafts that start from the target', () => {
  it('target-layers with every layer is the target: its untrained greedy ' +
    "predictions are the target's own", async () => {
    const result = await trainOnStories(join(data.work, 'whole'), [
      '--json',
      '--quiet',
      ...QUICK,
      // Held-out rows fit whole (prompt + 48 tokens), so the draft sees what the target saw.
      '--set',
      'train.seq_len=256',
      '--set',
      'train.select=off',
      '--set',
      'train.init=target-layers',
      '--set',
      'train.model={n_layers: 5}',
      '--set',
      'train.max_steps=1',
      '--set',
      'eval.cost.engine=given',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout) as TrainSummary;
    expect(summary.winner.untrained.tokens).toBeGreaterThan(500);
    expect(summary.winner.untrained.hitRate).toBe(1);
  }, 120_000);

  it("target-layers: the target's first two blocks, narrowed (half the heads), train and export " +
    'to a GGUF llama.cpp decodes alike and to HF safetensors', async () => {
    const out = join(data.work, 'cut');
    const result = await trainOnStories(out, [
      '--json',
      '--quiet',
      ...QUICK,
      '--set',
      'train.select=off',
      '--set',
      'train.init=target-layers',
      '--set',
      // 4 of 8 query heads over 2 of 4 KV heads (head size 8 stays, so 4 · 8 ≠ dim 64), 48 of 172 channels.
      'train.model={n_layers: 2, hidden_dim: 48, n_heads: 4, n_kv_heads: 2}',
      '--set',
      'train.max_steps=40',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout) as TrainSummary;
    const checkpoint = readDraftCheckpoint(summary.draft);
    const shape = { dim: 64, nHeads: 4, nKvHeads: 2, headDim: 8, nLayers: 2, hiddenDim: 48 };
    expect(checkpoint.weights.config).toMatchObject(shape);
    expect(checkpoint.training.init).toBe('target-layers');
    const inspected = await runCli(['inspect', summary.draft]);
    expect(inspected.stdout).toContain('dim 64, 2 layers, 4 heads (2 kv, size 8), vocabulary 512');
    // At most a quarter of the target, and c measured against it in llama.cpp.
    expect(summary.winner.parameters).toBeLessThanOrEqual(STORIES_PARAMETERS / 4);
    expect(summary.winner.cost.source).toMatch(/^measured in llama\.cpp against /);
    expect(summary.winner.cost.ratio).toBeGreaterThan(0);
    // Two blocks of five, narrowed, then the target's head: a weak start (LayerSkip trains its exits)
    // that training improves.
    expect(summary.winner.best.hitRate).toBeGreaterThan(summary.winner.untrained.hitRate);
    expect(summary.modelFree.map((m) => m.method)).toEqual(['prompt-lookup', 'suffix']);

    const exported = await runCli([
      '--json',
      '--quiet',
      'export',
      '--model',
      summary.draft,
      '--out',
      join(data.work, 'cut-export'),
      '--target',
      target.path,
      '--set',
      'export.backend=wasm',
    ]);
    expect(exported.code, exported.stderr).toBe(0);
    const { gguf, hf: hfDir } = JSON.parse(exported.stdout) as { gguf: string; hf: string };
    // Both formats state the head size, and read back as the draft's own numbers.
    const hfConfig = JSON.parse(readFileSync(join(hfDir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(hfConfig).toMatchObject({ hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 8 });
    const fromHf = loadModel(hfDir).weights;
    const fromGguf = loadModel(gguf).weights;
    expect(fromHf.config).toMatchObject(shape);
    expect(fromGguf.config).toMatchObject(shape);
    // HF rows are rotate-half, GGUF rows interleaved: both read back to the draft's exact weights.
    for (const read of [fromHf, fromGguf])
      for (const [l, layer] of checkpoint.weights.layers.entries())
        for (const key of ['wq', 'wk', 'wv', 'wo'] as const) expect(read.layers[l][key].data).toEqual(layer[key].data);
    const draft = LlamaModel.fromWeights(checkpoint.weights, { trainable: false });
    const llama = await LlamaCppSpeculator.open({ targetModel: gguf, draftModel: gguf, contextSize: 256 });
    let tokens = 0;
    try {
      let rows = 0;
      for await (const row of readTargetRows(join(data.targets, 'heldout.arrow'))) {
        if (rows++ === 6) break;
        const prompt = Array.from(row.prompt_token_ids);
        const expected = (await generate(draft, prompt, { maxNewTokens: 24, stopIds: [EOS] })).tokens;
        expect((await llama.greedy(prompt, { maxTokens: 24 })).tokens).toEqual(expected);
        tokens += expected.length;
      }
    } finally {
      await llama.close();
      draft.dispose();
    }
    expect(tokens).toBeGreaterThan(60);
  }, 120_000);

  it('a cut the target cannot give is a config error naming the key and the limit', async () => {
    const result = await trainOnStories(join(data.work, 'bad-cut'), [
      ...QUICK,
      '--set',
      'train.select=off',
      '--set',
      'train.init=target-layers',
      '--set',
      'train.model={n_layers: 9}',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('train.model.n_layers 9: the target has 5 layers (keep 1 to 5)');
    const missing = await trainOnStories(join(data.work, 'bad-cut-2'), [
      ...QUICK,
      '--set',
      'train.select=off',
      '--set',
      'train.init=target-layers',
      '--set',
      'train.model={dim: 32, n_heads: 6, n_kv_heads: 2}',
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("train.model.dim 32: target-layers keeps the target's dim (64)");
    expect(missing.stderr).toContain(
      'train.model.n_heads 6 over n_kv_heads 2: every kept KV head serves the same number of the 2 query heads',
    );
    expect(missing.stderr).toContain('train.model.n_layers: missing');
  });

  it('automatic selection: candidates sized to the target, c measured, a verdict the exit status follows', async () => {
    const out = join(data.work, 'sized');
    const result = await trainOnStories(
      out,
      ['--json', '--quiet', ...QUICK, '--set', 'train.search.learning_rates=[0.005]'],
      ['--time-budget', '6'],
    );
    expect([0, 3], result.stderr).toContain(result.code);
    const summary = JSON.parse(result.stdout) as TrainSummary;
    expect(result.code).toBe(summary.outcome === 'draft-wins' ? 0 : 3);
    expect(summary.leaderboard.length).toBeGreaterThan(0);
    for (const candidate of summary.leaderboard) {
      expect(candidate.parameters).toBeLessThan(STORIES_PARAMETERS / 2);
      expect(candidate.parameters).toBe(parameterCount(candidate.model));
      expect(candidate.cost.source).toMatch(/^measured in llama\.cpp against /);
    }
    const board = JSON.parse(readFileSync(join(out, 'leaderboard.json'), 'utf8')) as {
      outcome: string;
      verdict: string;
      candidates: Array<{ init: string; name: string; heads: number; kv_heads: number; cost_ratio: number }>;
      model_free: Array<{ method: string; expected_speedup: number }>;
    };
    expect(board.outcome).toBe(summary.outcome);
    // stories260K: under a sixth of it, one block with half its heads (the search's only candidate).
    expect(board.candidates[0]).toMatchObject({
      init: 'target-layers',
      name: expect.stringMatching(/^target-layers-L1-h22-q4kv2/),
      heads: 4,
      kv_heads: 2,
    });
    expect(board.model_free.map((m) => m.method)).toEqual(['prompt-lookup', 'suffix']);
    const markdown = readFileSync(join(out, 'leaderboard.md'), 'utf8');
    expect(markdown.startsWith(`**${summary.verdict}.**`)).toBe(true);
    expect(markdown).toContain('suffix (model-free)');
    // The verdict says plainly what to serve.
    const bestFree = Math.max(...summary.modelFree.map((m) => m.expectedSpeedup));
    const draftSpeedup = summary.winner.best.expectedSpeedup;
    if (draftSpeedup <= 1) expect(summary.verdict).toMatch(/^no draft beats plain decoding/);
    else if (bestFree > draftSpeedup) expect(summary.verdict).toMatch(/^a model-free method beats the best draft/);
    else expect(summary.outcome).toBe('draft-wins');
  }, 120_000);

  it('refuses a searched draft of half the target or more', async () => {
    const result = await trainOnStories(join(data.work, 'too-large'), [
      ...QUICK,
      '--set',
      'train.search.models=[{preset: draft-tiny}]',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('a draft of half the target or more cannot speed it up');
    expect(result.stderr).toContain('train.search.models[0] (draft-tiny-d128-L4)');
  });

  it("init: pretrained fine-tunes a small model with the target's tokenizer, " +
    'and refuses one whose vocabulary differs', async () => {
    // A small "pretrained" model: random weights (no second real model shares stories260K's
    // 512-token vocabulary), written as a GGUF with the target's tokenizer.
    const vocabulary = readLlama2cTokenizer(tok512(), 512);
    const pretrained = randomWeights(
      presetConfig('draft-nano', 512, 256, { dim: 32, nLayers: 1, nHeads: 2, nKvHeads: 1 }),
      {
        seed: 9,
      },
    );
    const path = join(data.work, 'pretrained.gguf');
    writeLlamaGguf(path, pretrained, vocabulary, { name: 'small-pretrained' });
    const tiny = [
      '--set',
      'train.select=off',
      '--set',
      'train.max_steps=1',
      '--set',
      'train.lr=1e-9',
      '--set',
      'eval.cost.engine=given',
    ];
    const result = await trainOnStories(join(data.work, 'pretrained-run'), [
      '--json',
      '--quiet',
      ...QUICK,
      ...tiny,
      '--set',
      `train.init_from=${path}`,
    ]);
    expect(result.code, result.stderr).toBe(0);
    const checkpoint = readDraftCheckpoint((JSON.parse(result.stdout) as TrainSummary).draft);
    expect(checkpoint.training.init).toBe('pretrained'); // auto: init_from is a model, not a draft checkpoint
    expect(checkpoint.weights.config).toMatchObject({ dim: 32, nLayers: 1, vocabSize: 512 });
    // One step at lr 1e-9: still the pretrained weights.
    let largest = 0;
    checkpoint.weights.tokenEmbedding.data.forEach((x, i) => {
      largest = Math.max(largest, Math.abs(x - pretrained.tokenEmbedding.data[i]));
    });
    expect(largest).toBeLessThan(1e-6);

    // The same weights with two pieces swapped: another vocabulary, refused naming the first differing id.
    const swapped = { ...vocabulary, tokens: [...vocabulary.tokens] };
    [swapped.tokens[300], swapped.tokens[301]] = [swapped.tokens[301], swapped.tokens[300]];
    const otherPath = join(data.work, 'pretrained-other-vocab.gguf');
    writeLlamaGguf(otherPath, pretrained, swapped, { name: 'small-pretrained-other' });
    const refused = await trainOnStories(join(data.work, 'pretrained-refused'), [
      ...QUICK,
      ...tiny,
      '--set',
      'train.init=pretrained',
      '--set',
      `train.init_from=${otherPath}`,
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`the tokenizer of the pretrained model ${otherPath} differs`);
    expect(refused.stderr).toContain('first difference at token id 300:');
  }, 60_000);
});
