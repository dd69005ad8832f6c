/**
 * The draft's starting weights: random; random with the target's token embeddings (the rows of the
 * draft vocabulary, randomly projected when the widths differ); the target's own first blocks
 * (model/target-layers.ts); or an earlier draft's weights.
 */
import { dense, type DenseTensor } from '../model/weights.js';
import { SeededRandom, type LlamaConfig, type LlamaWeights } from '../model/index.js';
import { randomWeights } from '../model/index.js';
import { targetLayerWeights, type TargetLayersShape } from '../model/target-layers.js';
import type { DraftVocab } from './vocab.js';

/**
 * Rows `draftToTarget` of the target embedding [Vt, Ct], mapped to width C. Equal widths copy; other
 * widths multiply by a seeded Gaussian projection [Ct, C] (Johnson–Lindenstrauss: inner products
 * between tokens are kept approximately), then rescale to the target embedding's RMS so the tied
 * head's logit scale is the target's.
 */
export function projectEmbedding(
  targetEmbedding: DenseTensor,
  draftToTarget: Int32Array,
  width: number,
  seed: number,
): DenseTensor {
  const [, targetWidth] = targetEmbedding.shape;
  const rows = draftToTarget.length;
  const out = dense([rows, width]);
  if (targetWidth === width) {
    draftToTarget.forEach((id, r) =>
      out.data.set(targetEmbedding.data.subarray(id * width, (id + 1) * width), r * width),
    );
    return out;
  }
  const random = new SeededRandom(seed ^ 0x5bd1e995);
  const projection = new Float32Array(targetWidth * width);
  for (let i = 0; i < projection.length; i++) projection[i] = random.nextNormal() / Math.sqrt(width);
  let sourceSquares = 0;
  let outSquares = 0;
  draftToTarget.forEach((id, r) => {
    const source = targetEmbedding.data.subarray(id * targetWidth, (id + 1) * targetWidth);
    for (let i = 0; i < targetWidth; i++) {
      const x = source[i];
      sourceSquares += x * x;
      if (x === 0) continue;
      const row = i * width;
      for (let j = 0; j < width; j++) out.data[r * width + j] += x * projection[row + j];
    }
  });
  for (const x of out.data) outSquares += x * x;
  const sourceRms = Math.sqrt(sourceSquares / (rows * targetWidth));
  const outRms = Math.sqrt(outSquares / (rows * width));
  if (outRms > 0) for (let i = 0; i < out.data.length; i++) out.data[i] *= sourceRms / outRms;
  return out;
}

/** Where a draft's weights start: random, the target's embeddings, or the target's first blocks. */
export type StartFrom =
  | { kind: 'random' }
  | { kind: 'target'; targetEmbedding: DenseTensor }
  | { kind: 'target-layers'; target: LlamaWeights; shape: TargetLayersShape };

/** The draft's starting weights for `config` (its vocabulary rows are `vocab`'s). */
export function initialWeights(config: LlamaConfig, seed: number, vocab: DraftVocab, start: StartFrom): LlamaWeights {
  const targetRows =
    start.kind === 'target'
      ? start.targetEmbedding.shape[0]
      : start.kind === 'target-layers'
        ? start.target.config.vocabSize
        : undefined;
  if (targetRows !== undefined && targetRows !== vocab.targetVocabSize) {
    throw new Error(`the target embedding has ${targetRows} rows, the targets' vocabulary ${vocab.targetVocabSize}`);
  }
  if (start.kind === 'target-layers') return targetLayerWeights(start.target, start.shape, vocab.draftToTarget);
  const weights = randomWeights(config, { seed });
  if (start.kind === 'target')
    weights.tokenEmbedding = projectEmbedding(start.targetEmbedding, vocab.draftToTarget, config.dim, seed);
  return weights;
}
