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
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'native', 'kernels.cc');
const output = join(root, 'native', 'build', 'fireopt_native.node');
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
  if (!process.argv.includes('--force') && existsSync(output) && statSync(output).mtimeMs >= statSync(source).mtimeMs) {
    return say(`up to date (${output})`);
  }
  const [includeDir] = headerDirs();
  if (!includeDir) return fail("Node's headers (node_api.h) were not found");
  const compiler = process.env.CXX ?? 'c++';
  mkdirSync(dirname(output), { recursive: true });
  const partial = `${output}.tmp-${process.pid}`;
  const flags = ['-O3', '-march=native', '-std=c++17', '-fPIC', '-shared', '-pthread', '-fno-math-errno', '-DNAPI_VERSION=8'];
  try {
    execFileSync(compiler, [...flags, `-I${includeDir}`, source, '-o', partial], { stdio: ['ignore', 'ignore', 'pipe'] });
    renameSync(partial, output);
  } catch (error) {
    rmSync(partial, { force: true });
    const detail = error.code === 'ENOENT' ? `no C++ compiler (${compiler})` : String(error.stderr ?? error.message).trim().split('\n').slice(0, 5).join(' | ');
    return fail(detail);
  }
  say(`built ${output} (${compiler}, -march=native)`);
}

function fail(why) {
  say(`not built: ${why}. fireopt still works; training on CPU uses the wasm backend's own kernels.`);
  if (strict) process.exitCode = 1;
}

main();
