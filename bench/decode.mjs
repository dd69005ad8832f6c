#!/usr/bin/env node
/**
 * Single-sequence decoding speed with the KV cache: fireopt's tfjs model on wasm beside llama.cpp
 * (node-llama-cpp, CPU, threads: 1, the same weights written as an F32 GGUF by fireopt), greedy,
 * F32 KV cache and no flash attention on the llama.cpp side, `--tokens` new tokens after BOS. Models: the real
 * stories260K, and draft-small (d 256, 4 layers) with random weights at vocabularies 8192 and 32000 (Llama-2's
 * SentencePiece vocabulary, cut to size, from ../shared/models/vocab).
 *
 *   node bench/decode.mjs [--tokens 128] [--backend wasm] [--skip-llama-cpp] [--smoke]
 *
 * --smoke: the smallest run (stories260K only, 8 tokens) that checks the script works, in seconds.
 *
 * Needs `npm run build` first (runs on dist/).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../dist/backend/index.js';
import { readGguf } from '../dist/formats/gguf.js';
import { vocabularyFromGgufMetadata } from '../dist/formats/gguf-vocabulary.js';
import { writeLlamaGguf } from '../dist/formats/gguf-llama.js';
import { readLlama2cCheckpoint } from '../dist/formats/llama2c.js';
import { readLlama2cTokenizer } from '../dist/formats/llama2c-tokenizer.js';
import { argmax, DecodeSession, LlamaModel, presetConfig, randomWeights } from '../dist/model/index.js';
import { startLlama } from '../dist/util/llama-runtime.js';
import { benchArgs } from './args.mjs';

const args = benchArgs();
const smoke = args.has('smoke');
const newTokens = Number(args.get('tokens') ?? (smoke ? 8 : 128));
const backend = args.get('backend') ?? 'wasm';
const skipLlamaCpp = args.has('skip-llama-cpp');
const shared = process.env.FIREOPT_SHARED ?? resolve(import.meta.dirname, '../../shared');
const BOS = 1;

function cutVocabulary(vocabulary, size) {
  return {
    ...vocabulary,
    tokens: vocabulary.tokens.slice(0, size),
    scores: vocabulary.scores?.slice(0, size),
    tokenTypes: vocabulary.tokenTypes.slice(0, size),
  };
}

function models() {
  const stories = readLlama2cCheckpoint(join(shared, 'models/stories260K/stories260K.bin'));
  const storiesVocab = readLlama2cTokenizer(join(shared, 'models/stories260K/tok512.bin'), stories.config.vocabSize);
  const llamaVocabPath = join(shared, 'models/vocab/ggml-vocab-llama-spm.gguf');
  const llamaVocab = vocabularyFromGgufMetadata(readGguf(llamaVocabPath).metadata, llamaVocabPath);
  const list = [{ name: 'stories260K', weights: stories, vocabulary: storiesVocab }];
  for (const vocabSize of smoke ? [] : [8192, 32000]) {
    const config = presetConfig('draft-small', vocabSize, 512);
    // std 0.2 makes a peaked, non-repetitive distribution; speed does not depend on the values.
    list.push({
      name: `draft-small V${vocabSize}`,
      weights: randomWeights(config, { seed: 1, std: 0.2 }),
      vocabulary: cutVocabulary(llamaVocab, vocabSize),
    });
  }
  return list;
}

async function decodeTfjs(weights) {
  const model = LlamaModel.fromWeights(weights, { trainable: false });
  const V = weights.config.vocabSize;
  const run = async () => {
    const session = new DecodeSession(model);
    const tokens = [];
    const margins = []; // top-1 minus top-2 logit at each step: a near tie can flip between engines
    try {
      let logits = await session.feed([BOS]);
      const start = performance.now();
      for (let i = 0; i < newTokens; i++) {
        const next = argmax(logits, 0, V);
        tokens.push(next);
        let second = -Infinity;
        for (let j = 0; j < V; j++) if (j !== next && logits[j] > second) second = logits[j];
        margins.push(logits[next] - second);
        logits = await session.feed([next]);
      }
      return { tokens, margins, seconds: (performance.now() - start) / 1000 };
    } finally {
      session.dispose();
    }
  };
  await run(); // warm-up (XNNPACK packs the weights once)
  const runs = [await run(), await run(), await run()].sort((a, b) => a.seconds - b.seconds);
  model.dispose();
  const best = runs[1]; // median of three
  return { tokens: best.tokens, margins: best.margins, tokensPerSec: newTokens / best.seconds };
}

async function decodeLlamaCpp(llama, path) {
  const model = await llama.loadModel({ modelPath: path });
  // F32 KV cache and no flash attention, like the tfjs model: with llama.cpp's defaults (F16 cache,
  // flash attention) draft-small V32000's greedy path left tfjs's at step 98, where tfjs and an
  // independent run.c port agree on a top-2 logit margin of 0.018.
  const context = await model.createContext({
    contextSize: 512,
    threads: 1,
    sequences: 1,
    flashAttention: false,
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
  });
  try {
    const run = async () => {
      const sequence = context.getSequence();
      const tokens = [];
      let start = 0;
      try {
        for await (const token of sequence.evaluate([BOS], { temperature: 0 })) {
          if (tokens.length === 0) start = performance.now(); // time from the first new token, as for tfjs
          tokens.push(token);
          if (tokens.length === newTokens + 1) break;
        }
      } finally {
        sequence.dispose();
      }
      return { tokens: tokens.slice(0, newTokens), seconds: (performance.now() - start) / 1000 };
    };
    await run();
    const runs = [await run(), await run(), await run()].sort((a, b) => a.seconds - b.seconds);
    return { tokens: runs[1].tokens, tokensPerSec: newTokens / runs[1].seconds };
  } finally {
    await context.dispose();
    await model.dispose();
  }
}

await initBackend(backend, (line) => console.log(line));
console.log(
  `machine: ${cpus()[0].model}, ${cpus().length} cores; node ${process.version}; ` +
    `${newTokens} new tokens after BOS, greedy`,
);
const llama = skipLlamaCpp ? undefined : await startLlama();
const directory = mkdtempSync(join(tmpdir(), 'fireopt-decode-'));
const rows = [];
try {
  for (const { name, weights, vocabulary } of models()) {
    const ours = await decodeTfjs(weights);
    let theirs;
    if (llama) {
      const path = join(directory, `${name.replace(/\W+/g, '-')}.gguf`);
      writeLlamaGguf(path, weights, vocabulary, { dtype: 'f32' });
      theirs = await decodeLlamaCpp(llama, path);
    }
    const firstDifference = theirs ? theirs.tokens.findIndex((t, i) => t !== ours.tokens[i]) : -1;
    const sameTokens = theirs ? firstDifference === -1 : undefined;
    const row = {
      model: name,
      tfjsTokensPerSec: ours.tokensPerSec,
      llamaCppTokensPerSec: theirs?.tokensPerSec,
      ratio: theirs ? ours.tokensPerSec / theirs.tokensPerSec : undefined,
      sameGreedyTokens: sameTokens,
    };
    if (theirs && firstDifference >= 0)
      Object.assign(row, {
        firstDifferentStep: firstDifference,
        tfjsTop2LogitMarginThere: ours.margins[firstDifference],
        tfjsTokens: ours.tokens.slice(Math.max(0, firstDifference - 3), firstDifference + 2),
        llamaCppTokens: theirs.tokens.slice(Math.max(0, firstDifference - 3), firstDifference + 2),
      });
    rows.push(row);
    console.log(JSON.stringify(row));
  }
} finally {
  rmSync(directory, { recursive: true, force: true });
}

console.log(
  `\n| model | tfjs ${backend} tokens/s | llama.cpp tokens/s (1 thread) | tfjs / llama.cpp | same greedy tokens |`,
);
console.log('|---|---|---|---|---|');
for (const r of rows) {
  const fmt = (v) => (v === undefined ? 'n/a' : v.toFixed(0));
  const same =
    r.sameGreedyTokens === undefined
      ? 'n/a'
      : r.sameGreedyTokens
        ? 'yes'
        : `no: from step ${r.firstDifferentStep} (tfjs top-2 margin ${r.tfjsTop2LogitMarginThere.toExponential(1)})`;
  console.log(
    `| ${r.model} | ${fmt(r.tfjsTokensPerSec)} | ${fmt(r.llamaCppTokensPerSec)} | ` +
      `${r.ratio === undefined ? 'n/a' : r.ratio.toFixed(2)} | ${same} |`,
  );
}
