#!/usr/bin/env node
/**
 * Ingest benchmark: builds JSONL trace files of ~100 MB and ~1 GB from real traces in ../shared/data
 * in OpenAI chat format (the format is per file): AlpacaEval outputs of four models, and Taskmaster-4
 * dialogues as multi-turn chat;
 * every line gets its own conversation id and session tag, so nothing deduplicates away), then
 * measures, each in its own process so peak RSS is its own:
 *   cat        `cat file > /dev/null` (the read floor)
 *   json-parse a bare loop: read 1 MiB chunks, split lines, JSON.parse each (the parse floor)
 *   ingest     fireopt's runIngest (from the built dist/) into a dataset directory, as by default (parse
 *              workers only while half a CPU is idle by the load average; notes say how many it used)
 *   ingest-1t  the same on one thread (`workers: 0`)
 *   ingest-1w  the same with one parse worker (`workers: 1`; the main thread parses too while it is busy)
 *   ingest-2w  the same with two parse workers (`workers: 2`)
 *   ingest-baseline  runIngest from another build (`--baseline <dir with dist/>`, e.g. an older commit), same run
 * Each step runs `--runs` times (default 3), interleaved, and the table gives medians; the load
 * average is printed before and after each input size (the machine may be shared).
 * Usage: npm run build && node bench/ingest.mjs [--sizes 100,1000] [--runs 3] [--baseline dir] [--build dir]
 * (`--build dir`: measure `dir/dist` instead of this checkout's `dist/`, e.g. a private build while
 * others rebuild `dist/`; a build dir needs a copy of package.json beside its dist/)
 * (data goes to bench/data/, ignored by git; `--smoke`: one 1 MB file in a temporary folder, one run, removed after)
 */
import { spawnSync } from 'node:child_process';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { once } from 'node:events';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(benchDir, '..');
const sharedData = resolve(process.env.FIREOPT_SHARED ?? join(repoRoot, '../shared'), 'data');
const smoke = process.argv.includes('--smoke');
const dataDir = smoke ? mkdtempSync(join(tmpdir(), 'fireopt-bench-ingest-')) : join(benchDir, 'data');

async function measureInChild(mode, file, baseline, candidate) {
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
      const buffer = carry.length ? Buffer.concat([carry, chunk]) : chunk;
      let start = 0;
      for (let nl = buffer.indexOf(10, start); nl !== -1; nl = buffer.indexOf(10, start)) {
        JSON.parse(buffer.toString('utf8', start, nl));
        lines++;
        start = nl + 1;
      }
      carry = Buffer.from(buffer.subarray(start));
    }
    return {
      seconds: (performance.now() - started) / 1000,
      cpuSeconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
      peakRssMb: process.resourceUsage().maxRSS / 1024,
      lines,
    };
  }
  if (mode.startsWith('ingest')) {
    const dist =
      mode === 'ingest-baseline'
        ? join(resolve(baseline), 'dist')
        : candidate
          ? join(resolve(candidate), 'dist')
          : join(repoRoot, 'dist');
    const { runIngest } = await import(pathToFileURL(join(dist, 'ingest/index.js')).href);
    const { loadConfig } = await import(pathToFileURL(join(dist, 'config/load.js')).href);
    const out = `${file}.${mode}.dataset`;
    const config = loadConfig({ flags: { 'ingest.inputs': [file], 'ingest.out': out } });
    const workers = { 'ingest-1t': 0, 'ingest-1w': 1, 'ingest-2w': 2 }[mode];
    const load = loadavg()[0];
    const summary = await runIngest(config, workers === undefined ? {} : { workers });
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(); // all threads of the process
    const outBytes = ['train.arrow', 'heldout.arrow'].reduce((sum, f) => sum + statSync(join(out, f)).size, 0);
    rmSync(out, { recursive: true, force: true });
    // The default's choice, as runIngest reports it (older builds do not: recomputed as they chose,
    // CPUs minus the 1-minute load average, at most 2).
    const chosen = workers ?? summary.parse_workers ?? Math.max(0, Math.min(2, Math.floor(cpus().length - load)));
    return {
      seconds,
      workers: chosen,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      peakRssMb: process.resourceUsage().maxRSS / 1024,
      rows: summary.rows.total,
      duplicates: summary.duplicates_removed,
      rejected: summary.rejected.count,
      outMb: outBytes / 1e6,
    };
  }
  throw new Error(`unknown mode ${mode}`);
}

