/**
 * Quantized and half-precision GGUF tensors, read by fireopt and by llama.cpp: no quantizer is
 * involved. For each type a GGUF is written whose token embedding is random blocks of that type
 * (random bytes, random finite f16 scales; the other tensors F32), then llama.cpp (node-llama-cpp)
 * and fireopt's model core (weights dequantized by fireopt) must give the same logits within 1e-4
 * of the largest. The embedding is where llama.cpp dequantizes exactly (get_rows); its matrix
 * products would quantize the activations to 8 bits first, which no reference should.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Llama } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { QUANT_BLOCKS, dequantize } from '../../src/formats/gguf-quants.js';
import { llamaGgufMetadata, readLlamaGguf } from '../../src/formats/gguf-llama.js';
import { writeGguf, type GgufTensorToWrite } from '../../src/formats/gguf-write.js';
import { floatToHalfBits } from '../../src/formats/half.js';
import { ggufTensorName, tensorsByKey } from '../../src/formats/llama-tensors.js';
import { readLlama2cTokenizer } from '../../src/formats/llama2c-tokenizer.js';
import type { LlamaConfig } from '../../src/model/config.js';
import { LlamaModel, randomWeights, SeededRandom } from '../../src/model/index.js';
import { EXACT_CONTEXT, logitGap } from '../helpers/llama-cpp-logits.js';
import { haveShared, TOK512, tok512 } from '../helpers/shared.js';

/** Byte offsets of each type's f16 scale fields in a block (ggml-common.h), set to finite values. */
const HALF_FIELDS: Record<string, number[]> = {
  Q4_0: [0],
  Q4_1: [0, 2],
  Q5_0: [0],
  Q5_1: [0, 2],
  Q8_0: [0],
  Q2_K: [80, 82],
  Q3_K: [108],
  Q4_K: [0, 2],
  Q5_K: [0, 2],
  Q6_K: [208],
};

/** Random blocks of a quantized type: random bytes, with each f16 scale a random finite number in ±0.05. */
function randomBlocks(type: number, values: number, random: SeededRandom): Uint8Array {
  const block = QUANT_BLOCKS[type];
  const bytes = new Uint8Array((values / block.values) * block.bytes);
  for (let i = 0; i < bytes.length; i++) bytes[i] = random.nextUint32() & 0xff;
  for (let at = 0; at < bytes.length; at += block.bytes) {
    for (const field of HALF_FIELDS[block.name]) {
      const bits = floatToHalfBits((random.nextUint32() / 2 ** 32 - 0.5) * 0.1);
      bytes[at + field] = bits & 0xff;
      bytes[at + field + 1] = bits >> 8;
    }
  }
  return bytes;
}

describe.skipIf(!haveShared(TOK512))('quantized GGUF tensors: fireopt and llama.cpp dequantize alike', () => {
  let work: string;
  let llama: Llama;
  // Width 256: a K-quant block is 256 values and must not straddle embedding rows.
  const config: LlamaConfig = {
    dim: 256,
    hiddenDim: 64,
    nLayers: 1,
    nHeads: 4,
    nKvHeads: 2,
    vocabSize: 512,
    maxSeqLen: 64,
    normEps: 1e-5,
    ropeTheta: 10000,
    tiedEmbeddings: false,
  };
  const types = [
    ...Object.entries(QUANT_BLOCKS).map(([id, block]) => ({ name: block.name, id: Number(id) })),
    { name: 'F16', id: -1 },
    { name: 'BF16', id: -1 },
  ];

  beforeAll(async () => {
    await initBackend('wasm');
    work = mkdtempSync(join(tmpdir(), 'fireopt-quants-'));
    const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
    llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  });
  afterAll(async () => {
    await llama?.dispose();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('reads every block type this test writes as whole blocks', () => {
    for (const { id, name } of types.filter((t) => t.id >= 0)) {
      const values = dequantize(id, randomBlocks(id, 512, new SeededRandom(1)), name);
      expect(values).toHaveLength(512);
      expect(values.every(Number.isFinite)).toBe(true);
    }
  });

  it.each(types)(
    "$name token embedding: llama.cpp's logits (≤ 1e-4 of the largest)",
    async ({ name, id }) => {
      const vocabulary = readLlama2cTokenizer(tok512(), config.vocabSize);
      const weights = randomWeights(config, { seed: 7, std: 0.05 });
      const random = new SeededRandom(11);
      const tensors: GgufTensorToWrite[] = [...tensorsByKey(weights)].map(([key, tensor]) => {
        const base = { name: ggufTensorName(key), shape: tensor.shape };
        if (key !== 'tokenEmbedding') return { ...base, type: 'F32', data: tensor.data };
        if (id < 0) return { ...base, type: name as 'F16' | 'BF16', data: tensor.data };
        return { ...base, ggmlType: id, encoded: randomBlocks(id, tensor.data.length, random) };
      });
      const path = join(work, `${name}.gguf`);
      writeGguf(path, llamaGgufMetadata(config, vocabulary, { name: `random-${name}` }), tensors);

      const model = LlamaModel.fromWeights(readLlamaGguf(path).weights, { trainable: false });
      const engineModel = await llama.loadModel({ modelPath: path });
      const context = await engineModel.createContext({ ...EXACT_CONTEXT, contextSize: 64 });
      try {
        const ids = Array.from({ length: 12 }, (_, i) => (i === 0 ? 1 : (i * 97 + 13) % config.vocabSize));
        const { largest, worst } = await logitGap(context, model, ids);
        expect(largest).toBeGreaterThan(0.1);
        expect(worst / largest).toBeLessThan(1e-4);
      } finally {
        await context.dispose();
        await engineModel.dispose();
        model.dispose();
      }
    },
    60_000,
  );
});
