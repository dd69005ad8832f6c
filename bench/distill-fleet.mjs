#!/usr/bin/env node
/**
 * Distill throughput against a fleet of target replicas (`target.base_urls`): 1, 2 and 4 `fireopt
 * serve` processes over the real stories260K (GGUF written by fireopt; `--sequences 1 --threads 1`
 * each) on loopback, the openai engine spreading rows by least outstanding requests. Distill keeps
 * `--per-replica` requests in flight per replica (distill.concurrency = replicas × per-replica), so
 * on a real fleet the rate grows with the replicas until the client is the bottleneck.
 *
 * Prompts: ShareGPT openings (first 8 words), ingested by fireopt's own ingest; greedy, `--tokens`
 * new tokens per prompt, top-8 log-probabilities. Every replica count must produce the same token ids.
 * Each figure is the median of `--reps` runs after one warm-up run. The last line is a JSON summary.
 *
 *   node bench/distill-fleet.mjs [--prompts 64] [--tokens 32] [--replicas 1,2,4] [--per-replica 2] [--reps 3]
 *   node bench/distill-fleet.mjs --smoke     # 6 prompts × 8 tokens, 1 and 2 replicas, 1 rep (seconds)
 *
 * Needs `npm run build` first (runs on dist/).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { targetSchema } from '../dist/targets/config.js';
import { createTargetEngine } from '../dist/targets/create.js';
import { benchArgs } from './args.mjs';
import { distillWorkload, timedDistill } from './distill-workload.mjs';

const args = benchArgs();
const smoke = args.has('smoke');
const promptCount = Number(args.get('prompts') ?? (smoke ? 6 : 64));
const maxTokens = Number(args.get('tokens') ?? (smoke ? 8 : 32));
const replicaCounts = String(args.get('replicas') ?? (smoke ? '1,2' : '1,2,4'))
  .split(',')
  .map(Number);
const perReplica = Number(args.get('per-replica') ?? 2);
const reps = Number(args.get('reps') ?? (smoke ? 1 : 3));
const shared = process.env.FIREOPT_SHARED ?? resolve(import.meta.dirname, '../../shared');
const repoRoot = resolve(import.meta.dirname, '..');

const work = mkdtempSync(join(tmpdir(), 'fireopt-bench-fleet-'));
const loadBefore = loadavg()[0];
/** @type {import('node:child_process').ChildProcess[]} */
const servers = [];
try {
  const workload = await distillWorkload(shared, work, promptCount);
  const { gguf, tokenizer } = workload;

  /** A `fireopt serve` process on a free port; resolves to its `/v1` URL once it listens. */
  async function startServe() {
    const args = ['--json', 'serve', '--model', gguf, '--port', '0', '--sequences', '1', '--threads', '1'];
    const server = spawn(process.execPath, [join(repoRoot, 'bin/fireopt'), ...args, '--context-size', '512'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    servers.push(server);
    const line = await new Promise((resolveLine, reject) => {
      createInterface({ input: server.stdout }).once('line', resolveLine);
      server.once('exit', (code) => reject(new Error(`fireopt serve exited with ${code}`)));
    });
    return JSON.parse(line).url;
  }
  const urls = await Promise.all(Array.from({ length: Math.max(...replicaCounts) }, startServe));

  /** One distill run over `replicas` replicas; returns tokens/s, rows per replica and the completions. */
  async function fleetRun(replicas) {
    const fleet = urls.slice(0, replicas);
    const target = targetSchema.parse({
      engine: 'openai',
      ...(replicas === 1 ? { base_url: fleet[0] } : { base_urls: fleet }),
      model: 'stories260K',
      concurrency: perReplica,
      max_retries: 0,
    });
    const engine = await createTargetEngine(target, { tokenizer }); // the identity check runs here, untimed
    const settings = { maxTokens, topLogprobs: 8, concurrency: replicas * perReplica, promptCount };
    const { seconds, summary, rows } = await timedDistill(workload, work, engine, settings);
    const completions = rows.map((row) => row.completion_token_ids.join());
    const rowsPerReplica = summary.replicas?.map((replica) => replica.rows) ?? [promptCount];
    return { tokensPerSec: summary.tokens.completion / seconds, rowsPerReplica, completions };
  }

  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  console.log(
    `distill → fleet of fireopt serve (stories260K, --sequences 1 --threads 1), ${promptCount} prompts × ` +
      `${maxTokens} tokens, top_logprobs 8, ${perReplica} requests in flight per replica, median of ${reps}`,
  );
  console.log('| replicas | distill concurrency | tokens/s | × 1 replica | rows per replica (last run) |');
  console.log('|---:|---:|---:|---:|---|');
  const figures = [];
  let reference;
  let base;
  for (const replicas of replicaCounts) {
    await fleetRun(replicas); // warm-up: each server's first requests
    const runs = [];
    let last = await fleetRun(replicas);
    for (let rep = 0; rep < reps; rep++) {
      if (rep > 0) last = await fleetRun(replicas);
      runs.push(last.tokensPerSec);
      reference ??= last.completions;
      if (last.completions.join('|') !== reference.join('|'))
        throw new Error(`${replicas} replicas produced other greedy tokens than ${replicaCounts[0]}`);
    }
    const tokensPerSec = median(runs);
    base ??= tokensPerSec;
    figures.push({ replicas, tokens_per_sec: Math.round(tokensPerSec), rows_per_replica: last.rowsPerReplica });
    console.log(
      `| ${replicas} | ${replicas * perReplica} | ${tokensPerSec.toFixed(0)} | ${(tokensPerSec / base).toFixed(2)} | ` +
        `${last.rowsPerReplica.join(' / ')} |`,
    );
  }
  const cpuModel = cpus()[0]?.model ?? 'unknown';
  const loadAfter = loadavg()[0];
  console.log(
    `\nmachine: nproc ${cpus().length}, ${cpuModel}, Node ${process.version}; load average ${loadBefore.toFixed(2)} ` +
      `before, ${loadAfter.toFixed(2)} after`,
  );
  console.log(
    JSON.stringify({
      prompts: promptCount,
      max_tokens: maxTokens,
      per_replica: perReplica,
      figures,
      load_before: loadBefore,
      load_after: loadAfter,
    }),
  );
} finally {
  for (const server of servers) server.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}
