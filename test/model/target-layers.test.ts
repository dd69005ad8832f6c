/**
 * `train.init: target-layers`: a draft cut from the real stories260K (its first blocks, SwiGLU and
 * attention heads narrowed by weight norm, its final norm and head), read from each format fireopt reads;
 * heads narrowed in random-weight Qwen2 / Qwen3 targets (biases, per-head norms, explicit head size).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { llamaGgufMetadata } from '../../src/formats/gguf-llama.js';
import { writeGguf, type GgufTensorToWrite } from '../../src/formats/gguf-write.js';
import { ggufTensorName, tensorsByKey } from '../../src/formats/llama-tensors.js';
import { readLlama2cTokenizer } from '../../src/formats/llama2c-tokenizer.js';
import { loadModel } from '../../src/formats/load-model.js';
import { writeHfLlama } from '../../src/formats/safetensors.js';
import type { LlamaConfig } from '../../src/model/config.js';
import { LlamaModel, randomWeights, SeededRandom } from '../../src/model/index.js';
import {
  attentionHeadImportance,
  ffnChannelImportance,
  targetLayersConfig,
  targetLayersProblems,
  targetLayerWeights,
} from '../../src/model/target-layers.js';
import { dense, type DenseTensor, type LlamaWeights } from '../../src/model/weights.js';
import { haveShared, STORIES260K, stories260K, TOK512, tok512 } from '../helpers/shared.js';
import { writeStoriesGguf } from '../targets/stories-gguf.js';
import { maxAbsDiff } from './helpers.js';

/** A real-ish token sequence: BOS, then ids spread over the vocabulary. */
const TOKENS = [1, ...Array.from({ length: 23 }, (_, i) => (i * 97 + 13) % 512)];

async function logitsOf(weights: LlamaWeights, tokens = TOKENS): Promise<Float32Array> {
  const model = LlamaModel.fromWeights(weights, { trainable: false });
  try {
    const logits = tf.tidy(() => model.forward(tf.tensor2d(tokens, [1, tokens.length], 'int32')));
    const data = await logits.data<'float32'>();
    logits.dispose();
    return data;
  } finally {
    model.dispose();
  }
}

/**
 * The target's first `layers` blocks with the output columns (wo) of every query head but `keptQuery`
 * zeroed: what a head-narrowed cut must compute, built without the cut's code. A dropped KV head has
 * no kept reader, so zeroing its readers' wo columns removes it too.
 */
function withHeadsZeroed(target: LlamaWeights, layers: number, keptQuery: number[][]): LlamaWeights {
  const size = target.layers[0].wq.shape[0] / target.config.nHeads;
  const dim = target.config.dim;
  const width = target.config.nHeads * size;
  return {
    ...target,
    config: { ...target.config, nLayers: layers },
    layers: target.layers.slice(0, layers).map((layer, l) => {
      const wo = dense([dim, width], layer.wo.data.slice());
      for (let h = 0; h < target.config.nHeads; h++) {
        if (keptQuery[l].includes(h)) continue;
        for (let r = 0; r < dim; r++) wo.data.fill(0, r * width + h * size, r * width + (h + 1) * size);
      }
      return { ...layer, wo };
    }),
  };
}

/** Which of the target's query heads each head of the cut's block `l` is: its wq rows, found in the target. */
function keptQueryHeads(target: LlamaWeights, cut: LlamaWeights, l: number): number[] {
  const size = target.layers[0].wq.shape[0] / target.config.nHeads;
  const block = size * target.config.dim;
  const rowsOf = (w: DenseTensor, h: number) => w.data.subarray(h * block, (h + 1) * block);
  return Array.from({ length: cut.config.nHeads }, (_, kept) => {
    const rows = rowsOf(cut.layers[l].wq, kept);
    return Array.from({ length: target.config.nHeads }, (_, h) => h).find((h) =>
      rowsOf(target.layers[l].wq, h).every((x, i) => x === rows[i]),
    ) as number;
  });
}

