#!/usr/bin/env node
/**
 * Real training data for the GPU check, made here at pack time (as bench/train-stories.mjs does):
 * prompt openings from ShareGPT, Spec-Bench and GSM8K → fireopt ingest → fireopt distill with
 * stories260K (llama.cpp, greedy, top-4 log-probabilities) → <workdir>/targets (train.arrow, vocab 512).
 * Usage: node scripts/gpu/make-targets.mjs <workdir>
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readLlama2cCheckpoint } from '../../dist/formats/llama2c.js';
import { readLlama2cTokenizer } from '../../dist/formats/llama2c-tokenizer.js';
import { writeLlamaGguf } from '../../dist/formats/gguf-llama.js';

const repo = resolve(import.meta.dirname, '../..');
const shared = process.env.FIREOPT_SHARED ?? resolve(repo, '../shared');
const work = resolve(process.argv[2] ?? 'targets-work');
mkdirSync(work, { recursive: true });
const fireopt = (...args) => execFileSync(process.execPath, [join(repo, 'bin/fireopt'), ...args], { cwd: work, stdio: ['ignore', 'inherit', 'inherit'] });

const weights = readLlama2cCheckpoint(join(shared, 'models/stories260K/stories260K.bin'));
const tokenizer = readLlama2cTokenizer(join(shared, 'models/stories260K/tok512.bin'), weights.config.vocabSize);
writeLlamaGguf(join(work, 'stories260K.gguf'), weights, tokenizer, { name: 'stories260K' });

const opening = (text, words) => text.split(/\s+/).filter(Boolean).slice(0, words).join(' ');
const sharegpt = JSON.parse(readFileSync(join(shared, 'data/sharegpt_prompts/ShareGPT_V3_filtered_500.json'), 'utf8')).map((c) => c.conversations[0].value);
const specBench = readFileSync(join(shared, 'data/spec_bench/question.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).turns[0]);
const gsm8k = readFileSync(join(shared, 'data/gsm8k/train.jsonl'), 'utf8').trim().split('\n').slice(0, 400).map((l) => JSON.parse(l).question);
const prompts = [...sharegpt, ...specBench, ...gsm8k].map((t) => opening(t, 6)).filter((t) => t.length > 0);
writeFileSync(join(work, 'prompts.jsonl'), prompts.map((prompt) => JSON.stringify({ prompt })).join('\n') + '\n');

fireopt('--quiet', 'ingest', 'prompts.jsonl', '--out', 'dataset', '--heldout', '0.1');
fireopt('--quiet', 'distill', 'dataset', '--out', 'targets', '--target-model', 'stories260K.gguf', '--max-tokens', '128', '--top-logprobs', '4', '--set', 'target.kv_cache_type=f32');
console.log(join(work, 'targets'));
