#!/usr/bin/env node
/**
 * CPU seconds per thread of one `runIngest` (a build's dist/), sampled from /proc/self/task/<tid>/stat
 * every 50 ms (Linux): the main thread, the parse workers and V8's and libuv's helper threads, which
 * bench/ingest.mjs's process totals lump together. The per-thread tables of bench/RESULTS.md's
 * ## Ingest section come from it.
 *
 *   node bench/ingest-threads.mjs <traces.jsonl> <workers|default> [<dir with dist/>]
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [file, workerArg = 'default', build = resolve(import.meta.dirname, '..')] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/ingest-threads.mjs <traces.jsonl> <workers|default> [<dir with dist/>]');
  process.exit(2);
}
const dist = join(resolve(build), 'dist');
const { runIngest } = await import(pathToFileURL(join(dist, 'ingest/index.js')).href);
const { loadConfig } = await import(pathToFileURL(join(dist, 'config/load.js')).href);

const threads = new Map(); // tid → { name, cpuSeconds } (the last reading: a thread's counters only grow)
const sample = () => {
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime + stime, in clock ticks
      threads.set(tid, { name, cpuSeconds: (Number(fields[11]) + Number(fields[12])) / 100 });
    } catch {
      // the thread ended between readdir and read
    }
  }
};
const timer = setInterval(sample, 50);
const out = mkdtempSync(join(tmpdir(), 'fireopt-ingest-threads-'));
const started = performance.now();
try {
  const config = loadConfig({ flags: { 'ingest.inputs': [file], 'ingest.out': join(out, 'dataset') } });
  const summary = await runIngest(config, workerArg === 'default' ? {} : { workers: Number(workerArg) });
  sample();
  const cpu = process.cpuUsage();
  console.log(
    `wall ${((performance.now() - started) / 1000).toFixed(2)} s, ` +
      `CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s, parse workers ${summary.parse_workers}`,
  );
  const groups = new Map();
  for (const [tid, { name, cpuSeconds }] of threads) {
    const group = String(tid) === String(process.pid) ? 'main' : name;
    groups.set(group, [...(groups.get(group) ?? []), cpuSeconds.toFixed(2)]);
  }
  for (const [group, values] of groups) console.log(`${group}: ${values.join(' ')}`);
} finally {
  clearInterval(timer);
  rmSync(out, { recursive: true, force: true });
}
