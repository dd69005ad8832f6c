#!/usr/bin/env node
/**
 * Ingest benchmark: builds JSONL trace files of ~100 MB and ~1 GB from real traces in ../shared/data
 * in OpenAI chat format (the format is per file): AlpacaEval outputs of four models, and Taskmaster-4
 * dialogues as multi-turn chat;
 * every line gets its own conversation id and session tag, so nothing deduplicates away), then
 * measures, each in its own process so peak RSS is its own:
 *   cat        `cat file > /dev/null` (the read floor)
 *   json-parse a bare loop: read 1 MiB chunks, split lines, JSON.parse each (the parse floor)
 *   ingest     fireopt's runIngest (from the built dist/) into a dataset directory
 * Usage: npm run build && node bench/ingest.mjs [--sizes 100,1000]   (data goes to bench/data/, ignored by git)
 */
import { spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(benchDir, '..');
const sharedData = resolve(process.env.FIREOPT_SHARED ?? join(repoRoot, '../shared'), 'data');
const dataDir = join(benchDir, 'data');

async function measureInChild(mode, file) {
  const started = performance.now();
  if (mode === 'cat') {
    const result = spawnSync('sh', ['-c', `cat "${file}" > /dev/null`]);
    if (result.status !== 0) throw new Error('cat failed');
    return { seconds: (performance.now() - started) / 1000, peakRssMb: null };
  }
  if (mode === 'json-parse') {
    let lines = 0;
    let carry = Buffer.alloc(0);
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
      let buffer = carry.length ? Buffer.concat([carry, chunk]) : chunk;
      let start = 0;
      for (let nl = buffer.indexOf(10, start); nl !== -1; nl = buffer.indexOf(10, start)) {
        JSON.parse(buffer.toString('utf8', start, nl));
        lines++;
        start = nl + 1;
      }
      carry = Buffer.from(buffer.subarray(start));
    }
    return { seconds: (performance.now() - started) / 1000, peakRssMb: process.resourceUsage().maxRSS / 1024, lines };
  }
  if (mode === 'ingest') {
    const { runIngest } = await import('../dist/ingest/index.js');
    const { loadConfig } = await import('../dist/config/load.js');
    const out = `${file}.dataset`;
    const config = loadConfig({ flags: { 'ingest.inputs': [file], 'ingest.out': out } });
    const summary = await runIngest(config);
    const seconds = (performance.now() - started) / 1000;
    const outBytes = ['train.arrow', 'heldout.arrow'].reduce((sum, f) => sum + statSync(join(out, f)).size, 0);
    rmSync(out, { recursive: true, force: true });
    return { seconds, peakRssMb: process.resourceUsage().maxRSS / 1024, rows: summary.rows.total, duplicates: summary.duplicates_removed, rejected: summary.rejected.count, outMb: outBytes / 1e6 };
  }
  throw new Error(`unknown mode ${mode}`);
}

/** Real traces as JSONL line templates; `{N}` is replaced by a line number to vary ids and content. */
function templates() {
  const lines = [];
  const alpacaDir = join(sharedData, 'alpaca_eval_outputs');
  for (const name of ['Meta-Llama-3-8B-Instruct', 'Mistral-7B-Instruct-v0.2', 'gpt-3.5-turbo-1106', 'gpt-4-turbo-2024-04-09']) {
    for (const r of JSON.parse(readFileSync(join(alpacaDir, `${name}.json`), 'utf8'))) {
      lines.push(JSON.stringify({ id: 'conv-{N}', model: r.generator, messages: [{ role: 'system', content: 'Session {N}. You are a helpful assistant.' }, { role: 'user', content: r.instruction }, { role: 'assistant', content: r.output }] }));
      lines.push(JSON.stringify({ conversation_id: 'c-{N}', model: r.generator, created_at: '2025-03-01T10:00:00Z', messages: [{ role: 'user', content: `[{N}] ${r.instruction}` }, { role: 'assistant', content: r.output }], metadata: { user: 'u-{N}' } }));
    }
  }
  for (const part of ['00', '01', '02']) {
    for (const d of JSON.parse(readFileSync(join(sharedData, 'taskmaster4_coffee', `data_${part}.json`), 'utf8'))) {
      lines.push(JSON.stringify({ conversation_id: `${d.conversation_id}-{N}`, messages: [{ role: 'system', content: 'Store {N}: you take coffee orders.' }, ...d.utterances.map((u) => ({ role: u.speaker, content: u.text }))] }));
    }
  }
  return lines;
}

async function buildFile(path, targetBytes) {
  if (existsSync(path) && statSync(path).size >= targetBytes) return;
  const source = templates();
  const out = createWriteStream(path);
  let bytes = 0;
  for (let n = 0; bytes < targetBytes; n++) {
    const line = source[n % source.length].replaceAll('{N}', String(n)) + '\n';
    bytes += Buffer.byteLength(line);
    if (!out.write(line)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

function run(mode, file) {
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--measure', mode, file], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (child.status !== 0) throw new Error(`${mode} failed: ${child.stderr}`);
  return JSON.parse(child.stdout.trim().split('\n').pop());
}

async function main() {
  const args = process.argv.slice(2);
  if (args[0] === '--measure') {
    process.stdout.write(JSON.stringify(await measureInChild(args[1], args[2])) + '\n');
    return;
  }
  const sizesMb = (args[args.indexOf('--sizes') + 1] && args.includes('--sizes') ? args[args.indexOf('--sizes') + 1] : '100,1000').split(',').map(Number);
  mkdirSync(dataDir, { recursive: true });
  const cpuModel = cpus()[0]?.model ?? 'unknown';
  console.log(`machine: ${cpus().length} CPUs (nproc ${spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()}), ${cpuModel}, node ${process.version}`);
  console.log('| input | step | seconds | MB/s | peak RSS MB | notes |');
  console.log('|---|---|---:|---:|---:|---|');
  for (const sizeMb of sizesMb) {
    const file = join(dataDir, `traces-${sizeMb}mb.jsonl`);
    await buildFile(file, sizeMb * 1e6);
    const mb = statSync(file).size / 1e6;
    run('cat', file); // warm the page cache so every step reads from memory
    for (const mode of ['cat', 'json-parse', 'ingest']) {
      const r = run(mode, file);
      const notes = mode === 'ingest'
        ? `${r.rows} rows, ${r.duplicates} duplicates, ${r.rejected} rejected, ${r.outMb.toFixed(0)} MB Arrow out`
        : mode === 'json-parse' ? `${r.lines} lines` : '';
      console.log(`| ${mb.toFixed(0)} MB | ${mode} | ${r.seconds.toFixed(2)} | ${(mb / r.seconds).toFixed(1)} | ${r.peakRssMb === null ? '–' : r.peakRssMb.toFixed(0)} | ${notes} |`);
    }
  }
}

await main();
