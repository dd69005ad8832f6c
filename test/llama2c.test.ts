import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseLlama2cCheckpoint, readLlama2cCheckpoint } from '../src/formats/llama2c.js';
import { InputError } from '../src/errors.js';
import { haveShared, STORIES260K, stories260K } from './helpers/shared.js';

describe.skipIf(!haveShared(STORIES260K))('llama2.c checkpoint reader', () => {
  it('reads the real stories260K header and weights', () => {
    const weights = readLlama2cCheckpoint(stories260K());
    expect(weights.config).toMatchObject({
      dim: 64,
      hiddenDim: 172,
      nLayers: 5,
      nHeads: 8,
      nKvHeads: 4,
      vocabSize: 512,
      maxSeqLen: 512,
      tiedEmbeddings: true,
    });
    expect(weights.layers).toHaveLength(5);
    expect(weights.layers[0].wk.shape).toEqual([32, 64]);
    expect(weights.output).toBeUndefined();
    // RMSNorm gains of a trained model are not all ones, and the final norm is the last tensor read.
    expect(weights.finalNorm.data.some((v) => Math.abs(v - 1) > 0.05)).toBe(true);
    expect(Number.isFinite(weights.finalNorm.data[63])).toBe(true);
  });

  it('names the file and the problem for truncated, padded and foreign files', () => {
    const bytes = readFileSync(stories260K());
    expect(() => parseLlama2cCheckpoint(bytes.subarray(0, 1000), 'cut.bin')).toThrow(/cut\.bin: checkpoint truncated/);
    expect(() => parseLlama2cCheckpoint(Buffer.concat([bytes, Buffer.alloc(8)]), 'pad.bin')).toThrow(
      /pad\.bin: checkpoint has trailing bytes/,
    );
    expect(() => parseLlama2cCheckpoint(bytes.subarray(0, 10), 'tiny.bin')).toThrow(/tiny\.bin: truncated/);
    const foreign = Buffer.from('{"this is": "json, not a checkpoint"}');
    expect(() => parseLlama2cCheckpoint(foreign, 'x.json')).toThrow(InputError);
    expect(() => readLlama2cCheckpoint('/nonexistent/model.bin')).toThrow(
      /model\.bin: cannot read checkpoint \(ENOENT\)/,
    );
  });
});
