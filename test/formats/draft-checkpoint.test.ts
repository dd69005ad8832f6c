import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDraftCheckpoint, writeDraftCheckpoint } from '../../src/formats/draft-checkpoint.js';
import { readLlama2cCheckpoint } from '../../src/formats/llama2c.js';
import { readLlama2cTokenizer } from '../../src/formats/llama2c-tokenizer.js';
import type { LlamaWeights } from '../../src/model/weights.js';
import { haveShared, STORIES260K, stories260K, TOK512, tok512 } from '../helpers/shared.js';

const work = mkdtempSync(join(tmpdir(), 'fireopt-draft-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Keep only the embedding rows of `keep` (a reduced draft vocabulary). */
function reduceVocabulary(weights: LlamaWeights, keep: number[]): LlamaWeights {
  const { dim } = weights.config;
  const data = new Float32Array(keep.length * dim);
  keep.forEach((id, row) => data.set(weights.tokenEmbedding.data.subarray(id * dim, (id + 1) * dim), row * dim));
  return {
    ...weights,
    config: { ...weights.config, vocabSize: keep.length },
    tokenEmbedding: { shape: [keep.length, dim], data },
  };
}

describe.skipIf(!haveShared(STORIES260K, TOK512))('draft checkpoints', () => {
  let weights: LlamaWeights;
  let vocabulary: ReturnType<typeof readLlama2cTokenizer>;
  beforeAll(() => {
    weights = readLlama2cCheckpoint(stories260K());
    vocabulary = readLlama2cTokenizer(tok512(), weights.config.vocabSize);
  });

  it('round-trips the real stories260K weights, its tokenizer and training facts', () => {
    const dir = join(work, 'full');
    writeDraftCheckpoint(
      dir,
      { weights, vocabulary, target: { engine: 'llama-cpp', model: 'stories260K' }, training: { steps: 0 } },
      { train: { preset: 'x' } },
    );
    const back = readDraftCheckpoint(dir);
    expect(back.weights.config).toEqual(weights.config);
    expect(back.weights.layers[3].wq.data).toEqual(weights.layers[3].wq.data);
    expect(back.weights.tokenEmbedding.data).toEqual(weights.tokenEmbedding.data);
    expect(back.vocabulary?.tokens).toEqual(vocabulary.tokens);
    expect(back.draftVocabulary).toBeUndefined();
    expect(back.manifest).toMatchObject({
      kind: 'draft',
      schema_version: 1,
      reduced_vocab: false,
      target_vocab_size: 512,
      training: { steps: 0 },
    });
    expect(readdirSync(work).filter((n) => n.startsWith('.'))).toEqual([]); // no staging left behind
  });

  it('keeps a reduced vocabulary map and checks it on read', () => {
    const keep = Array.from({ length: 300 }, (_, i) => 511 - i);
    const dir = join(work, 'reduced');
    writeDraftCheckpoint(
      dir,
      {
        weights: reduceVocabulary(weights, keep),
        vocabulary,
        draftVocabulary: { draftToTarget: Int32Array.from(keep), targetVocabSize: 512 },
        target: {},
        training: {},
      },
      {},
    );
    const back = readDraftCheckpoint(dir);
    expect(back.weights.config.vocabSize).toBe(300);
    expect(Array.from(back.draftVocabulary!.draftToTarget)).toEqual(keep);
    expect(back.manifest.target_vocab_size).toBe(512);

    writeFileSync(
      join(dir, 'draft_vocab.json'),
      JSON.stringify({ target_vocab_size: 512, draft_to_target: [...keep.slice(0, 299), 9999] }),
    );
    expect(() => readDraftCheckpoint(dir)).toThrow(
      /draft_vocab\.json: draft_to_target\[299\] = 9999 is not a target id/,
    );
    writeFileSync(
      join(dir, 'draft_vocab.json'),
      JSON.stringify({ target_vocab_size: 512, draft_to_target: keep.slice(0, 10) }),
    );
    expect(() => readDraftCheckpoint(dir)).toThrow(/10 entries, the model has 300 vocabulary rows/);
    rmSync(join(dir, 'draft_vocab.json'));
    expect(() => readDraftCheckpoint(dir)).toThrow(/draft_vocab\.json is missing/);
  });

  it('refuses a directory that is not a draft, with a hint', () => {
    expect(() => readDraftCheckpoint(work)).toThrow(/not a fireopt draft \(no manifest\.json\)/);
    expect(existsSync(join(work, 'full', 'tokenizer.gguf'))).toBe(true);
  });
});
