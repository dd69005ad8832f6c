/**
 * Automatic selection sized to the target: candidates at a few fractions of the target's parameters,
 * each with the best init available, and never one of half the target's size or more — for targets
 * from stories260K to Llama-3-8B (their published sizes; only numbers are needed).
 */
import { describe, expect, it } from 'vitest';
import { headDim, type LlamaConfig } from '../../src/model/config.js';
import { targetLayersConfig } from '../../src/model/target-layers.js';
import { parameterCount, sizedSearch, targetLayersWithin } from '../../src/train/search.js';

const llama = (numbers: Partial<LlamaConfig>): LlamaConfig => ({
  dim: 64,
  hiddenDim: 172,
  nLayers: 5,
  nHeads: 8,
  nKvHeads: 4,
  vocabSize: 512,
  maxSeqLen: 512,
  normEps: 1e-5,
  ropeTheta: 10000,
  tiedEmbeddings: true,
  ...numbers,
});

const TARGETS: Record<string, LlamaConfig> = {
  stories260K: llama({}),
  'stories15M (llama2.c)': llama({ dim: 288, hiddenDim: 768, nLayers: 6, nHeads: 6, nKvHeads: 6, vocabSize: 32000 }),
  'Llama-2-7B': llama({
    dim: 4096,
    hiddenDim: 11008,
    nLayers: 32,
    nHeads: 32,
    nKvHeads: 32,
    vocabSize: 32000,
    tiedEmbeddings: false,
  }),
  'Llama-3-8B': llama({
    dim: 4096,
    hiddenDim: 14336,
    nLayers: 32,
    nHeads: 32,
    nKvHeads: 8,
    vocabSize: 128256,
    tiedEmbeddings: false,
    ropeTheta: 500000,
  }),
  'TinyLlama-1.1B': llama({
    dim: 2048,
    hiddenDim: 5632,
    nLayers: 22,
    nHeads: 32,
    nKvHeads: 4,
    vocabSize: 32000,
    tiedEmbeddings: false,
  }),
};

describe('automatic selection sized to the target', () => {
  it('counts parameters as the checkpoint holds them (stories260K: 260,032 without its RoPE tables)', () => {
    expect(parameterCount(TARGETS.stories260K)).toBe(260_032);
    // Llama-3-8B: 8.03 billion.
    expect(parameterCount(TARGETS['Llama-3-8B'])).toBe(8_030_261_248);
  });

  for (const [name, target] of Object.entries(TARGETS)) {
    it(`${name}: never a candidate of half the target or more, with or without its weights`, () => {
      const total = parameterCount(target);
      for (const haveTargetWeights of [true, false]) {
        const candidates = sizedSearch({
          target,
          draftVocabSize: target.vocabSize,
          maxSeqLen: 256,
          haveTargetWeights,
        });
        expect(candidates.length).toBeGreaterThan(0);
        for (const candidate of candidates) {
          expect(candidate.parameters).toBe(parameterCount(candidate.config));
          expect(candidate.parameters).toBeLessThan(total / 2);
          // Within its size budget, and a shape engines load.
          expect(candidate.parameters).toBeLessThanOrEqual(candidate.fraction * total);
          expect(candidate.config.nHeads % candidate.config.nKvHeads).toBe(0);
          expect(headDim(candidate.config) % 2).toBe(0);
          if (!haveTargetWeights) expect(candidate.init).toBe('random');
          if (candidate.init === 'target-layers') {
            expect(candidate.shape?.layers).toBeLessThan(target.nLayers);
            // The target's width and head size; all its heads, or half of them in whole GQA groups.
            expect(candidate.config.dim).toBe(target.dim);
            expect(headDim(candidate.config)).toBe(headDim(target));
            expect([target.nHeads, target.nHeads / 2]).toContain(candidate.config.nHeads);
            expect(candidate.config.nHeads / candidate.config.nKvHeads).toBeLessThanOrEqual(
              target.nHeads / target.nKvHeads,
            );
          } else expect(candidate.config.dim % candidate.config.nHeads).toBe(0);
        }
      }
    });
  }

  it('gives each fraction the best init available: target-layers where a cut fits, else target embeddings', () => {
    const target = TARGETS['Llama-3-8B'];
    const candidates = sizedSearch({
      target,
      draftVocabSize: target.vocabSize,
      maxSeqLen: 256,
      haveTargetWeights: true,
    });
    expect(candidates.map((c) => [c.fraction, c.init])).toEqual([
      [1 / 40, 'target'],
      [1 / 15, 'target'],
      [1 / 6, 'target-layers'],
    ]);
    // 1/6 of 8B (1,338,376,874): embedding, untied head and final norm (1,050,681,344), two blocks'
    // attention and norms (83,902,464), and ⌊203,793,066 / (3 · 4096 · 2)⌋ = 8292 SwiGLU channels, 8288 in eights.
    expect(candidates[2].shape).toEqual({ layers: 2, hiddenDim: 8288 });
    // A draft vocabulary of 32K tokens frees room for deeper cuts at every size.
    const reduced = sizedSearch({ target, draftVocabSize: 32000, maxSeqLen: 256, haveTargetWeights: true });
    expect(reduced.filter((c) => c.init === 'target-layers').length).toBeGreaterThan(1);
  });

  it('stories260K: its embedding is an eighth of it; the only draft under a sixth: one block, half its heads', () => {
    const target = TARGETS.stories260K;
    const candidates = sizedSearch({ target, draftVocabSize: 512, maxSeqLen: 256, haveTargetWeights: true });
    expect(candidates).toHaveLength(1);
    // 1/6 (43,338): embedding and final norm (32,832), 4 of 8 heads over 2 of 4 KV heads with their norms
    // (64 · 8 · 12 + 128 = 6,272), then ⌊4,234 / 192⌋ = 22 SwiGLU channels (an eighth of 172, rounded up).
    expect(candidates[0]).toMatchObject({
      fraction: 1 / 6,
      init: 'target-layers',
      shape: { layers: 1, hiddenDim: 22, heads: 4, kvHeads: 2 },
      config: { dim: 64, nHeads: 4, nKvHeads: 2, headDim: 8, nLayers: 1, hiddenDim: 22 },
    });
    // Without its weights, a generic draft of that size.
    const generic = sizedSearch({ target, draftVocabSize: 512, maxSeqLen: 256, haveTargetWeights: false });
    expect(generic[0]).toMatchObject({ fraction: 1 / 6, init: 'random', config: { dim: 32, nLayers: 2 } });
    // A quarter of it holds one of its blocks with all heads and a narrowed SwiGLU.
    expect(targetLayersWithin(target, 512, 260_032 / 4)).toEqual({ layers: 1, hiddenDim: 96 });
    // Two blocks of half the heads, each with half the SwiGLU or more: 78,400 parameters, above a quarter.
    expect(parameterCount(targetLayersConfig(target, { layers: 2, hiddenDim: 86, heads: 4, kvHeads: 2 }, 512))).toBe(
      78_400,
    );
  });

  it('never cuts all the layers, and a one-layer target has no cut', () => {
    const target = TARGETS['TinyLlama-1.1B'];
    expect(targetLayersWithin(target, target.vocabSize, parameterCount(target))?.layers).toBe(21);
    expect(targetLayersWithin(llama({ nLayers: 1 }), 512, 1e9)).toBeUndefined();
  });
});
