/** Preset overrides: a new width brings its own SwiGLU width unless one is given. */
import { describe, expect, it } from 'vitest';
import { configProblems, presetConfig, presets, swigluHiddenDim } from '../../src/model/index.js';

describe('presetConfig overrides', () => {
  it('re-derives hiddenDim from an overridden dim', () => {
    // Llama's rule by hand: 2/3 · 4 · 32 = 85.33 → 85 → next multiple of 32 = 96.
    expect(swigluHiddenDim(32)).toBe(96);
    const narrowed = presetConfig('draft-nano', 512, 128, { dim: 32, nHeads: 2, nKvHeads: 1 });
    expect(narrowed).toMatchObject({
      dim: 32,
      hiddenDim: 96,
      nLayers: 2,
      nHeads: 2,
      nKvHeads: 1,
      vocabSize: 512,
      maxSeqLen: 128,
    });
    expect(configProblems(narrowed)).toEqual([]);
    // 2/3 · 4 · 384 = 1024, already a multiple of 32.
    expect(presetConfig('draft-small', 8192, 256, { dim: 384 }).hiddenDim).toBe(1024);
  });

  it('keeps an explicit hiddenDim, with or without a dim override', () => {
    expect(presetConfig('draft-nano', 512, 128, { dim: 32, hiddenDim: 192, nHeads: 2, nKvHeads: 1 })).toMatchObject({
      dim: 32,
      hiddenDim: 192,
    });
    expect(presetConfig('draft-tiny', 512, 128, { hiddenDim: 100 })).toMatchObject({ dim: 128, hiddenDim: 100 });
  });

  it("keeps the preset's hiddenDim when dim is not overridden", () => {
    expect(presetConfig('draft-tiny', 512, 128, { nLayers: 2 })).toMatchObject({
      dim: 128,
      hiddenDim: presets['draft-tiny'].hiddenDim,
      nLayers: 2,
    });
    expect(presets['draft-tiny'].hiddenDim).toBe(352);
    // Overriding dim with the preset's own value changes nothing.
    expect(presetConfig('draft-base', 512, 128, { dim: 512 })).toEqual(presetConfig('draft-base', 512, 128));
  });
});
