#!/usr/bin/env node
/**
 * Tokenizer throughput on ~10 MB of real text from ../shared/data (AlpacaEval instructions and
 * model outputs, GSM8K, Tiny Shakespeare), in one run:
 * - llama.cpp: fireopt's GGUF tokenizer (node-llama-cpp, vocab only), one native call per document;
 * - port: the hand-written TypeScript port of llama.cpp's tokenizer that it replaced, compiled from
 *   git (`--port-commit`, default the last commit that had it), on the same GGUF;
 * - @huggingface/tokenizers: the same GPT-2 vocabulary as a tokenizer.json (GPT-2's own layout).
 * Vocabularies: GPT-2 (byte-level BPE) for all three, and Llama-2 (SentencePiece) for the first two.
 * Each figure is the best of `--reps` passes; every side's ids are checked equal to llama.cpp's.
 *
 *   node bench/tokenize.mjs [--mb 10] [--reps 2] [--port-commit 44f6488] [--skip-port] [--smoke]
 *
 * --smoke: the smallest run (50 kB, one pass, no port) that checks the script works.
 *
 * Needs `npm run build` first (runs on dist/) and git (for the port).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Tokenizer as HfLibraryTokenizer } from '@huggingface/tokenizers';
import { vocabularyFromGguf } from '../dist/formats/gguf-vocabulary.js';
import { loadTokenizer } from '../dist/tokenizer/load.js';
import { gpt2TokenizerJson } from '../scripts/gpt2-tokenizer-json.mjs';
import { benchArgs } from './args.mjs';

const args = benchArgs();
const smoke = args.has('smoke');
const targetBytes = Number(args.get('mb') ?? (smoke ? 0.05 : 10)) * 1e6;
const reps = Number(args.get('reps') ?? (smoke ? 1 : 2));
const skipPort = smoke || args.has('skip-port');
const portCommit = args.get('port-commit') ?? '44f6488';
const shared = process.env.FIREOPT_SHARED ?? resolve(import.meta.dirname, '../../shared');
const repoRoot = resolve(import.meta.dirname, '..');

/** Real documents, in a fixed order, until `targetBytes` of UTF-8. */
function documents() {
  const docs = [];
  let bytes = 0;
  const add = (text) => {
    if (bytes >= targetBytes || !text) return;
    docs.push(text);
    bytes += Buffer.byteLength(text);
  };
  const alpaca = [
    'Meta-Llama-3-8B-Instruct',
    'Mistral-7B-Instruct-v0.2',
    'gpt-3.5-turbo-1106',
    'gpt-4-turbo-2024-04-09',
  ];
  for (const name of alpaca) {
    for (const row of JSON.parse(readFileSync(join(shared, `data/alpaca_eval_outputs/${name}.json`), 'utf8'))) {
      add(row.instruction);
      add(row.output);
    }
  }
  for (const name of ['train', 'test', 'example_model_solutions']) {
    for (const line of readFileSync(join(shared, `data/gsm8k/${name}.jsonl`), 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const row = JSON.parse(line);
      add(row.question);
      add(row.answer ?? row.solution ?? row.output);
    }
  }
  for (const paragraph of readFileSync(join(shared, 'data/tinyshakespeare/input.txt'), 'utf8').split('\n\n'))
    add(paragraph);
  return { docs, bytes };
}

/** Compile the replaced TypeScript port from git into a temporary folder and import it. */
async function importPort(work) {
  const dir = join(work, 'port');
  execFileSync('sh', [
    '-c',
    `git -C "${repoRoot}" archive ${portCommit} src | tar -x -C "${work}" && mv "${work}/src" "${dir}"`,
  ]);
  symlinkSync(join(repoRoot, 'node_modules'), join(work, 'node_modules'));
  // NodeNext emits ES modules only for sources under a "type": "module" package.
  writeFileSync(join(work, 'package.json'), '{"type":"module"}');
  const entries = ['tokenizer/llama-cpp.ts', 'formats/gguf-vocabulary.ts'].map((f) => join(dir, f));
  execFileSync(process.execPath, [
    join(repoRoot, 'node_modules/typescript/bin/tsc'),
    '--outDir',
    join(work, 'port-dist'),
    '--rootDir',
    dir,
    '--module',
    'NodeNext',
    '--moduleResolution',
    'NodeNext',
    '--target',
    'ES2022',
    '--skipLibCheck',
    '--types',
    'node',
    ...entries,
  ]);
  const { LlamaCppTokenizer } = await import(pathToFileURL(join(work, 'port-dist/tokenizer/llama-cpp.js')).href);
  return (vocabulary) => new LlamaCppTokenizer(vocabulary);
}

/** Best tokens/s over `reps` passes of `encode` over all documents, and the ids of the last pass. */
function measure(encode, docs) {
  let best = 0;
  let ids = [];
  for (let rep = 0; rep < reps; rep++) {
    const started = performance.now();
    ids = docs.map(encode);
    const seconds = (performance.now() - started) / 1000;
    best = Math.max(best, ids.reduce((n, list) => n + list.length, 0) / seconds);
  }
  return { tokensPerSec: best, ids };
}

const work = mkdtempSync(join(tmpdir(), 'fireopt-bench-tokenize-'));
const loadBefore = loadavg()[0];
try {
  const { docs, bytes } = documents();
  const makePort = skipPort ? undefined : await importPort(work);
  console.log(
    `${docs.length} documents, ${(bytes / 1e6).toFixed(1)} MB; ` +
      `${cpus().length} CPUs, load ${loadBefore.toFixed(1)}; best of ${reps}`,
  );
  console.log('| vocabulary | tokenizer | tokens | tokens/s | vs llama.cpp | ids equal to llama.cpp |');
  console.log('|---|---|---:|---:|---:|---|');
  for (const file of ['ggml-vocab-gpt-2.gguf', 'ggml-vocab-llama-spm.gguf']) {
    const path = join(shared, 'models/vocab', file);
    const vocabulary = vocabularyFromGguf(path);
    const options = { addBos: false, addEos: false };
    const sides = [{ name: 'llama.cpp (fireopt)', tokenizer: await loadTokenizer(path) }];
    if (makePort) sides.push({ name: 'TypeScript port', tokenizer: makePort(vocabulary) });
    const results = sides.map(({ name, tokenizer }) => ({
      name,
      ...measure((text) => tokenizer.encode(text, options), docs),
    }));
    if (vocabulary.model === 'gpt2') {
      const library = new HfLibraryTokenizer(gpt2TokenizerJson(vocabulary), {});
      results.push({
        name: '@huggingface/tokenizers',
        ...measure((text) => library.encode(text, { add_special_tokens: false }).ids, docs),
      });
    }
    const reference = results[0];
    for (const result of results) {
      const equal = result.ids.filter((ids, i) => ids.join() === reference.ids[i].join()).length;
      const tokens = result.ids.reduce((n, list) => n + list.length, 0);
      console.log(
        `| ${file.replace(/^ggml-vocab-|\.gguf$/g, '')} | ${result.name} | ${tokens} | ` +
          `${Math.round(result.tokensPerSec)} ` +
          `| ${(result.tokensPerSec / reference.tokensPerSec).toFixed(2)}× | ${equal} of ${docs.length} |`,
      );
    }
  }
  console.log(`load average ${loadBefore.toFixed(1)} → ${loadavg()[0].toFixed(1)}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
