/** Run the CLI in-process (fast) or as a spawned process (real exit codes). */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { repoRoot } from './shared.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** In-process: same code path as bin/fireopt, output captured. */
export async function runCli(args: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
  return { code, stdout, stderr };
}

/** Spawned: the built bin/fireopt (run `npm run build` first; `npm test` does). */
export function runBin(
  args: string[],
  options: { input?: string | Buffer; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): CliResult {
  const result = spawnSync(process.execPath, [join(repoRoot, 'bin/fireopt'), ...args], {
    cwd: options.cwd ?? repoRoot,
    input: options.input,
    env: { ...process.env, ...options.env },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  return { code: result.status ?? 1, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Spawned without blocking: a Node script of the repository (scripts/, bench/), so that a server in
 * this process (a local HTTP mirror) can answer it. A non-zero exit is returned, not thrown.
 */
export function runScript(
  script: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolvePromise) => {
    execFile(
      process.execPath,
      [join(repoRoot, script), ...args],
      {
        cwd: repoRoot,
        env: { ...process.env, ...options.env },
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
        timeout: options.timeoutMs,
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolvePromise({ code, stdout, stderr });
      },
    );
  });
}

/**
 * Spawned without blocking the test worker: for commands that take seconds (a vitest worker blocked in
 * spawnSync for over 10 s misses its RPC heartbeat), and for tests whose own servers (a fault proxy,
 * `fireopt serve`) must keep answering while the CLI runs.
 */
export function runBinAsync(
  args: string[],
  options: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin/fireopt'), ...args], {
      cwd: options.cwd ?? repoRoot,
      env: { ...process.env, ...options.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => void (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => void (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/** Ingest `prompts` (one prompts-JSONL record each) into `<work>/dataset`, a quarter held out; returns the dataset. */
export async function ingestPrompts(work: string, prompts: string[]): Promise<string> {
  writeFileSync(join(work, 'prompts.jsonl'), prompts.map((prompt) => JSON.stringify({ prompt })).join('\n') + '\n');
  const dataset = join(work, 'dataset');
  const ingested = await runCli([
    '--quiet',
    'ingest',
    join(work, 'prompts.jsonl'),
    '--out',
    dataset,
    '--heldout',
    '0.25',
  ]);
  if (ingested.code !== 0) throw new Error(`ingest failed (${ingested.code}): ${ingested.stderr}`);
  return dataset;
}