/** Real traces as JSONL line templates; `{N}` is replaced by a line number to vary ids and content. */
function templates() {
  const lines = [];
  const alpacaDir = join(sharedData, 'alpaca_eval_outputs');
  for (const name of [
    'Meta-Llama-3-8B-Instruct',
    'Mistral-7B-Instruct-v0.2',
    'gpt-3.5-turbo-1106',
    'gpt-4-turbo-2024-04-09',
  ]) {
    for (const r of JSON.parse(readFileSync(join(alpacaDir, `${name}.json`), 'utf8'))) {
      lines.push(
        JSON.stringify({
          id: 'conv-{N}',
          model: r.generator,
          messages: [
            { role: 'system', content: 'Session {N}. You are a helpful assistant.' },
            { role: 'user', content: r.instruction },
            { role: 'assistant', content: r.output },
          ],
        }),
      );
      lines.push(
        JSON.stringify({
          conversation_id: 'c-{N}',
          model: r.generator,
          created_at: '2025-03-01T10:00:00Z',
          messages: [
            { role: 'user', content: `[{N}] ${r.instruction}` },
            { role: 'assistant', content: r.output },
          ],
          metadata: { user: 'u-{N}' },
        }),
      );
    }
  }
  for (const part of ['00', '01', '02']) {
    for (const d of JSON.parse(readFileSync(join(sharedData, 'taskmaster4_coffee', `data_${part}.json`), 'utf8'))) {
      lines.push(
        JSON.stringify({
          conversation_id: `${d.conversation_id}-{N}`,
          messages: [
            { role: 'system', content: 'Store {N}: you take coffee orders.' },
            ...d.utterances.map((u) => ({ role: u.speaker, content: u.text })),
          ],
        }),
      );
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

function run(mode, file, baseline, candidate) {
  const child = spawnSync(
    process.execPath,
    [fileURLToPath(import.meta.url), '--measure', mode, file, baseline ?? '', candidate ?? ''],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  if (child.status !== 0) throw new Error(`${mode} failed: ${child.stderr}`);
  return JSON.parse(child.stdout.trim().split('\n').pop() ?? '');
}

const option = (args, name, fallback) =>
  args.includes(name) && args[args.indexOf(name) + 1] ? args[args.indexOf(name) + 1] : fallback;
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const load = () =>
  loadavg()
    .map((x) => x.toFixed(1))
    .join(' ');

async function main() {
  const args = process.argv.slice(2);
  if (args[0] === '--measure') {
    process.stdout.write(JSON.stringify(await measureInChild(args[1], args[2], args[3], args[4])) + '\n');
    return;
  }
  const sizesMb = option(args, '--sizes', smoke ? '1' : '100,1000')
    .split(',')
    .map(Number);
  const runs = Number(option(args, '--runs', smoke ? '1' : '3'));
  const baseline = option(args, '--baseline', undefined);
  const candidate = option(args, '--build', undefined); // a dir with dist/ (default: this checkout's dist/)
  const modes = [
    'cat',
    'json-parse',
    ...(baseline ? ['ingest-baseline'] : []),
    'ingest-1t',
    'ingest-1w',
    'ingest-2w',
    'ingest',
  ];
  mkdirSync(dataDir, { recursive: true });
  const cpuModel = cpus()[0]?.model ?? 'unknown';
  console.log(
    `machine: ${cpus().length} CPUs (nproc ${spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()}), ` +
      `${cpuModel}, node ${process.version}; medians of ${runs} runs`,
  );
  console.log('| input | step | seconds (median) | MB/s | % of json-parse | CPU s | peak RSS MB | notes |');
  console.log('|---|---|---:|---:|---:|---:|---:|---|');
  for (const sizeMb of sizesMb) {
    const file = join(dataDir, `traces-${sizeMb}mb.jsonl`);
    await buildFile(file, sizeMb * 1e6);
    const mb = statSync(file).size / 1e6;
    const loadBefore = load();
    run('cat', file); // warm the page cache so every step reads from memory
    /** @type {Record<string, Array<Record<string, number>>>} */
    const results = Object.fromEntries(modes.map((mode) => [mode, []]));
    for (let r = 0; r < runs; r++) for (const mode of modes) results[mode].push(run(mode, file, baseline, candidate));
    const parseSeconds = median(results['json-parse'].map((x) => x.seconds));
    for (const mode of modes) {
      const all = results[mode];
      const seconds = median(all.map((x) => x.seconds));
      const last = all[all.length - 1];
      const notes = mode.startsWith('ingest')
        ? `${last.rows} rows, ${last.duplicates} duplicates, ${last.rejected} rejected, ` +
          `${last.outMb.toFixed(0)} MB Arrow out` +
          (mode === 'ingest' ? `; workers used: ${all.map((x) => x.workers).join(', ')}` : '')
        : mode === 'json-parse'
          ? `${last.lines} lines`
          : '';
      const cpuSeconds = all[0].cpuSeconds === undefined ? '–' : median(all.map((x) => x.cpuSeconds)).toFixed(2);
      const rss = all[0].peakRssMb === null ? '–' : Math.max(...all.map((x) => x.peakRssMb)).toFixed(0);
      const runsText = all.map((x) => x.seconds.toFixed(2)).join(', ');
      console.log(
        `| ${mb.toFixed(0)} MB | ${mode} | ${seconds.toFixed(2)} (${runsText}) | ${(mb / seconds).toFixed(1)} | ` +
          `${((parseSeconds / seconds) * 100).toFixed(0)} % | ${cpuSeconds} | ${rss} | ${notes} |`,
      );
    }
    console.log(`load average (1, 5, 15 min): ${loadBefore} before, ${load()} after the ${mb.toFixed(0)} MB steps`);
  }
}

try {
  await main();
} finally {
  if (smoke) rmSync(dataDir, { recursive: true, force: true });
}
