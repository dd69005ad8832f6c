#!/usr/bin/env node
/**
 * Real training data for the GPU check, made here at pack time (as bench/train-stories.mjs does):
 * prompt openings from ShareGPT, Spec-Bench and GSM8K → fireopt ingest → fireopt distill with
 * stories260K (llama.cpp, greedy, top-4 log-probabilities) → <workdir>/targets (train.arrow, vocab 512).
 * Usage: node scripts/gpu/make-targets.mjs <workdir>
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { STORIES_TARGETS_COMMANDS, writeStoriesWorkload } from '../stories-prompts.mjs';

const repo = resolve(import.meta.dirname, '../..');
const shared = process.env.FIREOPT_SHARED ?? resolve(repo, '../shared');
const work = resolve(process.argv[2] ?? 'targets-work');
mkdirSync(work, { recursive: true });
const fireopt = (...args) =>
  execFileSync(process.execPath, [join(repo, 'bin/fireopt'), ...args], {
    cwd: work,
    stdio: ['ignore', 'inherit', 'inherit'],
  });

writeStoriesWorkload(shared, work);

for (const command of STORIES_TARGETS_COMMANDS) fireopt(...command);
console.log(join(work, 'targets'));
