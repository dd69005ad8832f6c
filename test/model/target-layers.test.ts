/**
 * `train.init: target-layers`: a draft cut from the real stories260K (its first blocks, SwiGLU
 * narrowed by weight norm, its final norm and head), read from each format fireopt reads.
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
import { ffnChannelImportance, targetLayersProblems, targetLayerWeights } from '../../src/model/target-layers.js';
import { dense, type LlamaWeights } from '../../src/model/weights.js';
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
          const cut = targetLayerWeights(target, { layers: target.config.nLayers });
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
