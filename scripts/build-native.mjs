#!/usr/bin/env node
/**
 * Builds fireopt's optional native kernels (native/kernels.cc → native/build/fireopt_native.node) for
 * this machine: a C++ compiler and Node's headers are all it needs (no node-gyp, no network).
 * Runs from `npm install` / `npm ci` (postinstall) and by hand (`npm run build:native`). It never
 * fails the install: without a compiler or headers it says so in one line and fireopt runs on the
 * wasm backend's own kernels. `FIREOPT_NATIVE=0` skips the build.
 *
 *   node scripts/build-native.mjs [--force] [--strict]   (--strict: exit 1 when the build fails)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'native', 'kernels.cc');
const output = join(root, 'native', 'build', 'fireopt_native.node');
// What the build was made for: `-march=native` code may not run on another CPU, and src/backend/native.ts
// refuses to load the addon on a CPU whose signature differs (instead of dying of SIGILL).
const stamp = join(root, 'native', 'build', 'fireopt_native.json');
const strict = process.argv.includes('--strict');

function say(message) {
  console.log(`fireopt native kernels: ${message}`);
}

function headerDirs() {
  const prefix = resolve(dirname(process.execPath), '..');
  const version = process.versions.node;
  return [
    process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
    join(prefix, 'include', 'node'),
    join(homedir(), '.cache', 'node-gyp', version, 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ].filter((dir) => dir && existsSync(join(dir, 'node_api.h')));
}

function main() {
  if (process.env.FIREOPT_NATIVE === '0') return say('skipped (FIREOPT_NATIVE=0)');
  if (
    !process.argv.includes('--force') &&
    existsSync(output) &&
    statSync(output).mtimeMs >= statSync(source).mtimeMs &&
    stampMatches()
  ) {
    return say(`up to date (${output})`);
  }
  const [includeDir] = headerDirs();
  if (!includeDir) return fail("Node's headers (node_api.h) were not found");
  const compiler = process.env.CXX ?? 'c++';
  mkdirSync(dirname(output), { recursive: true });
  const partial = `${output}.tmp-${process.pid}`;
  const flags = [
    '-O3',
    '-march=native',
    '-std=c++17',
    '-fPIC',
    '-shared',
    '-pthread',
    '-fno-math-errno',
    '-DNAPI_VERSION=8',
  ];
  try {
    execFileSync(compiler, [...flags, `-I${includeDir}`, source, '-o', partial], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    writeFileSync(
      `${stamp}.tmp-${process.pid}`,
      JSON.stringify({ cpu: cpuSignature(), node: process.versions.modules }) + '\n',
    );
    renameSync(`${stamp}.tmp-${process.pid}`, stamp);
    renameSync(partial, output);
  } catch (error) {
    rmSync(partial, { force: true });
    const detail =
      error.code === 'ENOENT'
        ? `no C++ compiler (${compiler})`
        : String(error.stderr ?? error.message)
            .trim()
            .split('\n')
            .slice(0, 5)
            .join(' | ');
    return fail(detail);
  }
  say(`built ${output} (${compiler}, -march=native)`);
}

/**
 * The CPU as the compiler's -march=native sees it: model and feature flags (kept in step with src/backend/native.ts).
 */
export function cpuSignature() {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const field = (name) => info.match(new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm'))?.[1]?.trim() ?? '';
    return `${field('model name')} | ${field('flags').split(/\s+/).sort().join(' ')}`;
  } catch {
    return `${cpus()[0]?.model ?? 'unknown'}`;
  }
}

function stampMatches() {
  try {
    return JSON.parse(readFileSync(stamp, 'utf8')).cpu === cpuSignature();
  } catch {
    return false;
  }
}

function fail(why) {
  say(`not built: ${why}. fireopt still works; training on CPU uses the wasm backend's own kernels.`);
  if (strict) process.exitCode = 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
