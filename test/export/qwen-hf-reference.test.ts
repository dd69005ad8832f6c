/**
 * Qwen2 and Qwen3 Hugging Face folders written by fireopt, against the hand-written PyTorch
 * reference (scripts/gpu/check_hf_export.py --engine torch: float64, transformers' layout, biases
 * and q/k norms from the tensors): the logits fireopt's model core computes from the folder
 * (export's reference.json + logits.f32) must match within 1e-4 and pick the same greedy tokens.
 * Random weights made here, with every Qwen-specific tensor away from its neutral value.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeReferenceLogits } from '../../src/export/reference.js';
import { writeHfLlama } from '../../src/formats/safetensors.js';
import { pythonWith, runPython } from '../helpers/python.js';
import { repoRoot } from '../helpers/shared.js';
import { qwenCases, qwenWeights } from '../model/qwen-fixtures.js';

const TORCH_PYTHON = pythonWith('numpy, torch');
if (!TORCH_PYTHON)
  console.warn('Qwen HF reference test: no Python with PyTorch here (apt-get install python3-torch); skipped');

const cases = qwenCases(300, 64);

describe.skipIf(!TORCH_PYTHON)('Qwen2 / Qwen3 HF folders: fireopt vs the PyTorch reference', () => {
  let work: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'fireopt-qwen-hf-'));
  });
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it.each(cases)(
    '$name: logits within 1e-4 and the same greedy tokens',
    async ({ name, config }) => {
      const weights = qwenWeights(config, 9);
      const hf = join(work, name);
      writeHfLlama(hf, weights);
      await writeReferenceLogits(hf, join(hf, 'reference'), { prompts: 4, backend: 'wasm', log: () => {} });
      const script = join(repoRoot, 'scripts/gpu/check_hf_export.py');
      const checked = runPython(TORCH_PYTHON as string, [
        script,
        '--export',
        hf,
        '--engine',
        'torch',
        '--device',
        'cpu',
      ]);
      expect(checked.code, checked.stderr + JSON.stringify(checked.json)).toBe(0);
      expect(checked.json[0]).toMatchObject({ engine: 'torch', passed: true, greedy_agreement: 1 });
      expect(checked.json[0].positions as number).toBeGreaterThan(30);
      expect(checked.json[0].max_abs_logit as number).toBeGreaterThan(0.3);
    },
    120_000,
  );
});
