/**
 * The stories260K workload shared by bench/train-stories.mjs, bench/speedup-stories.mjs and
 * scripts/gpu/make-targets.mjs: the
 * target as a GGUF written from the llama2.c checkpoint, and real prompt openings (the first 6 words
 * of ShareGPT, Spec-Bench and GSM8K questions) as a prompts JSONL. Needs the built dist/.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readLlama2cCheckpoint } from '../dist/formats/llama2c.js';
import { readLlama2cTokenizer } from '../dist/formats/llama2c-tokenizer.js';
import { writeLlamaGguf } from '../dist/formats/gguf-llama.js';

/** Writes `<work>/stories260K.gguf` and `<work>/prompts.jsonl`; returns the checkpoint's weights. */
export function writeStoriesWorkload(shared, work) {
  const weights = readLlama2cCheckpoint(join(shared, 'models/stories260K/stories260K.bin'));
  const tokenizer = readLlama2cTokenizer(join(shared, 'models/stories260K/tok512.bin'), weights.config.vocabSize);
  writeLlamaGguf(join(work, 'stories260K.gguf'), weights, tokenizer, { name: 'stories260K' });
  const opening = (text, words) => text.split(/\s+/).filter(Boolean).slice(0, words).join(' ');
  const sharegpt = JSON.parse(
    readFileSync(join(shared, 'data/sharegpt_prompts/ShareGPT_V3_filtered_500.json'), 'utf8'),
  ).map((c) => c.conversations[0].value);
  const specBench = readFileSync(join(shared, 'data/spec_bench/question.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).turns[0]);
  const gsm8k = readFileSync(join(shared, 'data/gsm8k/train.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .slice(0, 400)
    .map((l) => JSON.parse(l).question);
  const prompts = [...sharegpt, ...specBench, ...gsm8k].map((t) => opening(t, 6)).filter((t) => t.length > 0);
  writeFileSync(join(work, 'prompts.jsonl'), prompts.map((prompt) => JSON.stringify({ prompt })).join('\n') + '\n');
  return weights;
}

/**
 * The fireopt commands (run in the work folder) that make the workload's targets: ingest with a 10 %
 * held-out split, then distill through llama.cpp, greedy, 128 tokens, top-4 log-probabilities, F32 KV.
 */
export const STORIES_TARGETS_COMMANDS = [
  ['--quiet', 'ingest', 'prompts.jsonl', '--out', 'dataset', '--heldout', '0.1'],
  [
    '--quiet',
    'distill',
    'dataset',
    '--out',
    'targets',
    '--target-model',
    'stories260K.gguf',
    '--max-tokens',
    '128',
    '--top-logprobs',
    '4',
    '--set',
    'target.kv_cache_type=f32',
  ],
];
