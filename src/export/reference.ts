/**
 * fireopt's own logits of an exported HF folder, for a few prompts: what
 * scripts/gpu/check-hf-export.sh compares transformers' LlamaForCausalLM against on a machine
 * without Node.js. The weights are read back from the written safetensors (so an F16 export is
 * checked against its rounded weights).
 *
 *   reference.json   { format, version, vocab_size, rows, dtype: float32, prompts: [{ text, token_ids, row }] }
 *   logits.f32       little-endian float32 [rows, vocab_size]: the raw logits after every prompt token
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { littleEndianBytes } from '../formats/half.js';
import { readHfLlama } from '../formats/safetensors.js';
import { tokenizerFromVocabulary } from '../tokenizer/load.js';
import type { Vocabulary } from '../tokenizer/vocabulary.js';
import type { BackendRequest } from '../backend/index.js';

/** Varied openings: story, code, question, dialogue, list. */
export const REFERENCE_TEXTS = [
  'Once upon a time, there was a little girl',
  'def fibonacci(n):\n    return',
  'Question: What is the capital of France?\nAnswer:',
  'User: Can you help me plan a trip?\nAssistant: Sure,',
  'The three primary colors are',
  'import numpy as np\nx = np.',
  'Dear team, thank you for',
  '1. Preheat the oven.\n2.',
];

const MAX_PROMPT_TOKENS = 24;

export interface ReferenceOptions {
  prompts: number;
  vocabulary?: Vocabulary;
  backend: BackendRequest;
  log: (message: string) => void;
}

/** Write reference.json and logits.f32 into `refDir`; returns the file names. */
export async function writeReferenceLogits(
  hfDir: string,
  refDir: string,
  options: ReferenceOptions,
): Promise<string[]> {
  const { weights } = readHfLlama(hfDir);
  const { vocabSize, maxSeqLen } = weights.config;
  const tokenizer = options.vocabulary ? await tokenizerFromVocabulary(options.vocabulary) : undefined;
  const maxTokens = Math.min(MAX_PROMPT_TOKENS, maxSeqLen);
  const prompts = REFERENCE_TEXTS.slice(0, options.prompts)
    .map((text, index) => {
      // Without a tokenizer: a fixed spread of ids, still a fair check of the forward pass.
      const ids = tokenizer
        ? tokenizer.encode(text)
        : Array.from({ length: 12 }, (_, i) => (index * 7919 + i * 104729) % vocabSize);
      return { text: tokenizer ? text : null, token_ids: ids.slice(0, maxTokens).filter((id) => id < vocabSize) };
    })
    .filter((prompt) => prompt.token_ids.length > 0);

  const { initBackend } = await import('../backend/index.js');
  await initBackend(options.backend, options.log);
  const tf = await import('@tensorflow/tfjs-core');
  const { LlamaModel } = await import('../model/index.js');
  const model = LlamaModel.fromWeights(weights, { trainable: false });
  let blocks: Float32Array[];
  try {
    const logits = tf.tidy(() =>
      prompts.map((prompt) => model.forward(tf.tensor2d(prompt.token_ids, [1, prompt.token_ids.length], 'int32'))),
    ); // [1, T, V] each
    // All prompts' logits in one asynchronous read (the only kind the webgpu backend has under Node).
    blocks = await Promise.all(logits.map((t) => t.data<'float32'>())).finally(() =>
      logits.forEach((t) => t.dispose()),
    );
  } finally {
    model.dispose();
  }
  const described: Array<{ text: string | null; token_ids: number[]; row: number }> = [];
  let rows = 0;
  for (const prompt of prompts) {
    described.push({ ...prompt, row: rows });
    rows += prompt.token_ids.length;
  }
  const all = new Float32Array(rows * vocabSize);
  let offset = 0;
  for (const block of blocks) {
    all.set(block, offset);
    offset += block.length;
  }
  mkdirSync(refDir, { recursive: true });
  writeFileSync(join(refDir, 'logits.f32'), littleEndianBytes(all));
  const reference = {
    format: 'fireopt-reference-logits',
    version: 1,
    vocab_size: vocabSize,
    rows,
    dtype: 'float32',
    prompts: described,
  };
  writeFileSync(join(refDir, 'reference.json'), JSON.stringify(reference, null, 2) + '\n');
  return ['reference.json', 'logits.f32'];
}