let work: string;
beforeAll(async () => {
  await initBackend('wasm');
  work = mkdtempSync(join(tmpdir(), 'fireopt-target-layers-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe.skipIf(!haveShared(STORIES260K, TOK512))('target-layers: a draft cut from stories260K', () => {
  it(
    "all layers at full width reproduce the target's logits exactly, read " + 'from llama2.c, GGUF and HF files',
    async () => {
      const gguf = writeStoriesGguf();
      const hf = join(work, 'hf');
      writeHfLlama(hf, loadModel(stories260K(), { tokenizer: tok512() }).weights);
      try {
        for (const path of [stories260K(), gguf.path, hf]) {
          const target = loadModel(path, { tokenizer: tok512() }).weights;
          // Every head kept, said explicitly: still the target.
          const cut = targetLayerWeights(target, { layers: target.config.nLayers, heads: 8, kvHeads: 4 });
          expect(cut.config).toEqual(target.config);
          const expected = await logitsOf(target);
          const got = await logitsOf(cut);
          expect(got.length).toBe(TOKENS.length * 512);
          expect(Array.from(got)).toEqual(Array.from(expected)); // bit for bit
        }
      } finally {
        gguf.remove();
      }
    },
  );

  it("a narrowed cut is the target's first blocks with the least important SwiGLU channels removed", async () => {
    const target = loadModel(stories260K(), { tokenizer: tok512() }).weights;
    const cut = targetLayerWeights(target, { layers: 2, hiddenDim: 96 });
    // Shapes engines load: the target's width, heads and head size; n_kv_heads divides n_heads.
    expect(cut.config).toMatchObject({ dim: 64, nHeads: 8, nKvHeads: 4, nLayers: 2, hiddenDim: 96, vocabSize: 512 });
    expect(cut.layers).toHaveLength(2);
    // The same model, built independently: the first two blocks with every other channel zeroed.
    const zeroed: LlamaWeights = { ...target, config: { ...target.config, nLayers: 2 }, layers: [] };
    for (let l = 0; l < 2; l++) {
      const layer = target.layers[l];
      expect(cut.layers[l].w1.shape).toEqual([96, 64]);
      expect(cut.layers[l].w2.shape).toEqual([64, 96]);
      const importance = ffnChannelImportance(layer);
      const threshold = [...importance].sort((a, b) => b - a)[95];
      // Which target channel each kept row is: its gate row, found in the target.
      const kept: number[] = [];
      for (let r = 0; r < 96; r++) {
        const row = cut.layers[l].w1.data.subarray(r * 64, (r + 1) * 64);
        kept.push(
          Array.from({ length: 172 }, (_, i) => i).find((i) =>
            row.every((x, j) => x === layer.w1.data[i * 64 + j]),
          ) as number,
        );
      }
      expect(kept).toEqual([...kept].sort((a, b) => a - b)); // original order
      expect(kept.every((i) => importance[i] >= threshold)).toBe(true); // the most important ones
      const keep = new Set(kept);
      const w1 = dense([172, 64], layer.w1.data.slice());
      const w3 = dense([172, 64], layer.w3.data.slice());
      const w2 = dense([64, 172], layer.w2.data.slice());
      for (let i = 0; i < 172; i++) {
        if (keep.has(i)) continue;
        w1.data.fill(0, i * 64, (i + 1) * 64);
        w3.data.fill(0, i * 64, (i + 1) * 64);
        for (let j = 0; j < 64; j++) w2.data[j * 172 + i] = 0;
      }
      zeroed.layers.push({ ...layer, w1, w2, w3 });
    }
    expect(maxAbsDiff(await logitsOf(cut), await logitsOf(zeroed))).toBeLessThan(1e-4);
    // The cut copies: the target is untouched.
    expect(cut.layers[0].wq.data).not.toBe(target.layers[0].wq.data);
  });

  it('a head-narrowed cut keeps whole GQA groups of the most important heads; the other heads silenced', async () => {
    const target = loadModel(stories260K(), { tokenizer: tok512() }).weights;
    // 4 of 8 query heads over 2 of 4 KV heads: 2 query heads per kept KV head, as in the target.
    const cut = targetLayerWeights(target, { layers: 2, heads: 4, kvHeads: 2 });
    // The residual width and head size stay the target's, so the head size is now explicit.
    expect(cut.config).toMatchObject({ dim: 64, nHeads: 4, nKvHeads: 2, headDim: 8, nLayers: 2, hiddenDim: 172 });
    expect(cut.layers[0].wq.shape).toEqual([32, 64]);
    expect(cut.layers[0].wk.shape).toEqual([16, 64]);
    expect(cut.layers[0].wo.shape).toEqual([64, 32]);
    const kept: number[][] = [];
    for (let l = 0; l < 2; l++) {
      const heads = keptQueryHeads(target, cut, l);
      kept.push(heads);
      const importance = attentionHeadImportance(target.layers[l], target.config);
      // Query head h reads KV head ⌊h / 2⌋: two kept KV heads, the two most important, each read by two kept heads.
      const groups = heads.map((h) => Math.floor(h / 2));
      expect(groups).toEqual([groups[0], groups[0], groups[2], groups[2]]);
      const kvThreshold = [...importance.kv].sort((a, b) => b - a)[1];
      expect(importance.kv[groups[0]]).toBeGreaterThanOrEqual(kvThreshold);
      expect(importance.kv[groups[2]]).toBeGreaterThanOrEqual(kvThreshold);
      expect(heads).toEqual([...heads].sort((a, b) => a - b)); // original order
      // Each KV head's rows are the target's rows of that head, whole (the RoPE pairs of a head stay together).
      for (const [slot, g] of [groups[0], groups[2]].entries())
        expect(Array.from(cut.layers[l].wk.data.subarray(slot * 8 * 64, (slot + 1) * 8 * 64))).toEqual(
          Array.from(target.layers[l].wk.data.subarray(g * 8 * 64, (g + 1) * 8 * 64)),
        );
    }
    expect(kept[0].length).toBe(4);
    expect(maxAbsDiff(await logitsOf(cut), await logitsOf(withHeadsZeroed(target, 2, kept)))).toBeLessThan(1e-4);
  });

  it("a reduced draft vocabulary keeps those rows of the target's head", async () => {
    const target = loadModel(stories260K(), { tokenizer: tok512() }).weights;
    const rows = Int32Array.from({ length: 200 }, (_, i) => (i * 7) % 512);
    const cut = targetLayerWeights(target, { layers: 5 }, rows);
    expect(cut.config.vocabSize).toBe(200);
    // The reduced model reads draft ids: draft id r is target id rows[r].
    const draftTokens = TOKENS.map((id) => id % 200);
    const full = await logitsOf(
      target,
      draftTokens.map((r) => rows[r]),
    );
    const reduced = await logitsOf(cut, draftTokens);
    for (let t = 0; t < TOKENS.length; t++)
      rows.forEach((id, r) => expect(reduced[t * 200 + r]).toBe(full[t * 512 + id]));
  });

  it('refuses a cut the target cannot give, saying why', () => {
    const { config } = loadModel(stories260K(), { tokenizer: tok512() }).weights;
    expect(targetLayersProblems(config, { layers: 0 })).toEqual(['n_layers 0: the target has 5 layers (keep 1 to 5)']);
    expect(targetLayersProblems(config, { layers: 6, hiddenDim: 200 })).toEqual([
      'n_layers 6: the target has 5 layers (keep 1 to 5)',
      "hidden_dim 200: the target's SwiGLU has 172 channels (keep 1 to that)",
    ]);
    expect(targetLayersProblems(config, { layers: 5, hiddenDim: 172 })).toEqual([]);
    expect(targetLayersProblems(config, { layers: 2, heads: 4, kvHeads: 2 })).toEqual([]);
    // n_kv_heads alone keeps the target's 2 query heads per KV head (and n_heads alone, its KV heads).
    expect(targetLayersConfig(config, { layers: 2, kvHeads: 1 }, 512)).toMatchObject({ nHeads: 2, nKvHeads: 1 });
    expect(targetLayersConfig(config, { layers: 2, heads: 6 }, 512)).toMatchObject({ nHeads: 6, nKvHeads: 3 });
    expect(targetLayersProblems(config, { layers: 2, heads: 12, kvHeads: 6 })).toEqual([
      'n_kv_heads 6: the target has 8 heads over 4 KV heads (keep 1 to 4)',
    ]);
    expect(targetLayersProblems(config, { layers: 2, heads: 3 })).toEqual([
      "n_heads 3: not a whole number of the target's KV groups (2 heads each; the target has 8 heads over 4 KV " +
        'heads); give n_kv_heads',
    ]);
    expect(targetLayersProblems(config, { layers: 2, heads: 3, kvHeads: 2 })).toEqual([
      'n_heads 3 over n_kv_heads 2: every kept KV head serves the same number of the 2 query heads that read ' +
        'it in the target (the target has 8 heads over 4 KV heads)',
    ]);
    expect(targetLayersProblems(config, { layers: 2, heads: 8, kvHeads: 2 })).toEqual([
      'n_heads 8 over n_kv_heads 2: every kept KV head serves the same number of the 2 query heads that read ' +
        'it in the target (the target has 8 heads over 4 KV heads)',
    ]);
  });
});

describe('target-layers: heads narrowed in Qwen targets (random weights)', () => {
  it.each([
    ['qwen2', undefined],
    ['qwen3', 16],
  ] as const)(
    '%s: biases and per-head norms follow their heads; the cut computes the target with the rest silenced',
    async (architecture, explicitHeadDim) => {
      const config: LlamaConfig = {
        architecture,
        dim: 64,
        hiddenDim: 96,
        nLayers: 2,
        nHeads: 8,
        nKvHeads: 4,
        vocabSize: 512,
        maxSeqLen: 64,
        normEps: 1e-6,
        ropeTheta: 10000,
        tiedEmbeddings: true,
        ...(explicitHeadDim !== undefined && { headDim: explicitHeadDim }),
      };
      const target = randomWeights(config, { seed: 7, std: 0.2 });
      // randomWeights starts biases at zero and norms at one: give them values a wrong slice would show.
      const random = new SeededRandom(11);
      for (const layer of target.layers)
        for (const tensor of [layer.bq, layer.bk, layer.bv, layer.qNorm, layer.kNorm])
          if (tensor) for (let i = 0; i < tensor.data.length; i++) tensor.data[i] = 0.5 + random.nextNormal() * 0.3;
      const cut = targetLayerWeights(target, { layers: 2, kvHeads: 2 });
      const size = explicitHeadDim ?? 8;
      // qwen3 here: 4 heads of 16 = 64 = dim, so the head size needs no explicit field; qwen2: 4 × 8 ≠ 64.
      expect(cut.config.headDim).toBe(size * 4 === 64 ? undefined : size);
      expect(cut.config).toMatchObject({ architecture, nHeads: 4, nKvHeads: 2 });
      const kept = [0, 1].map((l) => keptQueryHeads(target, cut, l));
      for (let l = 0; l < 2; l++) {
        const bq = cut.layers[l].bq;
        if (bq)
          kept[l].forEach((h, slot) =>
            expect(Array.from(bq.data.subarray(slot * size, (slot + 1) * size))).toEqual(
              Array.from((target.layers[l].bq as DenseTensor).data.subarray(h * size, (h + 1) * size)),
            ),
          );
        expect(cut.layers[l].qNorm?.data).toEqual(target.layers[l].qNorm?.data);
      }
      expect(maxAbsDiff(await logitsOf(cut), await logitsOf(withHeadsZeroed(target, 2, kept)))).toBeLessThan(1e-4);
    },
  );
});

describe('target-layers: heads narrowed in Llama targets of other groupings (random weights)', () => {
  it.each([
    // Multi-head attention (a group of one): n_heads alone keeps as many KV heads.
    { nHeads: 4, nKvHeads: 4, shape: { heads: 2 }, kept: { nHeads: 2, nKvHeads: 2 } },
    // Groups of four: both KV heads stay, each serves its 2 most important of 4 query heads.
    { nHeads: 8, nKvHeads: 2, shape: { heads: 4, kvHeads: 2 }, kept: { nHeads: 4, nKvHeads: 2 } },
  ])('$nHeads heads over $nKvHeads KV heads, keeping $shape', async ({ nHeads, nKvHeads, shape, kept }) => {
    const config: LlamaConfig = {
      dim: 64,
      hiddenDim: 96,
      nLayers: 2,
      nHeads,
      nKvHeads,
      vocabSize: 512,
      maxSeqLen: 64,
      normEps: 1e-5,
      ropeTheta: 10000,
      tiedEmbeddings: true,
    };
    const target = randomWeights(config, { seed: 3, std: 0.2 });
    const cut = targetLayerWeights(target, { layers: 2, ...shape });
    expect(cut.config).toMatchObject({ ...kept, headDim: 64 / nHeads });
    const group = nHeads / nKvHeads;
    const heads = [0, 1].map((l) => keptQueryHeads(target, cut, l));
    for (let l = 0; l < 2; l++) {
      const importance = attentionHeadImportance(target.layers[l], config);
      // In each kept group, the most important of its query heads.
      for (const g of new Set(heads[l].map((h) => Math.floor(h / group)))) {
        const members = Array.from({ length: group }, (_, r) => g * group + r);
        const chosen = heads[l].filter((h) => Math.floor(h / group) === g);
        const threshold = members.map((h) => importance.query[h]).sort((a, b) => b - a)[chosen.length - 1];
        expect(chosen.every((h) => importance.query[h] >= threshold)).toBe(true);
        expect(chosen.length).toBe(kept.nHeads / kept.nKvHeads);
      }
    }
    expect(maxAbsDiff(await logitsOf(cut), await logitsOf(withHeadsZeroed(target, 2, heads)))).toBeLessThan(1e-4);
  });
});

describe.skipIf(!haveShared(TOK512))('target-layers from a quantized GGUF target (dequantized)', () => {
  it("all layers reproduce the quantized target's logits exactly; untied heads are kept", async () => {
    // Q8_0 blocks are 32 values: every matrix row here is a whole number of blocks.
    const config: LlamaConfig = {
      dim: 64,
      hiddenDim: 96,
      nLayers: 3,
      nHeads: 4,
      nKvHeads: 2,
      vocabSize: 512,
      maxSeqLen: 64,
      normEps: 1e-5,
      ropeTheta: 10000,
      tiedEmbeddings: false,
    };
    const Q8_0 = 8;
    const random = new SeededRandom(3);
    const weights = randomWeights(config, { seed: 5, std: 0.05 });
    const tensors: GgufTensorToWrite[] = [...tensorsByKey(weights)].map(([key, tensor]) => {
      const base = { name: ggufTensorName(key), shape: tensor.shape };
      if (tensor.shape.length < 2) return { ...base, type: 'F32', data: tensor.data };
      // Q8_0 block: an f16 scale (0.01: bits 0x211f), then 32 int8 values.
      const blocks = tensor.data.length / 32;
      const encoded = new Uint8Array(blocks * 34);
      for (let b = 0; b < blocks; b++) {
        encoded[b * 34] = 0x1f;
        encoded[b * 34 + 1] = 0x21;
        for (let i = 0; i < 32; i++) encoded[b * 34 + 2 + i] = random.nextUint32() & 0xff;
      }
      return { ...base, ggmlType: Q8_0, encoded };
    });
    const path = join(work, 'q8.gguf');
    const vocabulary = readLlama2cTokenizer(tok512(), 512);
    writeGguf(path, llamaGgufMetadata(config, vocabulary, { name: 'random-q8' }), tensors);
    const target = loadModel(path);
    expect(target.kind).toBe('gguf');
    const cut = targetLayerWeights(target.weights, { layers: 3 });
    expect(cut.output?.shape).toEqual([512, 64]);
    expect(Array.from(await logitsOf(cut))).toEqual(Array.from(await logitsOf(target.weights)));
    const shallow = targetLayerWeights(target.weights, { layers: 1, hiddenDim: 40 });
    expect(shallow.config).toMatchObject({ nLayers: 1, hiddenDim: 40, tiedEmbeddings: false });
    expect(shallow.output?.data).toEqual(target.weights.output?.data);
  });
});
