#!/usr/bin/env node
/**
 * Distill throughput against the engine's own raw generation on the same model, in the same run
 * (fireopt's overhead as a ratio; goal ≤ 5 %), and scaling of the `openai` engine with concurrency
 * against a local `fireopt serve` that batches (`--sequences 8`).
 *
 * Model: the real stories260K, written as GGUF by fireopt. Prompts: ShareGPT openings (first 8
 * words), ingested by fireopt's own ingest; greedy, `--tokens` new tokens per prompt.
 * - llama-cpp: `runDistill` with the llama-cpp engine (threads 1, one sequence) beside a plain
 *   node-llama-cpp loop over the same prompt ids (`evaluateWithMetadata`, greedy, one sequence,
 *   the same context settings), with and without top-k probabilities.
 * - tfjs: `runDistill` with the tfjs engine (wasm, 1 thread) beside the model core's own
 *   `generate()` (KV cache, greedy, no log-probabilities), and with top-8 log-probabilities.
 * Each figure is the median of `--reps` alternating runs; the engine is opened before timing
 * (model load is not counted) and both sides must produce the same tokens.
 *
 *   node bench/distill.mjs [--prompts 64] [--tokens 64] [--reps 3] [--skip-openai] [--smoke]
 *
 * --smoke: the smallest run (4 prompts, 4 tokens, one rep, concurrency 1 and 2) that checks the script works.
 *
 * Needs `npm run build` first (runs on dist/).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { generate } from '../dist/model/index.js';
import { targetSchema } from '../dist/targets/config.js';
import { createTargetEngine } from '../dist/targets/create.js';
import { startLlama } from '../dist/util/llama-runtime.js';
import { benchArgs } from './args.mjs';
import { distillWorkload, timedDistill } from './distill-workload.mjs';

const args = benchArgs();
const smoke = args.has('smoke');
const promptCount = Number(args.get('prompts') ?? (smoke ? 4 : 64));
const maxTokens = Number(args.get('tokens') ?? (smoke ? 4 : 64));
const reps = Number(args.get('reps') ?? (smoke ? 1 : 3));
const shared = process.env.FIREOPT_SHARED ?? resolve(import.meta.dirname, '../../shared');
const repoRoot = resolve(import.meta.dirname, '..');

const work = mkdtempSync(join(tmpdir(), 'fireopt-bench-distill-'));
const loadBefore = loadavg()[0];
try {
  const workload = await distillWorkload(shared, work, promptCount);
  const { gguf, tokenizer, prompts } = workload;

  /** One distill run over the dataset with an open engine; returns tokens/s and the rows. */
  async function distillRun(engine, topLogprobs, concurrency = 4) {
    const settings = { maxTokens, topLogprobs, concurrency, promptCount };
    const { seconds, summary, rows } = await timedDistill(workload, work, engine, settings);
    return { tokensPerSec: summary.tokens.completion / seconds, tokens: summary.tokens.completion, rows };
  }

  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const sameTokens = (rows, completions) =>
    rows.every((row, i) => row.completion_token_ids.join(',') === completions[i].join(','));
  const results = [];

  // --- llama-cpp ---------------------------------------------------------------------------
  const llamaCppConfig = /** @type {import('../dist/targets/config.js').LlamaCppTargetConfig} */ (
    targetSchema.parse({ engine: 'llama-cpp', model: gguf, threads: 1, sequences: 1 })
  );
  const llama = await startLlama();
  const rawModel = await llama.loadModel({ modelPath: gguf });
  const rawContext = await rawModel.createContext({
    contextSize: llamaCppConfig.context_size,
    threads: 1,
    sequences: 1,
    batchSize: llamaCppConfig.batch_size,
    experimentalKvCacheKeyType: 'F16',
    experimentalKvCacheValueType: 'F16',
  });
  const rawSequence = rawContext.getSequence();
  const promptIds = prompts.map((prompt) => tokenizer.encode(prompt));
  /** node-llama-cpp alone: greedy over the same prompt ids, stopping at EOG or maxTokens. */
  async function rawLlamaCpp(withProbabilities) {
    const completions = [];
    let tokens = 0;
    const started = performance.now();
    for (const ids of promptIds) {
      await rawSequence.clearHistory();
      const completion = [];
      for await (const step of rawSequence.evaluateWithMetadata(
        ids,
        { probabilities: withProbabilities },
        { temperature: 0 },
      )) {
        completion.push(step.token);
        if (rawModel.isEogToken(step.token) || completion.length >= maxTokens) break;
      }
      tokens += completion.length;
      completions.push(completion);
    }
    return { tokensPerSec: tokens / ((performance.now() - started) / 1000), completions };
  }
  for (const topLogprobs of [0, 8]) {
    const raw = [];
    const distilled = [];
    let same = true;
    for (let rep = 0; rep < reps + 1; rep++) {
      const rawRun = await rawLlamaCpp(topLogprobs > 0);
      const engine = await createTargetEngine(llamaCppConfig);
      const distillResult = await distillRun(engine, topLogprobs); // closes the engine
      same &&= sameTokens(distillResult.rows, rawRun.completions);
      if (rep === 0) continue; // warm-up
      raw.push(rawRun.tokensPerSec);
      distilled.push(distillResult.tokensPerSec);
    }
    results.push({
      engine: 'llama-cpp',
      topLogprobs,
      raw: median(raw),
      distill: median(distilled),
      same,
      rawName: `node-llama-cpp evaluateWithMetadata${topLogprobs ? ' + probabilities' : ''}`,
    });
  }
  await rawContext.dispose();
  await rawModel.dispose();
  await llama.dispose();

  // --- tfjs --------------------------------------------------------------------------------
  const tfjsConfig = targetSchema.parse({ engine: 'tfjs', model: gguf, backend: 'wasm' });
  {
    const eos = /** @type {number} */ (tokenizer.eosId);
    const raw = [];
    /** @type {Record<number, number[]>} */
    const distilled = { 0: [], 8: [] };
    let same = true;
    for (let rep = 0; rep < reps + 1; rep++) {
      const engine = await createTargetEngine(tfjsConfig);
      // The model core's own greedy loop, on the model the engine loaded (same backend, same weights).
      const model = /** @type {import('../dist/targets/tfjs/engine.js').TfjsEngine} */ (engine).model;
      const started = performance.now();
      const completions = [];
      for (const ids of promptIds)
        completions.push(
          (await generate(model, ids, { maxNewTokens: maxTokens, temperature: 0, stopIds: [eos] })).tokens,
        );
      const rawTokensPerSec = completions.reduce((n, c) => n + c.length, 0) / ((performance.now() - started) / 1000);
      const plain = await distillRun(engine, 0);
      const withLogprobs = await distillRun(await createTargetEngine(tfjsConfig), 8);
      same &&= sameTokens(plain.rows, completions) && sameTokens(withLogprobs.rows, completions);
      if (rep === 0) continue;
      raw.push(rawTokensPerSec);
      distilled[0].push(plain.tokensPerSec);
      distilled[8].push(withLogprobs.tokensPerSec);
    }
    for (const topLogprobs of [0, 8]) {
      results.push({
        engine: 'tfjs (wasm, 1 thread)',
        topLogprobs,
        raw: median(raw),
        distill: median(distilled[topLogprobs]),
        same,
        rawName: 'model core generate() (no log-probs)',
      });
    }
  }

  console.log(
    `\nstories260K, ${promptCount} ShareGPT prompts, ${maxTokens} new tokens each, greedy, median of ${reps}`,
  );
  console.log(
    '| engine | top_logprobs | raw engine tokens/s | distill tokens/s | ' +
      'distill / raw | overhead | same tokens | raw loop |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---|---|');
  for (const r of results) {
    const ratio = r.distill / r.raw;
    console.log(
      `| ${r.engine} | ${r.topLogprobs} | ${r.raw.toFixed(0)} | ${r.distill.toFixed(0)} | ${ratio.toFixed(3)} | ` +
        `${((1 / ratio - 1) * 100).toFixed(1)} % | ${r.same ? 'yes' : 'NO'} | ${r.rawName} |`,
    );
  }

  // --- openai engine against fireopt serve ---------------------------------------------------
  if (!args.has('skip-openai')) {
    const server = spawn(
      process.execPath,
      [
        join(repoRoot, 'bin/fireopt'),
        '--json',
        'serve',
        '--model',
        gguf,
        '--port',
        '0',
        '--sequences',
        '8',
        '--threads',
        '1',
        '--context-size',
        '4096',
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    try {
      const line = await new Promise((resolveLine, reject) => {
        createInterface({ input: server.stdout }).once('line', resolveLine);
        server.once('exit', (code) => reject(new Error(`fireopt serve exited with ${code}`)));
      });
      const { url, model } = JSON.parse(line);
      console.log(
        `\nopenai engine → fireopt serve (${url}, --sequences 8 --threads 1), top_logprobs 8, median of ${reps}`,
      );
      console.log('| concurrency | tokens/s | × concurrency 1 |');
      console.log('|---:|---:|---:|');
      let base;
      for (const concurrency of smoke ? [1, 2] : [1, 2, 4, 8]) {
        const config = targetSchema.parse({ engine: 'openai', base_url: url, model, concurrency, max_retries: 0 });
        const runs = [];
        for (let rep = 0; rep < reps + 1; rep++) {
          const result = await distillRun(await createTargetEngine(config, { tokenizer }), 8, concurrency);
          if (rep > 0) runs.push(result.tokensPerSec);
        }
        const tokensPerSec = median(runs);
        base ??= tokensPerSec;
        console.log(`| ${concurrency} | ${tokensPerSec.toFixed(0)} | ${(tokensPerSec / base).toFixed(2)} |`);
      }
    } finally {
      server.kill('SIGTERM');
    }
  }
  const cpuModel = cpus()[0]?.model ?? 'unknown';
  console.log(
    `\nmachine: nproc ${cpus().length}, ${cpuModel}, Node ${process.version}; ` +
      `load average ${loadBefore.toFixed(2)} before, ${loadavg()[0].toFixed(2)} after`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
