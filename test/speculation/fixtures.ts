/**
 * A real draft for the real stories260K target, until train writes one: stories260K with its
 * last layer dropped and Gaussian noise (σ = `noise` × each tensor's RMS) added to every weight,
 * written both as a fireopt draft checkpoint (for the tfjs simulator) and as a GGUF (for the
 * llama.cpp loop). The two files hold the same float32 weights.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeDraftCheckpoint } from '../../src/formats/draft-checkpoint.js';
import { writeLlamaGguf } from '../../src/formats/gguf-llama.js';
import { readLlama2cCheckpoint } from '../../src/formats/llama2c.js';
import { readLlama2cTokenizer } from '../../src/formats/llama2c-tokenizer.js';
import { SeededRandom } from '../../src/model/random.js';
import type { DenseTensor, LlamaWeights } from '../../src/model/weights.js';
import { stories260K, tok512 } from '../helpers/shared.js';

export interface NoisyDraft {
  dir: string;
  checkpoint: string;
  gguf: string;
  targetGguf: string;
  remove(): void;
}

function noisy(tensor: DenseTensor, noise: number, random: SeededRandom): DenseTensor {
  let sumSquares = 0;
  for (const v of tensor.data) sumSquares += v * v;
  const sigma = noise * Math.sqrt(sumSquares / tensor.data.length);
  const data = Float32Array.from(tensor.data, (v) => v + sigma * random.nextNormal());
  return { shape: [...tensor.shape], data };
}

/** Write the target GGUF and a noisy, shallower draft (checkpoint + GGUF) into one temporary folder. */
export function writeNoisyDraft(options: { noise?: number; keepLayers?: number; seed?: number } = {}): NoisyDraft {
  const dir = mkdtempSync(join(tmpdir(), 'fireopt-spec-'));
  const target = readLlama2cCheckpoint(stories260K());
  const vocabulary = readLlama2cTokenizer(tok512(), target.config.vocabSize);
  const random = new SeededRandom(options.seed ?? 7);
  const noise = options.noise ?? 0.05;
  const keepLayers = options.keepLayers ?? target.config.nLayers - 1;
  const draft: LlamaWeights = {
    config: { ...target.config, nLayers: keepLayers },
    tokenEmbedding: noisy(target.tokenEmbedding, noise, random),
    layers: target.layers.slice(0, keepLayers).map((layer) => ({
      attnNorm: layer.attnNorm,
      wq: noisy(layer.wq, noise, random),
      wk: noisy(layer.wk, noise, random),
      wv: noisy(layer.wv, noise, random),
      wo: noisy(layer.wo, noise, random),
      ffnNorm: layer.ffnNorm,
      w1: noisy(layer.w1, noise, random),
      w2: noisy(layer.w2, noise, random),
      w3: noisy(layer.w3, noise, random),
    })),
    finalNorm: target.finalNorm,
  };
  const targetGguf = join(dir, 'stories260K.gguf');
  writeLlamaGguf(targetGguf, target, vocabulary, { name: 'stories260K' });
  const gguf = join(dir, 'draft.gguf');
  writeLlamaGguf(gguf, draft, vocabulary, { name: 'stories260K-noisy-draft' });
  const checkpoint = join(dir, 'draft');
  writeDraftCheckpoint(
    checkpoint,
    {
      weights: draft,
      vocabulary,
      target: { engine: 'llama-cpp', model: 'stories260K.gguf' },
      training: { made_by: 'test: stories260K, last layer dropped, weight noise', noise, keep_layers: keepLayers },
    },
    {},
  );
  return { dir, checkpoint, gguf, targetGguf, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
